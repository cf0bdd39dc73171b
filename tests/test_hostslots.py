"""The per-host cap across xdist workers (hostslots.HostSlots), and the Runner taking its slots.

Two HostSlots on one folder stand for two workers: a lock is held by an open file, so they conflict as two
processes do. No real time passes: the Runner runs on test_runner's fake clock, and `hold` on an injected sleep.
"""

from __future__ import annotations

from pathlib import Path

from test_runner import FakeClock, Script, itf

from pytest_apimon.categories import Outcome
from pytest_apimon.hostslots import HostSlots
from pytest_apimon.retries import RetryPolicy
from pytest_apimon.runner import Runner


def test_at_most_cap_slots_per_host_across_holders(tmp_path: Path) -> None:
    one, other = HostSlots(tmp_path / "slots", cap=2), HostSlots(tmp_path / "slots", cap=2)
    first, second = one.try_acquire("api.example:443"), other.try_acquire("api.example:443")
    assert first is not None and second is not None
    assert one.try_acquire("api.example:443") is None and other.try_acquire("api.example:443") is None
    third_host = other.try_acquire("[::1]:8080")  # hosts are independent; odd host text makes a safe name
    assert third_host is not None
    HostSlots.release(first)
    again = other.try_acquire("api.example:443")
    assert again is not None and one.try_acquire("api.example:443") is None
    for lock in (second, again, third_host):
        HostSlots.release(lock)


def test_hold_waits_until_another_holder_releases(tmp_path: Path) -> None:
    other = HostSlots(tmp_path, cap=1)
    held = other.try_acquire("h")
    assert held is not None
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            HostSlots.release(held)  # the other worker's request ends

    slots = HostSlots(tmp_path, cap=1, poll=0.25, sleep=sleep)
    with slots.hold("h"):
        assert slept == [0.25] * 3
        assert other.try_acquire("h") is None  # now this holder has it
    mine = other.try_acquire("h")
    assert mine is not None  # given back after the block
    HostSlots.release(mine)


def test_runner_waits_for_a_slot_another_worker_holds(tmp_path: Path) -> None:
    """Before, each worker kept a per-host cap of at least 1: with `max_per_host: 1` and 4 workers, 4 requests
    reached the host at once. The Runner now takes one of the host's slots for each attempt."""
    other = HostSlots(tmp_path, cap=1)
    held = other.try_acquire("h")
    assert held is not None
    clock = FakeClock()
    check = Script(clock, failures=0)
    runner = Runner(check, concurrency=4, max_per_host=1, retry=RetryPolicy(retries=0), host=lambda i: "h",
                    clock=clock, wait=clock.wait, slots=HostSlots(tmp_path, cap=1, poll=0.5))
    runner.start([("a", itf("a")), ("b", itf("b"))])
    try:
        clock.wait_count(1)
        assert clock.waits == [0.5] and check.calls == {}  # no free slot: nothing sent, tried again in a poll
        HostSlots.release(held)
        clock.advance(0.5)
        for key in ("a", "b"):
            result = runner.result(key)
            assert result is not None and result.outcome == Outcome.PASSED
        assert list(check.calls) == ["a", "b"]
        freed = other.try_acquire("h")  # the Runner gave its slot back after each attempt
        assert freed is not None
        HostSlots.release(freed)
    finally:
        runner.close()


def test_an_unusable_folder_never_blocks_or_raises(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    slots = HostSlots(blocker / "slots", cap=1)  # mkdir below a file fails
    first, second = slots.try_acquire("h"), slots.try_acquire("h")
    assert first is not None and second is not None  # no cross-process cap, but the run goes on
    HostSlots.release(first)
    HostSlots.release(second)
    assert sum("not enforced" in r.getMessage() for r in caplog.records) == 1
