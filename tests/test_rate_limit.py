"""Rate limiting is its own case (issue 19.2): `rate_limited`, Retry-After honoured (capped), per-host back-off,
and the report says that the monitor itself is being rate-limited.

Runner tests use a fake clock and assert on the order of events; the plugin tests use Retry-After: 1 against a
local server and assert on outcomes only.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from localserver import LocalServer, Response
from test_plugin import XDIST, write

from pytest_apimon.categories import Category
from pytest_apimon.classify import classify, retry_after
from pytest_apimon.documents import Expect, Interface
from pytest_apimon.probe import Exchange
from pytest_apimon.report import render_json, render_markdown, render_terminal
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.retries import RetryPolicy
from pytest_apimon.runner import Runner

# --- classification and Retry-After ----------------------------------------------------------------------------


def exchange(status: int, headers: dict[str, str] | None = None) -> Exchange:
    return Exchange("GET", "http://h/x", {}, None, status=status, response_headers=headers or {})


def test_429_is_rate_limited_unless_expected() -> None:
    out = classify(exchange(429), Expect())
    assert out.category is Category.RATE_LIMITED and out.reason.startswith("HTTP 429")
    assert classify(exchange(429), Expect(status=(429,))).passed
    assert classify(exchange(503, {"Retry-After": "1"}), Expect()).category is Category.UNAVAILABLE


NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(("value", "seconds"), [
    ("1", 1.0), ("0", 0.0), (" 120 ", 120.0),
    ("Sun, 29 Nov 2026 12:00:07 GMT", 7.0),  # IMF-fixdate
    ("Sunday, 29-Nov-26 12:00:30 GMT", 30.0),  # obsolete RFC 850
    ("Sun Nov 29 12:01:00 2026", 60.0),  # obsolete asctime
    ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0),  # in the past: now
    ("-1", None), ("1.5", None), ("soon", None), ("", None),
])
def test_retry_after_seconds_or_http_date(value: str, seconds: float | None) -> None:
    assert retry_after({"Retry-After": value}, NOW) == seconds
    assert retry_after({"retry-after": value}, NOW) == seconds  # header names are case-insensitive


@given(st.text(max_size=40))
@example("²")  # crasher found by hypothesis: str.isdigit() is true for superscripts
@example("Sun, 29 Nov 99999 12:00:00 GMT")
def test_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    got = retry_after({"Retry-After": value}, NOW)
    assert got is None or got >= 0


@given(st.integers(min_value=0, max_value=10**12))
def test_retry_after_delay_seconds_are_exact(seconds: int) -> None:
    assert retry_after({"Retry-After": str(seconds)}, NOW) == float(seconds)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1)))
def test_retry_after_http_date_round_trip(when: datetime) -> None:
    when = when.replace(microsecond=0, tzinfo=timezone.utc)
    expected = max(0.0, when.timestamp() - NOW)
    assert retry_after({"Retry-After": format_datetime(when, usegmt=True)}, NOW) == expected


def test_no_retry_after_header() -> None:
    assert retry_after({"Content-Type": "text/plain"}, NOW) is None


def test_wait_after_honours_retry_after_capped_else_backoff() -> None:
    policy = RetryPolicy(retries=3, delay=1, factor=2, max_wait=30)
    result = InterfaceResult("n", "s", "m", "x", outcome="failed", category="rate_limited")
    assert policy.wait_after(result, 2) == 2.0  # no header: the normal backoff
    result.retry_after = 5.0
    assert policy.wait_after(result, 2) == 5.0
    result.retry_after = 3600.0
    assert policy.wait_after(result, 2) == 30.0  # capped by the run's limit
    assert policy.longest_wait() == 30.0


# --- the runner: Retry-After and per-host back-off, on a fake clock ----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Script:
    """check(): answers per interface name from a list of (category, retry_after); records (name, time) starts."""

    def __init__(self, clock: Clock, answers: dict[str, list[tuple[str | None, float | None]]]) -> None:
        self.clock = clock
        self.answers = answers
        self.starts: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, itf: Interface) -> InterfaceResult:
        with self.lock:
            self.starts.append((itf.name, self.clock()))
            queue = self.answers[itf.name]
            category, after = queue.pop(0) if len(queue) > 1 else queue[0]
        result = InterfaceResult(itf.name, itf.service, itf.module, itf.name, retry_after=after)
        if category is not None:
            result.outcome, result.category = "failed", category
        return result


def runner_for(script: Script, clock: Clock, *, per_host: int, retries: int = 2) -> Runner:
    return Runner(script, concurrency=8, max_per_host=per_host, host=lambda itf: "api.test",
                  retry=RetryPolicy(retries=retries, delay=1, factor=2, max_wait=30), clock=clock)


def itf(name: str) -> Interface:
    return Interface(service="svc", module="m", name=name, method="GET", url="http://api.test/" + name)


def advance(runner: Runner, clock: Clock, seconds: float) -> None:
    clock.t += seconds
    with runner._cond:  # wake the dispatcher: its waits are computed from the (fake) clock
        runner._cond.notify_all()


def test_429_holds_the_host_until_retry_after_and_halves_its_concurrency() -> None:
    clock = Clock()
    script = Script(clock, {"a": [("rate_limited", 5.0), (None, None)], "b": [(None, None)]})
    runner = runner_for(script, clock, per_host=1)
    runner.start([("a", itf("a")), ("b", itf("b"))])
    try:
        assert runner.result("a", 1).category == "rate_limited"
        assert [name for name, _ in script.starts] == ["a"]  # b waits: the host asked for 5 s of quiet
        assert runner.rate_limited_hosts() == {"api.test": (1, 1)}
        advance(runner, clock, 4.9)
        advance(runner, clock, 0.1)
        assert runner.result("b", 1).outcome == "passed"
        assert runner.result("a", 2).outcome == "passed"
        assert all(t >= 5.0 for name, t in script.starts[1:])
    finally:
        runner.close()


def test_concurrency_to_a_rate_limiting_host_is_halved_once_per_wave() -> None:
    clock = Clock()
    script = Script(clock, {n: [("rate_limited", None)] for n in "abc"})
    gate = threading.Barrier(3, timeout=10)
    check = script.__call__

    def all_in_flight(interface: Interface) -> InterfaceResult:
        if len(script.starts) < 3:
            gate.wait()  # the three first requests are in flight together before any answer
        return check(interface)

    runner = Runner(all_in_flight, concurrency=8, max_per_host=8, host=lambda i: "api.test",
                    retry=RetryPolicy(retries=0, max_wait=30), clock=clock)
    runner.start([(n, itf(n)) for n in "abc"])
    try:
        for n in "abc":
            assert runner.result(n, 1).category == "rate_limited"
        assert runner.rate_limited_hosts() == {"api.test": (3, 4)}  # one wave: 8 -> 4, not 8 -> 1
        assert runner.result("a", 2).category == "rate_limited"  # sent after the cut: a new wave
        assert runner.rate_limited_hosts() == {"api.test": (4, 2)}
    finally:
        runner.close()


@pytest.mark.parametrize(("after", "due"), [(5.0, 5.0), (3600.0, 30.0), (None, 1.0)])
def test_503_retry_after_delays_only_its_own_retry(after: float | None, due: float) -> None:
    clock = Clock()
    script = Script(clock, {"a": [("unavailable", after), (None, None)], "b": [(None, None)]})
    runner = runner_for(script, clock, per_host=1)
    runner.start([("a", itf("a")), ("b", itf("b"))])
    try:
        assert runner.result("a", 1).category == "unavailable"
        assert runner.result("b", 1).outcome == "passed"  # no host hold for a 503
        advance(runner, clock, due - 0.5)
        assert [n for n, _ in script.starts] == ["a", "b"]  # the retry is not due yet
        advance(runner, clock, 0.5)
        assert runner.result("a", 2).outcome == "passed"
        assert script.starts[-1] == ("a", due)
        assert runner.rate_limited_hosts() == {}
    finally:
        runner.close()


# --- the report -------------------------------------------------------------------------------------------------


def test_report_says_the_monitor_is_rate_limited() -> None:
    run = RunResult(0, 1, "prod", [InterfaceResult("n", "s", "m", "x", outcome="failed", category="rate_limited",
                                                   status=429)],
                    rate_limited={"api.test:443": 4}, host_caps={"api.test:443": 4})
    assert "The monitor itself is being rate-limited: api.test:443 answered 429 4 time(s); concurrency to it " \
           "lowered to 4" in render_terminal(run, "en")
    assert "监控自身被限流：api.test:443 返回 429 共 4 次" in render_markdown(run, "zh")
    assert json.loads(render_json(run))["rate_limited"] == {"api.test:443": {"responses": 4, "concurrency": 4}}


# --- end to end: the example --------------------------------------------------------------------------


def workspace(pytester: pytest.Pytester, srv: LocalServer, retries: int = 2) -> None:
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def once(status: int, headers: dict[str, str]):
        def handler(req):
            with lock:
                seen[req.path] = seen.get(req.path, 0) + 1
                first = seen[req.path] == 1
            return Response(status, headers, "slow down") if first else {"ok": True}
        return handler

    srv.route("GET", "/svc/limited-once", once(429, {"Retry-After": "1"}))
    srv.route("GET", "/svc/busy-once", once(503, {"Retry-After": "1"}))
    srv.route("GET", "/svc/gateway-once", once(502, {"Retry-After": "1"}))
    srv.route("GET", "/svc/always-limited", lambda r: Response(429, {"Retry-After": "1"}, "quota"))
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: {retries}, retry_delay: 0.1}}
        services:
          svc: {{base_url: "{srv.url}/svc"}}
    """)
    write(pytester.path, "pool/svc/api.yaml", """
        - {name: limited-once, path: /limited-once}
        - {name: busy-once, path: /busy-once}
        - {name: gateway-once, path: /gateway-once}
        - {name: always-limited, path: /always-limited}
    """)


@pytest.mark.parametrize("extra", XDIST)
def test_429_with_retry_after_is_retried_and_reported(pytester: pytest.Pytester, local_server: LocalServer,
                                                      extra: list[str]) -> None:
    workspace(pytester, local_server, retries=1)
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", "--apimon-lang", "en", *extra)
    result.assert_outcomes(passed=3, failed=1)
    records = {r["name"]: r for r in json.loads((pytester.path / "out/r.json").read_text("utf-8"))["results"]}
    for name in ("limited-once", "busy-once", "gateway-once"):
        assert (records[name]["outcome"], records[name]["attempts"], records[name]["flaky"]) == ("passed", 2, True)
    limited = records["always-limited"]
    assert (limited["category"], limited["status"], limited["attempts"]) == ("rate_limited", 429, 2)
    assert local_server.count("/svc/always-limited") == 2
    host = f"127.0.0.1:{local_server.port}"
    result.stdout.fnmatch_lines([f"The monitor itself is being rate-limited: {host} answered 429 3 time(s)*"])
    doc = json.loads((pytester.path / "out/r.json").read_text("utf-8"))
    assert doc["rate_limited"][host]["responses"] == 3


@pytest.mark.timeout(60)  # a hang guard only: a longer wait than allowed never lets the next attempt start
@pytest.mark.parametrize("header", ["99999999999999999999999", "Fri, 01 Jan 2100 00:00:00 GMT", "3600"])
def test_long_retry_after_both_forms_share_one_capped_budget(header: str) -> None:
    """Seconds and HTTP-date forms alike: one interface's Retry-After waits together stay within max_wait (the
    run's deadline for them); once spent, each retry still waits the normal backoff. Before, a bad header cost
    max_wait per retry (3 × 30 s for one interface on a 3 s timeout)."""
    after = retry_after({"Retry-After": header}, NOW)
    assert after is not None and after >= 3600
    clock = Clock()
    script = Script(clock, {"a": [("rate_limited", after)]})
    runner = runner_for(script, clock, per_host=1, retries=3)
    runner.start([("a", itf("a"))])
    try:
        # the waits: 30 s (the whole budget), then the normal backoff 2 s, 4 s (were 30 s each)
        for attempt, wait in ((1, 30.0), (2, 2.0), (3, 4.0)):
            assert runner.result("a", attempt).category == "rate_limited"
            advance(runner, clock, wait)
        assert runner.result("a", 4).attempts == 4
    finally:
        runner.close()
    assert [t for _, t in script.starts] == [0.0, 30.0, 32.0, 36.0]
    policy = RetryPolicy(retries=3, delay=1, factor=2, max_wait=30)
    result = InterfaceResult("n", "s", "m", "x", outcome="failed", category="rate_limited", retry_after=after)
    assert [policy.wait_after(result, 1, 0.0), policy.wait_after(result, 2, 30.0),
            policy.wait_after(result, 3, 32.0)] == [30.0, 2.0, 4.0]


def test_short_retry_after_is_honoured_each_time_within_the_budget() -> None:
    policy = RetryPolicy(retries=3, delay=1, factor=2, max_wait=30)
    result = InterfaceResult("n", "s", "m", "x", outcome="failed", category="rate_limited", retry_after=20.0)
    assert policy.wait_after(result, 1, 0.0) == 20.0
    assert policy.wait_after(result, 2, 20.0) == 10.0  # what is left of the 30 s budget
    assert policy.wait_after(result, 3, 30.0) == 4.0  # budget spent: the normal backoff
    result.retry_after = 0.5
    assert policy.wait_after(result, 3, 30.0) == 0.5  # the server asked for less
