"""The SQLite state store: schema and migrations, one transaction per run, retention, trend queries, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_apimon import state as state_mod
from pytest_apimon.policy import InterfaceState, RunMemory, evaluate
from pytest_apimon.policy_settings import parse_policy
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import DAY, SCHEMA_VERSION, StateError, StateStore, p95

T0 = 1_700_000_000.0


def res(name: str, outcome: str = "passed", elapsed: float | None = 100.0, service: str = "user") -> InterfaceResult:
    return InterfaceResult(nodeid=f"p/{service}/x.yaml::{name}", service=service, module="x", name=name,
                           outcome=outcome, category="timeout" if outcome == "failed" else None,
                           status=None if outcome == "failed" else 200, elapsed_ms=elapsed, attempts=2)


def run_at(ts: float, *results: InterfaceResult, env: str = "prod") -> RunResult:
    return RunResult(started_at=ts, finished_at=ts + 5, env=env, results=list(results))


def record(store: StateStore, ts: float, *results: InterfaceResult, env: str = "prod") -> int:
    states = store.load_states(env)
    verdict = evaluate(states, results, parse_policy(None), ts + 5, store.load_memory(env))
    return store.record_run(run_at(ts, *results, env=env), verdict.states, verdict.memory, removed=verdict.removed,
                            now=ts + 5)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migration_from_empty_db_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "st" / "state.db"
    with StateStore(db) as store:
        assert store.version == SCHEMA_VERSION == 7
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert {"schema_version", "runs", "results", "alert_state", "meta", "rollups", "rollup_keys",
            "incidents", "certificates"} <= tables(db)
    with StateStore(db) as store:  # no second migration
        assert store.conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def indexes(store: StateStore) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def test_v6_database_gets_the_partial_failure_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """v7 (issue 18): the index over every raw row by key gives way to one over failed rows only."""
    with monkeypatch.context() as m:
        m.setattr(state_mod, "MIGRATIONS", state_mod.MIGRATIONS[:6])
        m.setattr(state_mod, "SCHEMA_VERSION", 6)
        with StateStore.in_dir(tmp_path) as store:
            record(store, T0, res("a", "failed"), res("b"))
            assert "results_key" in indexes(store)
    with StateStore.in_dir(tmp_path) as store:
        assert store.version == SCHEMA_VERSION == 7
        assert indexes(store) == {"runs_env_started", "results_failed"}
        plan = " ".join(str(tuple(r)) for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT MAX(run_id) FROM results WHERE outcome = 'failed' AND key = 'svc/a'"))
        assert "results_failed" in plan
        assert store.last_failures("prod", ["user/a", "user/b"])["user/a"].category == "timeout"
        assert set(store.last_failure_since("prod", T0 - 1)) == {"user/a"}


def test_future_migration_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with StateStore.in_dir(tmp_path) as store:
        record(store, T0, res("a"))
    v_next = [*state_mod.MIGRATIONS, ["ALTER TABLE runs ADD COLUMN note TEXT"]]
    monkeypatch.setattr(state_mod, "MIGRATIONS", v_next)
    monkeypatch.setattr(state_mod, "SCHEMA_VERSION", len(v_next))
    with StateStore.in_dir(tmp_path) as store:
        assert store.version == len(v_next) and len(store.runs("prod")) == 1
        assert "note" in {r[1] for r in store.conn.execute("PRAGMA table_info(runs)")}


def test_v1_database_is_migrated_with_its_alert_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_mod, "MIGRATIONS", state_mod.MIGRATIONS[:1])
    monkeypatch.setattr(state_mod, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(state_mod, "_STATE_COLUMNS", [c for c in state_mod._STATE_COLUMNS
                                                      if c not in ("pool", "last_category")])
    with StateStore.in_dir(tmp_path) as store:
        store.conn.execute("INSERT INTO alert_state (env, key, service, status, consecutive_failures,"
                           " consecutive_successes, alerted, flapping, recent, breaker, updated_at)"
                           " VALUES ('prod', 's/a', 's', 'down', 3, 0, 1, 0, 'FFF', 'closed', 0)")
    monkeypatch.undo()
    with StateStore.in_dir(tmp_path) as store:
        state = store.load_states("prod")["s/a"]
        assert store.version == SCHEMA_VERSION and state.status == "down" and state.alerted and state.pool == ""


def test_newer_schema_and_garbage_are_clear_errors(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    StateStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(StateError, match="newer than this pytest-apimon"):
        StateStore(db)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="move it away"):
        StateStore(bad)


def test_record_and_reload_state(tmp_path: Path) -> None:
    with StateStore.in_dir(tmp_path) as store:
        run_id = record(store, T0, res("a", "failed", elapsed=None), res("b"), res("c", "skipped"))
        row = store.runs("prod")[0]
        assert (row.id, row.total, row.passed, row.failed, row.skipped, row.selection_complete) == (
            run_id, 3, 1, 1, 1, True)
        states = store.load_states("prod")
        assert set(states) == {"user/a", "user/b"}  # a plain skip of a never-seen interface remembers nothing
        assert states["user/a"].status == "down" and states["user/a"].alerted is True
        assert store.load_states("staging") == {}  # alert memory is per env
        store.record_run(run_at(T0 + 60), {}, RunMemory(storm_since=T0, storm_last_alert_at=T0 + 1), now=T0 + 60)
        assert store.load_memory("prod") == RunMemory(T0, T0 + 1)
        assert store.load_memory("staging") == RunMemory()
        rows = store.results("prod", keys=["user/a"])
        assert [(r.outcome, r.category, r.attempts, r.latency_ms) for r in rows] == [("failed", "timeout", 2, None)]


def test_state_roundtrip_all_fields(tmp_path: Path) -> None:
    s = InterfaceState("svc/x", "svc", "down", 7, 0, T0, T0 + 1, T0 + 2, T0 + 3, True, True, "FPFPF", "open",
                       T0 + 4, T0 + 5)
    with StateStore.in_dir(tmp_path) as store:
        store.record_run(run_at(T0), {"svc/x": s}, now=T0)
        assert store.load_states("prod") == {"svc/x": s}


def test_retention_prunes_in_the_same_transaction(tmp_path: Path) -> None:
    with StateStore.in_dir(tmp_path, retention_days=2) as store:
        for day in range(5):
            record(store, T0 + day * DAY, res("a"), res("b"))
        starts = [r.started_at for r in store.runs("prod")]
        # Raw results are cut at the start of the hour 48 h before the last run: 2 days + 5 s is kept.
        assert starts == [T0 + 4 * DAY, T0 + 3 * DAY, T0 + 2 * DAY]
        assert store.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 6
        # ... and nothing of the availability history is lost: the pruned runs live on in the rollups.
        assert store.availability("prod", since=T0 - DAY)["user/a"] == state_mod.Availability(5, 5)
        assert set(store.load_states("prod")) == {"user/a", "user/b"}  # alert memory is not history


def test_trend_queries(tmp_path: Path) -> None:
    now = T0 + 2 * DAY
    with StateStore.in_dir(tmp_path) as store:
        # Yesterday: a fast and healthy; today: slower, 1 failure in 4.
        for i in range(4):
            record(store, now - 1.5 * DAY + i * 60, res("a", elapsed=100 + i), res("b", elapsed=10))
        for i, outcome in enumerate(["passed", "failed", "passed", "passed"]):
            record(store, now - 3600 + i * 60, res("a", outcome, elapsed=300 + i * 100), res("b", elapsed=10),
                   res("c", "skipped"))
        avail = store.availability("prod", since=now - DAY)
        assert avail["user/a"].checks == 4 and avail["user/a"].ratio == 0.75
        assert avail["user/b"].ratio == 1.0 and "user/c" not in avail  # skips are not checks
        trend = store.latency_trend("prod", now=now, keys=["user/a", "user/b"])
        assert trend["user/a"].current_p95 == 600 and trend["user/a"].previous_p95 == 103
        assert round(trend["user/a"].change, 2) == 4.83 and trend["user/b"].change == 0
        last = store.last_results("prod", limit=3)
        assert [r.outcome for r in last["user/a"]] == ["passed", "passed", "failed"]
        assert [r.outcome for r in last["user/c"]] == ["skipped"] * 3
        figures = store.figures("prod", since=now - DAY, until=now + 1)
        assert (figures.runs, figures.checks, figures.failed_checks) == (4, 8, 1)
        assert figures.availability == 7 / 8 and figures.down_now == 0
        assert store.envs() == ["prod"]


def test_p95_nearest_rank() -> None:
    assert p95([]) is None and p95([5]) == 5
    assert p95(list(range(1, 101))) == 95 and p95(list(range(1, 21))) == 19


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pytest_apimon.state import StateStore
    from pytest_apimon.results import InterfaceResult, RunResult
    from pytest_apimon.policy import InterfaceState

    class SlowStates(dict):
        def values(self):  # called inside record_run's transaction, after the run and results are written
            yield from super().values()
            print("in-transaction", flush=True)
            time.sleep(60)

    store = StateStore(sys.argv[1])
    results = [InterfaceResult(nodeid=f"n{i}", service="s", module="m", name=f"i{i}", outcome="failed",
                               category="network") for i in range(3000)]
    states = SlowStates({f"s/i{i}": InterfaceState(f"s/i{i}", "s", status="down") for i in range(3000)})
    store.record_run(RunResult(started_at=2e9, finished_at=2e9, env="prod", results=results), states)
""")


@pytest.mark.integration
def test_sigkill_mid_transaction_leaves_a_consistent_db(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with StateStore(db) as store:
        record(store, T0, res("a"), res("b"))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(db)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"in-transaction"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    with StateStore(db, busy_timeout=2) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert len(store.runs()) == 1  # the killed run left nothing behind
        assert store.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2
        assert set(store.load_states("prod")) == {"user/a", "user/b"}
        record(store, T0 + 60, res("a", "failed"), res("b"))  # and the next run works
        assert len(store.runs()) == 2 and store.load_states("prod")["user/a"].status == "down"


def test_last_failures_reach_past_any_history_window(tmp_path: Path) -> None:
    with StateStore.in_dir(tmp_path) as store:
        record(store, T0, res("a", "failed"), res("b"))
        for i in range(1, 80):  # longer than the status page's 50-run bar
            record(store, T0 + 60 * i, res("a", "skipped"), res("b"))
        got = store.last_failures("prod", ["user/a", "user/b"])
        assert set(got) == {"user/a"} and got["user/a"].started_at == T0 and got["user/a"].category == "timeout"
        assert store.last_failures("other", ["user/a"]) == {}


def test_duplicate_keys_in_one_run_are_all_stored(tmp_path: Path) -> None:
    with StateStore.in_dir(tmp_path) as store:
        one, two = res("a"), res("a", "failed")
        two.nodeid = "p/user/y.yaml::a"
        record(store, T0, one, two)
        rows = store.results("prod")
        assert len(rows) == 2 and {r.key for r in rows} == {"user/a", "user/a [p/user/y.yaml::a]"}
