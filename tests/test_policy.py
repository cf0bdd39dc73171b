"""The alert state machine over sequences of simulated runs: what an on-call person would get at each run."""

from __future__ import annotations

import pytest

from pytest_apimon.config import ConfigError
from pytest_apimon.policy import (
    CLOSED,
    DOWN,
    OPEN,
    UP,
    Kind,
    RunMemory,
    evaluate,
    gate,
    interface_key,
    message_mode,
    skips,
)
from pytest_apimon.policy_settings import AlertPolicy, parse_policy, parse_state
from pytest_apimon.results import InterfaceResult

T0 = 1_700_000_000.0
EVERY = 900.0  # a cron every 15 minutes


def result(name: str, outcome: str = "passed", category: str | None = None, service: str = "user",
           elapsed: float = 50.0) -> InterfaceResult:
    if outcome == "failed" and category is None:
        category = "server_error"
    return InterfaceResult(nodeid=f"pool/{service}/{name}.yaml::{name}", service=service, module="m", name=name,
                           outcome=outcome, category=category, status=500 if category == "server_error" else 200,
                           elapsed_ms=elapsed)


class Sim:
    """Runs evaluate() run after run, carrying the state like the store would."""

    def __init__(self, alerts: dict | None = None, breaker: dict | None = None, services: dict | None = None):
        self.settings = parse_policy(alerts, breaker, services)
        self.states: dict = {}
        self.memory = RunMemory()
        self.now = T0

    def run(self, *results: InterfaceResult, advance: float = EVERY, complete: bool = True):
        self.now += advance
        verdict = evaluate(self.states, results, self.settings, self.now, self.memory, selection_complete=complete)
        self.states, self.memory = verdict.states, verdict.memory
        return verdict

    def kinds(self, verdict) -> dict[str, tuple[str, bool]]:
        return {d.key: (d.kind.value, d.notify) for d in verdict.decisions}


def test_new_ongoing_suppressed_reminder_recovered() -> None:
    sim = Sim()
    v = sim.run(result("a"), result("b"))
    assert v.decisions == [] and not v.worth_message and message_mode("failure", v) == "none"

    v = sim.run(result("a", "failed"), result("b"))
    assert sim.kinds(v) == {"user/a": ("new", True)}
    assert v.worth_message and message_mode("change", v) == "full"
    new_at = sim.now

    for runs in (2, 3, 4):  # inside the 1 h reminder window: one summary line, nothing worth a message
        v = sim.run(result("a", "failed"), result("b"))
        d = v.decision("user/a")
        assert (d.kind, d.notify, d.remind, d.since, d.runs) == (Kind.ONGOING, False, False, new_at, runs)
        assert message_mode("change", v) == "none" and message_mode("failure", v) == "digest"
        assert message_mode("always", v) == "digest"

    v = sim.run(result("a", "failed"), result("b"))  # 1 h after the alert: reminder
    d = v.decision("user/a")
    assert (d.kind, d.notify, d.remind, d.runs) == (Kind.ONGOING, True, True, 5)
    assert "since" in d.describe("en", sim.now) and "reminder" in d.describe("en", sim.now)

    v = sim.run(result("a"), result("b"))
    d = v.decision("user/a")
    assert (d.kind, d.notify, d.since) == (Kind.RECOVERED, True, new_at)
    assert sim.states["user/a"].status == UP and not sim.states["user/a"].alerted

    v = sim.run(result("a"), result("b"))
    assert v.decisions == [] and message_mode("failure", v) == "none"


def test_thresholds_and_send_on_resolved() -> None:
    sim = Sim({"failure_threshold": 3, "success_threshold": 2, "send_on_resolved": False})
    assert [sim.kinds(sim.run(result("a", "failed")))["user/a"] for _ in range(3)] == [
        ("pending", False), ("pending", False), ("new", True)]
    assert sim.states["user/a"].down_since == T0 + EVERY  # since the first failing run, not the third
    v = sim.run(result("a"))
    assert sim.kinds(v) == {"user/a": ("recovering", False)} and sim.states["user/a"].status == DOWN
    v = sim.run(result("a"))
    assert sim.kinds(v) == {"user/a": ("recovered", False)}  # recorded, but send_on_resolved is off
    assert not v.worth_message
    # A blip below the threshold never alerts and never "recovers" (no UP without DOWN).
    assert sim.kinds(sim.run(result("a", "failed")))["user/a"] == ("pending", False)
    assert sim.run(result("a")).decisions == []


def test_per_service_override() -> None:
    sim = Sim({"failure_threshold": 2}, services={"order": {"failure_threshold": 1, "remind_every": 0}})
    v = sim.run(result("a", "failed"), result("x", "failed", service="order"))
    assert sim.kinds(v) == {"user/a": ("pending", False), "order/x": ("new", True)}
    for _ in range(10):  # remind_every: 0 = never remind
        v = sim.run(result("a"), result("x", "failed", service="order"))
    assert sim.kinds(v) == {"order/x": ("ongoing", False)}


def test_recovery_between_runs_resolves_after_restart() -> None:
    """The announced problem is resolved even though the process restarted in between (a failure Gatus had:
    its alert state lived only in memory)."""
    sim = Sim()
    sim.run(result("a", "failed"))
    states = sim.states  # what the store would hand the next process
    sim2 = Sim()
    sim2.states, sim2.now = states, sim.now
    assert sim2.kinds(sim2.run(result("a"))) == {"user/a": ("recovered", True)}


def test_flapping_reported_instead_of_each_change() -> None:
    sim = Sim({"flapping": {"changes": 3, "window": 6}})
    seq = ["failed", "passed", "failed", "passed", "failed", "passed", "passed", "passed", "passed", "passed"]
    got = [sim.kinds(sim.run(result("a", o))).get("user/a") for o in seq]
    assert got[:3] == [("new", True), ("recovered", True), ("new", True)]
    assert got[3] == ("flapping", True)  # 3rd change within 6 runs: announced once
    assert got[4:6] == [("flapping", False), ("flapping", False)]  # later changes are not alerted
    assert got[6] == ("flapping", False)
    assert got[7] == ("flapping", True)  # still flapping 1 h after the announcement: a reminder
    # Changes age out of the window: stable again and up -> one RECOVERED, then silence.
    assert got[8] == ("recovered", True) and got[9] is None


def test_flapping_settles_down_is_news() -> None:
    sim = Sim({"flapping": {"changes": 2, "window": 4}})
    for o in ("failed", "passed", "failed"):
        sim.run(result("a", o))
    assert sim.states["user/a"].flapping
    kinds = [sim.kinds(sim.run(result("a", "failed")))["user/a"] for _ in range(3)]
    # Flapping ends in a hard failure: that is news.
    assert kinds == [("flapping", False), ("new", True), ("ongoing", False)]


def test_flapping_settling_into_passes_while_still_down_is_not_a_new_problem() -> None:
    """Found by a random-sequence hunt: down, one pass starts flapping, the next pass ends it while the
    interface is still down (success_threshold 3). That pass used to be announced as a NEW problem."""
    sim = Sim({"success_threshold": 3, "flapping": {"changes": 2, "window": 6}})
    got = [sim.kinds(sim.run(result("a", o))).get("user/a") for o in
           ("passed", "failed", "failed", "failed", "failed", "passed", "passed", "passed")]
    assert got[1] == ("new", True) and got[5] == ("flapping", True)
    assert got[6] == ("recovering", False)  # was ("new", True) on a passing run
    assert got[7] == ("recovered", True)


def test_flapping_settling_into_failures_below_the_threshold_is_not_a_recovery() -> None:
    """Flapping announced while still up (failure_threshold 3), then two failures end it: that failing run
    used to announce RECOVERED. It is pending; reaching the threshold continues the announced problem (no
    second NEW for one announcement); a pass recovers."""
    sim = Sim({"failure_threshold": 3, "flapping": {"changes": 3, "window": 4}})
    got = [sim.kinds(sim.run(result("a", o))).get("user/a") for o in ("passed", "failed", "passed", "failed")]
    assert got[3] == ("flapping", True)
    assert sim.kinds(sim.run(result("a", "failed")))["user/a"] == ("pending", False)  # was ("recovered", True)
    assert sim.kinds(sim.run(result("a", "failed")))["user/a"] == ("ongoing", False)
    assert sim.states["user/a"].status == DOWN and sim.states["user/a"].alerted
    assert sim.kinds(sim.run(result("a")))["user/a"] == ("recovered", True)
    # The same, ending in a pass instead: the flapping announcement is resolved once.
    sim = Sim({"failure_threshold": 3, "flapping": {"changes": 3, "window": 4}})
    for o in ("passed", "failed", "passed", "failed", "failed"):
        sim.run(result("a", o))
    assert sim.kinds(sim.run(result("a")))["user/a"] == ("recovered", True)
    assert sim.run(result("a")).decisions == []


def test_flapping_disabled() -> None:
    sim = Sim({"flapping": False})
    kinds = [sim.kinds(sim.run(result("a", o)))["user/a"][0] for o in ["failed", "passed"] * 4]
    assert kinds == ["new", "recovered"] * 4


def storm_run(n_ok: int = 1) -> list[InterfaceResult]:
    out = [result(f"u{i}", "failed", "network", service="user") for i in range(4)]
    out += [result(f"o{i}", "failed", "timeout", service="order") for i in range(3)]
    return out + [result(f"p{i}", service="pay") for i in range(n_ok)]


def test_storm_guard_collapses_and_does_not_alert_each() -> None:
    sim = Sim()
    v = sim.run(*storm_run())
    assert v.storm is not None and v.storm.notify
    assert v.storm.by_service == {"order": 3, "user": 4} and (v.storm.failed, v.storm.executed) == (7, 8)
    assert "network or DNS" in v.storm.describe("en")
    assert {d.kind for d in v.decisions} == {Kind.STORM} and not any(d.notify for d in v.decisions)
    v = sim.run(*storm_run())
    assert v.storm is not None and not v.storm.notify and message_mode("change", v) == "none"
    # Network back, everything passes: one "storm over", no flood of RECOVERED (nothing was announced).
    v = sim.run(*[result(r.name, service=r.service) for r in storm_run()])
    assert v.storm is None and v.storm_ended == T0 + EVERY and v.worth_message
    assert v.decisions == []
    assert all(s.breaker == CLOSED for s in sim.states.values())


def test_storms_are_not_flapping() -> None:
    """Two network storms (the monitor's own network) within the flapping window, every interface passing
    otherwise: the storm failures used to enter the flapping history, so after the second storm every
    interface of the pool was announced as FLAPPING (default changes 4 in 10 runs)."""
    sim = Sim()
    healthy = [result(r.name, service=r.service) for r in storm_run()]
    got = []
    for run in (healthy, storm_run(), healthy, storm_run(), healthy, healthy):
        v = sim.run(*run)
        got += [(d.key, d.kind.value) for d in v.decisions if d.notify]
    assert got == []
    assert not any(s.flapping for s in sim.states.values())


def test_storm_needs_several_services_and_the_fraction() -> None:
    sim = Sim()
    one_service = [result(f"u{i}", "failed", "network") for i in range(6)]
    assert sim.run(*one_service).storm is None  # one service down is that service's problem
    sim = Sim({"storm": {"fraction": 0.9}})
    assert sim.run(*storm_run(n_ok=2)).storm is None  # 7 of 9 < 90 %
    sim = Sim({"storm": False})
    assert sim.run(*storm_run()).storm is None


def test_breaker_open_half_open_closed() -> None:
    sim = Sim(breaker={"failures": 3, "cooldown": "5m"})
    policy = sim.settings.for_service("user")
    for _ in range(2):
        sim.run(result("a", "failed"), advance=60)
    assert sim.states["user/a"].breaker == CLOSED
    v = sim.run(result("a", "failed"), advance=60)
    d = v.decision("user/a")
    assert d.breaker_event == "opened" and d.breaker == OPEN and d.next_probe_at == sim.now + 300
    opened_at = sim.now
    assert [s.key for s in v.open_circuits] == ["user/a"]

    g = gate(sim.states["user/a"], policy, sim.now + 60)
    assert not g.run and g.reason.startswith("circuit open since ") and ", next probe at " in g.reason
    assert skips(sim.states, sim.settings, sim.now + 60) == {"user/a": g.reason}
    # The lead skips it: a skipped result keeps it listed as ONGOING with the circuit open, counters untouched.
    v = sim.run(result("a", "skipped"), advance=60)
    d = v.decision("user/a")
    assert d.kind is Kind.ONGOING and d.circuit_skipped and d.breaker == OPEN and d.runs == 3
    assert "circuit open" in d.describe("en", sim.now)

    sim.now += 300
    g = gate(sim.states["user/a"], policy, sim.now)
    assert g.run and g.probe  # half-open: one probe
    v = sim.run(result("a", "failed"), advance=0)
    d = v.decision("user/a")
    assert d.breaker_event == "reopened" and sim.states["user/a"].next_probe_at == sim.now + 300
    assert sim.states["user/a"].open_since == opened_at
    assert not gate(sim.states["user/a"], policy, sim.now + 10).run

    sim.now += 300
    assert gate(sim.states["user/a"], policy, sim.now).probe
    v = sim.run(result("a"), advance=0)
    d = v.decision("user/a")
    assert (d.kind, d.breaker_event, d.breaker) == (Kind.RECOVERED, "closed", CLOSED)
    assert gate(sim.states["user/a"], policy, sim.now).run and v.open_circuits == []


def test_breaker_disabled_per_service() -> None:
    sim = Sim(breaker={"failures": 1}, services={"user": {"breaker": {"enabled": False}}})
    sim.run(result("a", "failed"), result("x", "failed", service="order"))
    assert sim.states["user/a"].breaker == CLOSED and sim.states["order/x"].breaker == OPEN
    assert gate(sim.states["user/a"], sim.settings.for_service("user"), sim.now).run


def test_removed_and_partial_selection() -> None:
    sim = Sim()
    sim.run(result("a", "failed"), result("b"))
    v = sim.run(result("b"), complete=False)  # a -k subset: a's memory stays
    assert "user/a" in sim.states and v.removed == []
    v = sim.run(result("b"))
    assert v.removed == ["user/a"] and sim.kinds(v) == {"user/a": ("removed", False)}
    assert "user/a" not in sim.states
    v = sim.run()  # an empty run never forgets everything
    assert "user/b" in sim.states


def test_user_skip_does_not_change_memory() -> None:
    sim = Sim()
    sim.run(result("a", "failed"))
    before = sim.states["user/a"]
    v = sim.run(result("a", "skipped"))
    assert v.decisions == [] and sim.states["user/a"] == before


def test_interface_key() -> None:
    assert interface_key(result("get profile", service="user")) == "user/get profile"


def test_parse_policy_shape_and_errors() -> None:
    s = parse_policy({"failure_threshold": 2, "remind_every": "30m", "flapping": {"changes": 5, "window": 12},
                      "storm": {"fraction": "60%", "min_services": 3}},
                     {"failures": "${BRK:-4}", "cooldown": "10m"},
                     {"user": {"success_threshold": 3, "breaker": {"cooldown": 60}}, "order": None},
                     environ={})
    assert s.defaults == AlertPolicy(failure_threshold=2, remind_every=1800, flapping_changes=5, flapping_window=12,
                                     breaker_failures=4, breaker_cooldown=600)
    assert s.storm.fraction == 0.6 and s.storm.min_services == 3
    user = s.for_service("user")
    assert (user.success_threshold, user.failure_threshold, user.breaker_cooldown, user.breaker_failures) == (
        3, 2, 60, 4)
    assert s.for_service("order") is s.defaults
    assert parse_policy(None).defaults == AlertPolicy()

    cases = [
        (({"failure_treshold": 2},), "alerts.failure_treshold", "did you mean"),
        (({"failure_threshold": 0},), "alerts.failure_threshold", ">= 1"),
        (({"remind_every": "soon"},), "alerts.remind_every", "15m"),
        (({"flapping": {"changes": 10, "window": 5}},), "alerts.flapping.changes", "cannot happen"),
        (({"storm": {"fraction": 2}},), "alerts.storm.fraction", "fraction"),
        ((None, {"cooldown": 0}), "breaker.cooldown", "> 0"),
        ((None, None, {"user": {"storm": False}}), "services.user.alerts.storm", "unknown key"),
        ((None, None, {"user": {"send_on_resolved": "maybe"}}), "services.user.alerts.send_on_resolved", "true"),
    ]
    for args, field, words in cases:
        with pytest.raises(ConfigError) as exc:
            parse_policy(*args)
        assert exc.value.field == field and words in str(exc.value), (field, str(exc.value))


def test_parse_state() -> None:
    s = parse_state({"dir": "var/apimon", "retention_days": 7, "lock_timeout": "2m"})
    assert (s.dir, s.retention_days, s.lock_timeout) == ("var/apimon", 7.0, 120.0)
    assert s.store_options() == {"raw_hours": 168.0, "hourly_days": 90.0, "daily_days": 730.0}  # legacy name
    s = parse_state({"raw_hours": 24, "hourly_days": 30, "daily_days": 400})
    assert s.store_options() == {"raw_hours": 24.0, "hourly_days": 30.0, "daily_days": 400.0}
    assert parse_state(None).store_options() == {"raw_hours": 48.0, "hourly_days": 90.0, "daily_days": 730.0}
    with pytest.raises(ConfigError) as exc:
        parse_state({"hourly_days": 3})
    assert exc.value.field == "state.hourly_days" and "7-day" in str(exc.value)
    assert parse_state(None, default_dir=".state").dir == ".state"
    with pytest.raises(ConfigError) as exc:
        parse_state({"retention_days": 0})
    assert exc.value.field == "state.retention_days"


def test_unchecked_step_announces_reminds_and_ends_like_a_lost_shard() -> None:
    """policy.unchecked_step (one Episode with shard_step): a service newly left unchecked is news, the same or a
    smaller set is a reminder once remind_every has passed, the whole pool checked again is told once; an
    unknown run (None) decides nothing and keeps the memory."""
    from pytest_apimon.policy import RunMemory, unchecked_step

    t0, hour = 1_790_000_000.0, 3600.0
    memory = RunMemory()
    assert unchecked_step(memory, [], t0, hour) is None  # complete, nothing remembered: nothing to say
    first = unchecked_step(memory, ["order", "order"], t0, hour)
    assert first is not None and (first.what, first.notify, first.since, first.names) == (
        "incomplete", True, t0, ("order",))
    again = unchecked_step(memory, ["order"], t0 + 900, hour)
    assert again is not None and (again.what, again.notify) == ("incomplete_ongoing", False)
    grown = unchecked_step(memory, ["order", "member"], t0 + 1800, hour)  # member's robots must learn of it
    assert grown is not None and (grown.what, grown.notify, grown.services) == (
        "incomplete", True, ("member", "order"))
    shrunk = unchecked_step(memory, ["member"], t0 + 2700, hour)  # which ones a dead worker leaves varies
    assert shrunk is not None and (shrunk.what, shrunk.notify) == ("incomplete_ongoing", False)
    assert unchecked_step(memory, None, t0 + 3000, hour) is None and memory.unchecked_names == ["member", "order"]
    due = unchecked_step(memory, ["member"], t0 + 1800 + hour, hour)
    assert due is not None and (due.what, due.notify, due.since) == ("incomplete_reminder", True, t0)
    back = unchecked_step(memory, [], t0 + 1800 + hour + 900, hour)
    assert back is not None and (back.what, back.notify, back.since, back.services) == (
        "incomplete_recovered", True, t0, ("member", "order"))
    assert unchecked_step(memory, [], t0 + 2 * hour + 1800, hour) is None
    assert (memory.unchecked_names, memory.unchecked_since, memory.unchecked_last_alert_at) == ([], None, None)
    assert memory.shards_missing == [] and memory.shards_since is None  # its own memory, beside the shards'
