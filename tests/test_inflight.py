"""The in-flight ledger a prefetching xdist worker keeps (inflight.py), read by the controller after a death."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pytest_apimon.inflight import Ledger, in_flight, ledger_path


def test_what_was_started_and_not_finished_is_in_flight(tmp_path: Path) -> None:
    path = ledger_path(tmp_path, "gw1")
    assert in_flight(path) is None  # no ledger: nothing known
    ledger = Ledger(path)
    for key in ("a.json::x", "a.json::y", "b.yaml::名字 with spaces"):
        ledger.started(key)
    ledger.finished("a.json::x")
    ledger.started("a.json::x")  # its retry
    ledger.finished("a.json::y")
    ledger.finished("a.json::y")  # a hung check's late return after the hang guard: never below 0
    assert in_flight(path) == {"a.json::x", "b.yaml::名字 with spaces"}
    ledger.close()


def test_an_unwritable_ledger_never_raises(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "missing-folder" / "inflight-gw0")
    ledger.started("k")
    ledger.finished("k")
    assert in_flight(tmp_path / "missing-folder" / "inflight-gw0") is None


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["p::a", "p::b", "p::c"])), max_size=40))
def test_in_flight_is_the_running_count_above_zero(tmp_path_factory, events: list[tuple[bool, str]]) -> None:
    path = tmp_path_factory.mktemp("ledger") / "inflight-gw0"
    ledger = Ledger(path)
    running: dict[str, int] = {}
    for start, key in events:
        if start:
            ledger.started(key)
            running[key] = running.get(key, 0) + 1
        else:
            ledger.finished(key)
            running[key] = max(0, running.get(key, 0) - 1)
    ledger.close()
    expected = {k for k, v in running.items() if v > 0}
    assert in_flight(path) == (expected if events else None)
