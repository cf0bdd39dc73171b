"""Runner's backoff on a fake clock: retries are due at delay * factor ** (n - 1), and no real time passes."""

from __future__ import annotations

import threading

import pytest

from pytest_apimon.categories import Category, Outcome
from pytest_apimon.documents import Interface
from pytest_apimon.results import InterfaceResult
from pytest_apimon.retries import RetryPolicy
from pytest_apimon.runner import Runner

HANG = 30.0  # real seconds: only a guard against a hung test, never reached when the code is right


class FakeClock:
    """A monotonic clock that moves only when told, and the dispatcher's wait on it: `wait(cond, seconds)`
    records the requested seconds and returns when anything notifies `cond` (an enqueue, a completion, a stop,
    or `advance`)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []  # seconds the dispatcher asked to wait for a due retry, in order
        self._cond: threading.Condition | None = None
        self._seen = threading.Condition()

    def __call__(self) -> float:
        return self.now

    def wait(self, cond: threading.Condition, seconds: float | None) -> None:
        self._cond = cond
        if seconds is not None:
            with self._seen:
                self.waits.append(seconds)
                self._seen.notify_all()
        cond.wait()

    def wait_count(self, n: int) -> None:
        """Block until the dispatcher has asked for its `n`-th timed wait (it decided nothing is due yet)."""
        with self._seen:
            assert self._seen.wait_for(lambda: len(self.waits) >= n, HANG), self.waits

    def advance(self, seconds: float) -> None:
        assert self._cond is not None
        with self._cond:
            self.now += seconds
            self._cond.notify_all()


def itf(name: str) -> Interface:
    return Interface(name=name, service="svc", module="m", method="GET", path=f"/{name}")


class Script:
    """check(): fails with `category` for the first `failures` attempts of each interface, then passes.
    Records the fake time of every call."""

    def __init__(self, clock: FakeClock, failures: int, category: Category = Category.UNAVAILABLE) -> None:
        self.clock, self.failures, self.category = clock, failures, category
        self.calls: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, interface: Interface) -> InterfaceResult:
        with self._lock:
            times = self.calls.setdefault(interface.name, [])
            times.append(self.clock())
            n = len(times)
        result = InterfaceResult(nodeid=interface.name, service="svc", module="m", name=interface.name)
        if n <= self.failures:
            result.outcome, result.category = Outcome.FAILED, self.category
        return result


def runner(clock: FakeClock, check: Script, retry: RetryPolicy) -> Runner:
    return Runner(check, concurrency=4, max_per_host=4, retry=retry, host=lambda i: "h", clock=clock,
                  wait=clock.wait)


def test_backoff_waits_on_the_injected_clock() -> None:
    clock = FakeClock()
    check = Script(clock, failures=2)
    r = runner(clock, check, RetryPolicy(retries=3, delay=1.0, factor=2.0))
    r.start([("k", itf("k"))])
    try:
        first = r.result("k", 1)
        assert first is not None and first.outcome == Outcome.FAILED
        clock.wait_count(1)
        assert clock.waits == [1.0] and check.calls["k"] == [0.0]  # retry 1 is due 1 s after the failure
        clock.advance(0.5)
        clock.wait_count(2)
        assert clock.waits == [1.0, 0.5] and check.calls["k"] == [0.0]  # not due yet: waits the rest
        clock.advance(0.5)
        second = r.result("k", 2)
        assert second is not None and second.outcome == Outcome.FAILED and second.attempts == 2
        clock.wait_count(3)
        assert clock.waits[2] == 2.0  # then 2 s (factor 2)
        clock.advance(2.0)
        third = r.result("k", 3)
        assert third is not None and third.outcome == Outcome.PASSED and third.attempts == 3
        assert check.calls["k"] == [0.0, 1.0, 3.0]
    finally:
        r.close()


@pytest.mark.parametrize(("category", "retried"), [(Category.UNAVAILABLE, True), (Category.TIMEOUT, True),
                                                    (Category.NOT_FOUND, False), (Category.AUTH, False)])
def test_only_transient_categories_are_scheduled(category: Category, retried: bool) -> None:
    clock = FakeClock()
    check = Script(clock, failures=1, category=category)
    r = runner(clock, check, RetryPolicy(retries=2, delay=1.0, factor=2.0))
    r.start([("k", itf("k"))])
    try:
        assert r.result("k", 1).outcome == Outcome.FAILED  # type: ignore[union-attr]
        assert category.transient is retried
        if retried:
            clock.wait_count(1)
            clock.advance(1.0)
            assert r.result("k", 2).outcome == Outcome.PASSED  # type: ignore[union-attr]
        else:
            assert clock.waits == []  # nothing delayed: no retry was scheduled
        assert len(check.calls["k"]) == (2 if retried else 1)
    finally:
        r.close()


def test_user_filter_turns_off_retries_ahead() -> None:
    clock = FakeClock()
    check = Script(clock, failures=1)
    r = runner(clock, check, RetryPolicy(retries=2, ahead=False))
    r.start([("k", itf("k"))])
    try:
        assert r.result("k", 1).outcome == Outcome.FAILED  # type: ignore[union-attr]
        # pytest-rerunfailures asks for attempt 2 (the user's filter matched): run now, no backoff here.
        assert r.result("k", 2).outcome == Outcome.PASSED  # type: ignore[union-attr]
        assert clock.waits == [] and check.calls["k"] == [0.0, 0.0]
    finally:
        r.close()


def test_backoff_formula() -> None:
    policy = RetryPolicy(retries=3, delay=0.5, factor=3.0)
    assert [policy.backoff(n) for n in (1, 2, 3)] == [0.5, 1.5, 4.5]


def test_a_result_is_handed_over_not_kept() -> None:
    """Runner.result gives the attempt's result away: the item holds it, the Runner does not (a 10 000-interface
    run kept every result twice to the end)."""
    import gc
    import weakref

    def check(interface: Interface) -> InterfaceResult:
        return InterfaceResult(nodeid="", service="svc", module="m", name=interface.name, outcome=Outcome.PASSED)

    runner = Runner(check, concurrency=2, max_per_host=2, retry=RetryPolicy(retries=0), host=lambda i: "h")
    runner.start([("a", itf("a")), ("b", itf("b"))])
    try:
        first = runner.result("a")
        assert first is not None and first.name == "a"
        gone = weakref.ref(first)
        del first
        gc.collect()
        assert gone() is None
        second = runner.result("b")
        assert second is not None and second.name == "b"
    finally:
        runner.close()


@pytest.mark.timeout(60)  # a hang guard only: without the fix result("next") never returns
@pytest.mark.parametrize(("concurrency", "per_host"), [(1, 4), (4, 1)], ids=["run-wide", "per-host"])
def test_a_check_the_hang_guard_gave_up_on_frees_its_slot(concurrency: int, per_host: int) -> None:
    """A hung check keeps its thread (threads cannot be killed), but once the hang guard answered for it its slot
    goes to the next attempt: with every slot (of the run, or of a host after a 429 halved its cap) held by hung
    checks, the attempts behind them never started, so their waiters (which count the deadline from the start)
    waited for ever. Prefetched items have no pytest-timeout marker to end that wait (plugin.pytest_runtestloop)."""
    release = threading.Event()
    now = [0.0]

    def check(interface: Interface) -> InterfaceResult:
        if interface.name == "hangs":
            release.wait(30)  # a check stuck outside any socket deadline
        return InterfaceResult(nodeid="", service="svc", module="m", name=interface.name, outcome=Outcome.PASSED)

    def clock() -> float:
        now[0] += 1.0  # every look at the clock is one second later: the deadline passes without real waiting
        return now[0]

    runner = Runner(check, concurrency=concurrency, max_per_host=per_host, retry=RetryPolicy(retries=0),
                    host=lambda i: "h", clock=clock, deadline=lambda i: 5.0, poll=0.01)
    runner.start([("hangs", itf("hangs")), ("next", itf("next")), ("last", itf("last"))])
    try:
        hung = runner.result("hangs")
        assert hung is not None and (hung.category, hung.sub) == (Category.TIMEOUT, "hang")
        for key in ("next", "last"):
            result = runner.result(key)
            assert result is not None and result.outcome == Outcome.PASSED and result.name == key
    finally:
        release.set()
        runner.close()
