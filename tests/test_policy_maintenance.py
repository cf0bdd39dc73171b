"""Maintenance windows and the SLOW alert in the alert state machine (policy.py), run after run on a fake clock."""

from __future__ import annotations

import pytest

from pytest_apimon.config import ConfigError
from pytest_apimon.policy import DOWN, OPEN, UP, Kind, RunMemory, evaluate, message_mode, triggers
from pytest_apimon.policy_settings import parse_policy
from pytest_apimon.results import InterfaceResult

T0 = 1_700_000_000.0
EVERY = 900.0
WINDOW = {"user": "weekly release (sat 02:00–04:00)"}


def result(name: str, outcome: str = "passed", *, slow: bool = False, service: str = "user") -> InterfaceResult:
    return InterfaceResult(nodeid=f"pool/{service}/{name}.yaml::{name}", service=service, module="m", name=name,
                           outcome=outcome, category="server_error" if outcome == "failed" else None,
                           status=500 if outcome == "failed" else 200, elapsed_ms=900.0 if slow else 50.0,
                           slow=slow, warn_ms=500.0)


class Sim:
    def __init__(self, alerts: dict | None = None, breaker: dict | None = None) -> None:
        self.settings = parse_policy(alerts, breaker)
        self.states: dict = {}
        self.memory = RunMemory()
        self.now = T0

    def run(self, *results: InterfaceResult, maintenance: dict | None = None):
        self.now += EVERY
        verdict = evaluate(self.states, results, self.settings, self.now, self.memory, maintenance=maintenance)
        self.states, self.memory = verdict.states, verdict.memory
        return verdict


def notified(verdict) -> list[tuple[str, str]]:
    return [(d.key, d.kind.value) for d in (*verdict.decisions, *verdict.slow) if d.notify]


def test_outage_that_outlasts_the_window_is_new_at_its_end() -> None:
    sim = Sim()
    sim.run(result("a"))
    for _ in range(4):
        v = sim.run(result("a", "failed"), maintenance=WINDOW)
        d = v.decision("user/a")
        assert d.kind is Kind.MAINTENANCE and not d.notify and not v.worth_message
        assert message_mode("failure", v) == "none" and message_mode("always", v) == "full"
        assert "not alerted" in d.describe("en", sim.now)
    started = sim.states["user/a"].failing_since
    assert sim.states["user/a"].status == DOWN and not sim.states["user/a"].alerted
    v = sim.run(result("a", "failed"))  # first run after the window, still down
    d = v.decision("user/a")
    assert (d.kind, d.notify, d.since, d.runs) == (Kind.NEW, True, started, 5)
    assert [t.what for t in triggers(v, "full", "change")] == ["new"]


def test_failed_and_recovered_inside_the_window_sends_nothing() -> None:
    sim = Sim()
    sim.run(result("a", "failed"), maintenance=WINDOW)
    sim.run(result("a"), maintenance=WINDOW)
    v = sim.run(result("a"))
    assert notified(v) == [] and v.decisions == []
    assert sim.states["user/a"].status == UP


def test_down_in_window_passing_at_its_end_with_success_threshold_is_not_new() -> None:
    sim = Sim({"success_threshold": 3})
    sim.run(result("a", "failed"), maintenance=WINDOW)
    for _ in range(3):  # recovering silently: it was never announced, so no NEW while passing, no RECOVERED
        assert notified(sim.run(result("a"))) == []
    assert sim.states["user/a"].status == UP


def test_announced_before_the_window_holds_reminder_and_recovered_until_it_ends() -> None:
    sim = Sim({"remind_every": "15m"})
    assert notified(sim.run(result("a", "failed"))) == [("user/a", "new")]
    v = sim.run(result("a", "failed"), maintenance=WINDOW)  # a reminder would be due
    assert notified(v) == [] and v.decision("user/a").kind is Kind.MAINTENANCE
    v = sim.run(result("a"), maintenance=WINDOW)  # recovered in the window: held
    assert notified(v) == [] and sim.states["user/a"].alerted
    assert notified(sim.run(result("a"))) == [("user/a", "recovered")]


def test_the_window_does_not_make_flapping() -> None:
    sim = Sim({"flapping": {"changes": 3, "window": 6}})
    for i in range(6):  # restarts during the window
        sim.run(result("a", "failed" if i % 2 else "passed"), maintenance=WINDOW)
    assert sim.states["user/a"].recent == ""
    assert notified(sim.run(result("a"))) == []


def test_the_breaker_is_not_opened_in_the_window() -> None:
    sim = Sim(breaker={"failures": 2, "cooldown": "1h"})
    for _ in range(5):
        v = sim.run(result("a", "failed"), maintenance=WINDOW)
        assert sim.states["user/a"].breaker != OPEN and v.decision("user/a").breaker_event == ""
    v = sim.run(result("a", "failed"))  # after the window: the streak is real, the NEW goes out, then it opens
    d = v.decision("user/a")
    assert (d.kind, d.notify) == (Kind.NEW, True) and d.breaker_event == "opened"


def test_only_the_services_in_the_window_are_held() -> None:
    sim = Sim()
    v = sim.run(result("a", "failed"), result("b", "failed", service="order"), maintenance=WINDOW)
    assert notified(v) == [("order/b", "new")]
    assert v.maintenance == WINDOW


def test_maintenance_failures_do_not_make_a_storm() -> None:
    sim = Sim()
    svcs = {f"s{i}": "w" for i in range(4)}
    results = [InterfaceResult(nodeid=f"n{i}", service=f"s{i}", module="m", name="x", outcome="failed",
                               category="network") for i in range(4)]
    v = sim.run(*results, maintenance=svcs)
    assert v.storm is None and notified(v) == []


def test_slow_after_threshold_once_then_cleared() -> None:
    sim = Sim()
    assert notified(sim.run(result("a", slow=True))) == []
    first = sim.now
    assert notified(sim.run(result("a", slow=True))) == []
    v = sim.run(result("a", slow=True))
    assert notified(v) == [("user/a", "slow")] and v.worth_message
    assert v.decisions == []  # not a failure: the up/down machine says nothing
    d = v.slow[0]
    assert (d.since, d.runs) == (first, 3) and "over warn_ms 3 runs" in d.describe("en", sim.now)
    assert [t.what for t in triggers(v, "full", "change")] == ["slow"]
    assert sim.states["user/a"].status == UP and sim.states["user/a"].consecutive_failures == 0
    for _ in range(5):  # sent once: no reminders
        assert notified(sim.run(result("a", slow=True))) == []
    assert notified(sim.run(result("a"))) == []
    assert notified(sim.run(result("a"))) == []
    assert notified(sim.run(result("a"))) == [("user/a", "slow_cleared")]
    assert not sim.states["user/a"].slow_alerted


def test_a_normal_run_breaks_the_slow_streak_and_a_slow_one_the_clearing() -> None:
    sim = Sim({"slow_threshold": 2, "normal_threshold": 2})
    sim.run(result("a", slow=True))
    sim.run(result("a"))
    assert notified(sim.run(result("a", slow=True))) == []
    assert notified(sim.run(result("a", slow=True))) == [("user/a", "slow")]
    sim.run(result("a"))
    sim.run(result("a", slow=True))  # back to slow before clearing: still the same SLOW, not repeated
    sim.run(result("a"))
    assert notified(sim.run(result("a"))) == [("user/a", "slow_cleared")]


def test_slow_off_and_resolved_off_and_failures() -> None:
    sim = Sim({"slow_threshold": 0})
    for _ in range(5):
        assert notified(sim.run(result("a", slow=True))) == []
    sim = Sim({"slow_threshold": 1, "normal_threshold": 1, "send_on_resolved": False})
    assert notified(sim.run(result("a", slow=True))) == [("user/a", "slow")]
    sim.run(result("a", "failed"))  # a failure is the other machine's news; SLOW stays announced
    assert sim.states["user/a"].slow_alerted
    v = sim.run(result("a"))
    assert [d.kind for d in v.slow] == [Kind.SLOW_CLEARED] and not v.slow[0].notify


def test_slow_is_held_in_the_window_and_announced_after_it() -> None:
    sim = Sim({"slow_threshold": 2})
    for _ in range(3):
        assert notified(sim.run(result("a", slow=True), maintenance=WINDOW)) == []
    assert notified(sim.run(result("a", slow=True))) == [("user/a", "slow")]


def test_slow_settings_per_service_and_errors() -> None:
    settings = parse_policy({"slow_threshold": 5}, None, {"user": {"slow_threshold": 2, "normal_threshold": 4}})
    assert (settings.defaults.slow_threshold, settings.defaults.normal_threshold) == (5, 3)
    assert (settings.for_service("user").slow_threshold, settings.for_service("user").normal_threshold) == (2, 4)
    with pytest.raises(ConfigError, match=r"alerts.slow_threshold: expected a whole number >= 0"):
        parse_policy({"slow_threshold": -1})
    with pytest.raises(ConfigError, match=r"normal_threshold: expected a whole number >= 1"):
        parse_policy(None, None, {"user": {"normal_threshold": 0}})


def test_recovered_inside_the_window_then_failing_after_it_is_neither_recovered_nor_new_again() -> None:
    """Announced down, passes inside the window (the recovery is held), fails again after it: the failing
    runs are not a RECOVERED (failure_threshold 2 left it 'up' for one run) and not a second NEW."""
    sim = Sim({"failure_threshold": 2})
    for _ in range(2):
        sim.run(result("a", "failed"))
    assert notified(sim.run(result("a", "failed"))) == [] and sim.states["user/a"].alerted
    for _ in range(2):
        sim.run(result("a"), maintenance=WINDOW)
    assert sim.states["user/a"].status == UP and sim.states["user/a"].alerted  # held until the window ends
    v = sim.run(result("a", "failed"))
    assert (v.decision("user/a").kind, notified(v)) == (Kind.PENDING, [])  # was a RECOVERED on a failure
    v = sim.run(result("a", "failed"))
    assert v.decision("user/a").kind is Kind.ONGOING  # the announcement is still open: at most a reminder
    assert ("user/a", "new") not in notified(v)
    assert notified(sim.run(result("a"))) == [("user/a", "recovered")]


def test_down_inside_the_window_with_its_circuit_open_is_new_on_the_first_skip_after_it() -> None:
    """The circuit opened before the interface counted as down (breaker.failures 1 < failure_threshold 2),
    the failure that made it down was inside the window: the first run after the window skips it (circuit
    open), and used to stay silent until the next half-open probe. It is the NEW problem there."""
    sim = Sim({"failure_threshold": 2}, breaker={"failures": 1, "cooldown": "1h"})
    sim.run(result("a", "failed"))
    assert sim.states["user/a"].breaker == OPEN and sim.states["user/a"].status == UP
    sim.now += 3600  # past the cooldown: the half-open probe runs inside the window and fails
    v = sim.run(result("a", "failed"), maintenance=WINDOW)
    assert sim.states["user/a"].status == DOWN and not sim.states["user/a"].alerted and notified(v) == []
    v = sim.run(result("a", "skipped"))  # circuit open: not checked, known down
    d = v.decision("user/a")
    assert (d.kind, d.notify, d.circuit_skipped) == (Kind.NEW, True, True)
    assert notified(sim.run(result("a", "skipped"))) == []  # once
