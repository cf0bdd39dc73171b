"""History tiers (issue 18): rollups written with the run, exact figures, bounded pruning, vacuum, migration,
and alert decisions that do not change across a rollup."""

from __future__ import annotations

import io
import random
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_apimon import rollup
from pytest_apimon import state as state_mod
from pytest_apimon.policy import Kind, RunMemory, evaluate, skips
from pytest_apimon.policy_settings import parse_policy
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import DAY, HOUR, Availability, StateStore

T0 = rollup.day_floor(1_700_000_000.0) + 22 * HOUR  # 22:00 local: sequences cross an hour and a day boundary
QUARTER = 900.0


def res(name: str, outcome: str = "passed", *, latency: float | None = 100.0, category: str | None = None,
        attempts: int = 1, service: str = "svc") -> InterfaceResult:
    if outcome == "failed" and category is None:
        category = "server_error"
    return InterfaceResult(nodeid=f"p/{service}/m.yaml::{name}", service=service, module="m", name=name,
                           outcome=outcome, category=category, status=200 if outcome == "passed" else 500,
                           elapsed_ms=latency, attempts=attempts)


def record(store: StateStore, ts: float, results: list[InterfaceResult], env: str = "prod") -> None:
    run = RunResult(ts, ts + 5, env, results)
    verdict = evaluate(store.load_states(env), results, parse_policy(None), ts + 5, store.load_memory(env))
    store.record_run(run, verdict.states, verdict.memory, removed=verdict.removed, now=ts + 5)


def count(store: StateStore, sql: str, *args: object) -> int:
    return int(store.conn.execute(sql, args).fetchone()[0])


def test_hour_and_day_rolled_up_exactly_by_the_run_that_ends_them(tmp_path: Path) -> None:
    rng = random.Random(5)
    raw: list[tuple[float, InterfaceResult]] = []
    with StateStore.in_dir(tmp_path) as store:
        for i in range(8):  # 22:00 .. 23:45, quarter-hourly
            ts = T0 + i * QUARTER
            results = [res("a", "failed" if i in (1, 6) else "passed", latency=rng.uniform(10, 900),
                           category="timeout" if i == 6 else None, attempts=2 if i == 3 else 1),
                       res("b", latency=None if i == 2 else 50.0 + i), res("c", "skipped", latency=None)]
            record(store, ts, results)
            raw += [(ts, r) for r in results]
            # Nothing is rolled up before the hour is over; the first run of 23:00 rolls 22:00 up.
            assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'hour'") == (1 if i >= 4 else 0)
        assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'day'") == 0
        record(store, T0 + 2 * HOUR, [res("a"), res("b")])  # 00:00: ends 23:00 and the day
        assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'hour'") == 2
        ((data, failures),) = store.conn.execute("SELECT data, failures FROM rollups WHERE tier = 'day'")
        day = {store._name(i)[0]: s for i, s in rollup.decode(data, failures).items()}
    a_lat = sorted(r.elapsed_ms for _, r in raw if r.name == "a")
    expected_a = rollup.Stats(checks=8, passed=6, attempts=9, retried=1, p50=round(rollup.nearest_rank(a_lat, 0.5)),
                              p95=round(rollup.nearest_rank(a_lat, 0.95)), max=round(a_lat[-1]),
                              failures={"server_error": 1, "timeout": 1})
    assert day["svc/a"] == expected_a
    assert day["svc/b"] == rollup.Stats(8, 8, 8, 0, 54.0, 57.0, 57.0, {})  # the check without latency still counts
    assert "svc/c" not in day  # skips are not checks


def test_windows_agree_with_raw_counts_across_tiers(tmp_path: Path) -> None:
    """Hourly runs for 20 days with a raw window of 6 h: every window's counts equal the raw truth."""
    rng = random.Random(11)
    truth: list[tuple[float, str, bool]] = []
    with StateStore.in_dir(tmp_path, raw_hours=6) as store:
        for i in range(20 * 24):
            ts = T0 + i * HOUR + rng.uniform(0, 600)
            results = [res(n, "failed" if rng.random() < 0.1 else "passed") for n in ("a", "b")]
            record(store, ts, results)
            truth += [(ts, f"svc/{r.name}", r.outcome == "passed") for r in results]
        now = ts + 5
        assert count(store, "SELECT COUNT(*) FROM runs") < 8 * 24  # raw pruned to ~6 h (+ today)
        for window in (3 * HOUR, DAY, 7 * DAY, 15 * DAY, 365 * DAY):
            got = store.availability("prod", since=now - window, until=now + 1)
            floor = rollup.hour_floor if window <= 7 * DAY else rollup.day_floor
            since = now - window if now - window >= store._meta_float("prod", "raw_from") else floor(now - window)
            for key in ("svc/a", "svc/b"):
                hits = [ok for ts, k, ok in truth if k == key and ts >= since]
                assert got[key] == Availability(len(hits), sum(hits)), (window, key)


def statements(store: StateStore, prefix: str) -> list[str]:
    """Collects the SQL statements the store runs that start with `prefix` (sqlite3 trace callback)."""
    seen: list[str] = []
    store.conn.set_trace_callback(lambda sql: seen.append(sql) if sql.lstrip().upper().startswith(prefix) else None)
    return seen


def backlog(store: StateStore, runs: int = 20, per_run: int = 10) -> None:
    """`runs` runs of `per_run` interfaces 3 h apart, then a raw window of 1 h: most of it is past the window."""
    for i in range(runs):
        record(store, T0 + i * 3 * HOUR, [res(f"i{n}") for n in range(per_run)])
    store.raw_hours = 1


def test_pruning_is_bounded_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_mod, "PRUNE_BATCH", 10)
    monkeypatch.setattr(state_mod, "PRUNE_MIN_ROWS", 25)
    with StateStore.in_dir(tmp_path, raw_hours=1000) as store:
        backlog(store)  # 200 raw rows over 3 days
        before = count(store, "SELECT COUNT(*) FROM results")
        deletes = statements(store, "DELETE FROM RESULTS")
        record(store, T0 + 20 * 3 * HOUR, [res(f"i{n}") for n in range(10)])
        done = store.last_maintenance
        # max(PRUNE_MIN_ROWS, 2 x 10 results) = 25 rows in batches of at most 10: 10 + 10 + 5, not everything.
        assert count(store, "SELECT COUNT(*) FROM results") == before + 10 - 25
        assert (done.results_deleted, len(deletes), done.out_of_budget) == (25, 3, True)
        most = 0
        for i in range(21, 34):
            deletes.clear()
            record(store, T0 + i * 3 * HOUR, [res(f"i{n}") for n in range(10)])
            most = max(most, store.last_maintenance.results_deleted)
            assert len(deletes) <= 3
        assert most == 25
        # Worked off over the next runs (only the day that just ended is still being pruned), and never the
        # current day before it is rolled up.
        today = rollup.day_floor(T0 + 33 * 3 * HOUR)
        assert count(store, "SELECT MIN(started_at) FROM runs") >= rollup.day_floor(today - HOUR)
        assert count(store, "SELECT COUNT(*) FROM runs WHERE started_at >= ?", today) == 1
        assert store.availability("prod", since=T0 - 1)["svc/i0"] == Availability(34, 34)


def test_pruning_stops_when_its_time_budget_is_spent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each batch "takes" 30 ms on an injected timer: with a 50 ms budget a run starts two batches, then
    leaves the rest to the next run; the timer, not the row budget, stops it."""
    monkeypatch.setattr(state_mod, "PRUNE_BATCH", 10)
    monkeypatch.setattr(state_mod, "PRUNE_TIME_BUDGET", 0.05)
    ticks = [0.0]

    def timer() -> float:
        return ticks[0]

    with StateStore.in_dir(tmp_path, raw_hours=1000, timer=timer) as store:
        backlog(store)
        deletes = statements(store, "DELETE FROM RESULTS")
        store.conn.set_trace_callback(lambda sql: (deletes.append(sql), ticks.__setitem__(0, ticks[0] + 0.03))
                                      if sql.startswith("DELETE FROM results") else None)
        before = count(store, "SELECT COUNT(*) FROM results")
        record(store, T0 + 20 * 3 * HOUR, [res(f"i{n}") for n in range(10)])
        done = store.last_maintenance
        assert (len(deletes), done.results_deleted, done.out_of_budget) == (2, 20, True)
        assert count(store, "SELECT COUNT(*) FROM results") == before + 10 - 20
        # Left for the next runs, which keep within the same bound and finish the backlog.
        for i in range(21, 40):
            deletes.clear()
            record(store, T0 + i * 3 * HOUR, [res(f"i{n}") for n in range(10)])
            assert len(deletes) <= 2
        assert not store.last_maintenance.out_of_budget


def test_rollups_past_retention_are_pruned_in_bounded_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setattr(state_mod, "PRUNE_ROLLUP_BATCH", 5)
    with StateStore.in_dir(tmp_path) as store:
        for i in range(30):  # 30 hourly rollups
            record(store, T0 + i * HOUR, [res("a")])
        hours = count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'hour'")
        store.hourly_days = 0.0  # every hour is past retention now
        record(store, T0 + 30 * HOUR, [res("a")])
        assert store.last_maintenance.rollups_deleted == 5
        # (the hour this run ended is past retention too, so it was not rolled up)
        assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'hour'") == hours - 5
        for i in range(31, 37):
            record(store, T0 + i * HOUR, [res("a")])
        assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'hour'") == 0


def test_incremental_vacuum_gives_space_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_mod, "VACUUM_FREE_PAGES", 64)  # this history is 4 MB, not hundreds
    db = tmp_path / "state.db"
    with StateStore(db, raw_hours=1000) as store:
        for i in range(60):
            record(store, T0 + i * HOUR, [res(f"interface-{n:04d}" * 4) for n in range(300)])
        big = db.stat().st_size
        store.raw_hours = 1
        for i in range(60, 90):
            record(store, T0 + i * HOUR, [res("x")])
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert count(store, "PRAGMA freelist_count") < state_mod.VACUUM_FREE_PAGES
    assert db.stat().st_size < big / 2


def test_incremental_vacuum_is_bounded_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A history that shrank gives its free pages back VACUUM_STEP_PAGES per run, not all at once."""
    monkeypatch.setattr(state_mod, "VACUUM_FREE_PAGES", 16)
    monkeypatch.setattr(state_mod, "VACUUM_STEP_PAGES", 8)
    with StateStore.in_dir(tmp_path, raw_hours=1000) as store:
        for i in range(40):
            record(store, T0 + i * HOUR, [res(f"interface-{n:04d}" * 4) for n in range(100)])
        store.raw_hours = 1
        given: list[int] = []
        for i in range(40, 80):
            pages = count(store, "PRAGMA page_count")
            record(store, T0 + i * HOUR, [res("x")])
            given.append(store.last_maintenance.pages_vacuumed)
            assert pages - count(store, "PRAGMA page_count") <= 8 + 4  # the run's own pages may come and go
        assert max(given) == 8  # bounded ...
        assert sum(given) > 8 * 5  # ... and given back over several runs


def legacy_db(path: Path, runs: int, names: list[str], every: float) -> dict[str, Availability]:
    """A raw-only (schema v1) database as pytest-apimon wrote it before issue 18; returns the raw truth."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL)")
    for statement in state_mod.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    rng = random.Random(2)
    truth: dict[str, list[int]] = {f"svc/{n}": [0, 0] for n in names}
    conn.execute("BEGIN")
    for j in range(runs):
        ts = T0 + j * every
        run_id = conn.execute("INSERT INTO runs (env, started_at, finished_at, total, passed, failed, skipped,"
                              " selection_complete) VALUES ('prod', ?, ?, 0, 0, 0, 0, 1)", (ts, ts + 5)).lastrowid
        for n in names:
            ok = rng.random() > 0.05
            truth[f"svc/{n}"][0] += 1
            truth[f"svc/{n}"][1] += ok
            conn.execute("INSERT INTO results VALUES (?, ?, 'svc', ?, ?, ?, NULL, ?, ?, 1)",
                         (run_id, f"svc/{n}", f"p::{n}", "passed" if ok else "failed",
                          None if ok else "timeout", 200 if ok else None, rng.uniform(5, 500)))
    conn.execute("COMMIT")
    conn.close()
    return {k: Availability(c, p) for k, (c, p) in truth.items()}


def test_migration_from_a_raw_only_database_keeps_availability(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    truth = legacy_db(db, runs=30 * 24 * 2, names=[f"i{n}" for n in range(40)], every=HOUR / 2)  # 30 days
    size_before = db.stat().st_size
    now = T0 + 30 * DAY
    with StateStore(db, clock=lambda: now) as store:
        assert store.version == state_mod.SCHEMA_VERSION
        assert count(store, "PRAGMA auto_vacuum") == 2  # switched over by the one-off VACUUM
        assert store.availability("prod", since=T0 - DAY, until=now + 1) == truth
        assert count(store, "SELECT MIN(started_at) FROM runs") >= now - 49 * HOUR  # raw cut to 48 h
        assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'day'") in (30, 31)
        # The next run carries on from the migrated tiers.
        record(store, now, [res("i0")])
        assert store.availability("prod", since=T0 - DAY, until=now + 1)["svc/i0"] == replace(
            truth["svc/i0"], checks=truth["svc/i0"].checks + 1, passed=truth["svc/i0"].passed + 1)
    assert db.stat().st_size < size_before


# -- requirement 2: alert decisions do not depend on the tiers ---------------------------------------------

SEQUENCE = {  # interface -> outcome per run (P passed, F failed); 12 quarter-hourly runs from 22:00
    "steady": "PPPPPPPPPPPP",
    "outage": "PPFFFFFFPPPP",  # down across midnight, the circuit opens (failures 3), half-open probe, recovers
    "flappy": "PFPFPFPFPPPP",
    "blip": "PPPPPFPPPPPP",
}


def play(store: StateStore | None) -> list[tuple[int, str, str, bool, str]]:
    """The scripted sequence through the real policy; with a store, memory goes through the database."""
    settings = parse_policy({"failure_threshold": 2, "remind_every": "30m", "flapping": {"changes": 4,
                                                                                         "window": 8}},
                            {"failures": 3, "cooldown": "20m"})
    states: dict = {}
    memory = RunMemory()
    log = []
    for i in range(12):
        ts = T0 + 1.5 * HOUR + i * QUARTER  # 23:30 .. 02:15: ends two hours and a day
        if store is not None:
            states, memory = store.load_states("prod"), store.load_memory("prod")
        gated = skips(states, settings, ts)
        results = [res(n, "skipped" if f"svc/{n}" in gated else ("passed" if seq[i] == "P" else "failed"))
                   for n, seq in SEQUENCE.items()]
        verdict = evaluate(states, results, settings, ts + 5, memory)
        if store is not None:
            store.record_run(RunResult(ts, ts + 5, "prod", results), verdict.states, verdict.memory,
                             removed=verdict.removed, now=ts + 5)
        states, memory = verdict.states, verdict.memory
        log += [(i, d.key, d.kind.value, d.notify, d.breaker_event) for d in verdict.decisions]
    return log


def test_alert_sequence_is_the_same_before_and_after_rollups(tmp_path: Path) -> None:
    reference = play(None)  # memory kept in a dict: no database, no rollup, no pruning
    with StateStore.in_dir(tmp_path, raw_hours=1) as store:
        got = play(store)
        assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'hour'") >= 2  # hours were rolled up
        assert count(store, "SELECT COUNT(*) FROM rollups WHERE tier = 'day'") == 1  # ... and the day
        assert count(store, "SELECT COUNT(*) FROM runs") < 12  # raw results were pruned meanwhile
    assert got == reference
    kinds = {(i, key): (kind, notify, event) for i, key, kind, notify, event in got}
    assert kinds[(3, "svc/outage")][0] == Kind.NEW.value and kinds[(3, "svc/outage")][1]
    assert any(event == "opened" for _, key, _, _, event in got if key == "svc/outage")
    assert any(kind == Kind.RECOVERED.value for _, key, kind, _, _ in got if key == "svc/outage")
    assert any(kind == Kind.FLAPPING.value for _, key, kind, _, _ in got if key == "svc/flappy")
    assert not any(notify for _, key, _, notify, _ in got if key in ("svc/steady", "svc/blip"))


# -- requirement 6: the SLA export ------------------------------------------------------------------------

def test_export_csv_and_json_from_the_rollups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import json
    from datetime import datetime

    from pytest_apimon.__main__ import main

    start = datetime(2026, 1, 1).timestamp()  # local midnight
    with StateStore.in_dir(tmp_path / ".apimon") as store:
        for i in range(40 * 24):  # hourly for 40 days; "订单" fails every 10th run
            ts = start + i * HOUR + 60
            record(store, ts, [res("订单", "failed" if i % 10 == 0 else "passed", latency=100.0 + i % 5,
                                   category="timeout"),
                               res("登录", latency=20.0, service="user")])
        assert count(store, "SELECT COUNT(*) FROM runs") < 24 * 4  # January is in the rollups only
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--env", "prod", "--from", "2026-01-01", "--to", "2026-01-31", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(r["scope"], r["interface"] or r["service"]): r for r in data}
    order = rows[("interface", "svc/订单")]
    assert (order["checks"], order["passed"], order["failures_timeout"]) == (744, 744 - 75, 75)
    assert order["availability"] == round(669 / 744, 6)
    assert (order["latency_max_ms"], order["latency_p95_ms"], order["latency_p50_ms"]) == (104, 104, 102)
    assert rows[("service", "user")]["availability"] == 1 and rows[("service", "svc")]["checks"] == 744
    assert order["from"].startswith("2026-01-01T00:00:00") and order["to"].startswith("2026-02-01T00:00:00")
    out = tmp_path / "q1.csv"
    assert main(["export", "--env", "prod", "--from", "2026-01-01", "--to", "2026-01-31", "-o", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM: Excel opens the Chinese names correctly
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [(r["scope"], r["interface"], r["checks"]) for r in table][:2] == [
        ("interface", "svc/订单", "744"), ("interface", "user/登录", "744")]
    # A short period inside the raw tier is exact, too; bad input is a usage error.
    assert main(["export", "--env", "prod", "--from", "2026-02-09T12:00", "--to", "2026-02-09T14:00",
                 "--format", "json"]) == 0
    short = {r["interface"]: r for r in json.loads(capsys.readouterr().out) if r["scope"] == "interface"}
    assert short["svc/订单"]["checks"] == 2
    with pytest.raises(SystemExit):
        main(["export", "--env", "prod", "--from", "yesterday", "--to", "2026-01-31"])


def test_availability_windows_equal_one_count_per_window(tmp_path: Path) -> None:
    """The one-pass availability_windows (every period added once, newest first) agrees with counting each
    window on its own across raw, hourly and daily tiers, for windows inside and beyond 7 days."""
    rng = random.Random(17)
    with StateStore.in_dir(tmp_path, raw_hours=6) as store:
        for i in range(12 * 24):  # 12 days of hourly runs
            ts = T0 + i * HOUR + rng.uniform(0, 600)
            names = ["a", "b"] + (["c"] if i % 5 else [])  # c misses some runs
            record(store, ts, [res(n, "failed" if rng.random() < 0.2 else "passed") for n in names])
        now = ts + 5
        windows = {"3h": 3 * HOUR, "24h": DAY, "7d": 7 * DAY, "8d": 8 * DAY, "30d": 30 * DAY, "1y": 365 * DAY}
        got = store.availability_windows("prod", now=now, windows=windows)
        for name, seconds in windows.items():
            expected = {k: Availability(c, p) for k, (c, p) in store._counts("prod", now - seconds, now + 1,
                                                                              exact=False).items()}
            assert got[name] == expected, name
        assert got["30d"]["svc/a"].checks == 12 * 24


@pytest.mark.parametrize("gap", [False, True])
def test_daily_history_equals_each_days_counts(tmp_path: Path, gap: bool) -> None:
    """The daily bar (transposed fast path when every day holds the same interfaces; the general path when
    an interface is missing on some day) gives each day's exact counts, zeros before the history starts."""
    rng = random.Random(23)
    gap_day = rollup.next_day(rollup.next_day(rollup.next_day(rollup.day_floor(T0))))
    c_checks = 0
    with StateStore.in_dir(tmp_path, raw_hours=6) as store:
        for i in range(10 * 24):
            ts = T0 + i * HOUR + rng.uniform(0, 600)
            names = ["a", "b"] + ([] if gap and rollup.day_floor(ts) == gap_day else ["c"])
            c_checks += "c" in names
            record(store, ts, [res(n, "failed" if rng.random() < 0.2 else "passed") for n in names])
        now = ts + 5
        starts, bars = store.daily_history("prod", days=15, now=now)
        assert len(starts) == 15 and set(bars) == {"svc/a", "svc/b", "svc/c"}
        for n, day in enumerate(starts):
            expected = store.availability("prod", since=day, until=rollup.next_day(day))
            for key, row in bars.items():
                assert row[n] == expected.get(key, Availability(0, 0)), (n, key)
        assert sum(a.checks for a in bars["svc/c"]) == c_checks < 10 * 24 + (1 if not gap else -20)


def test_column_sums_add_every_lane_without_carries() -> None:
    """rollup.Sums adds uint32 columns as integers with 64-bit lanes: equal to adding entry by entry, also
    for entries at the uint32 maximum (a carry would spill into the neighbour) and for several id columns."""
    from array import array

    rng = random.Random(29)
    ids_a, ids_b = array("I", [1, 2, 3, 5]), array("I", [2, 5, 7])
    sums = rollup.Sums()
    expected: dict[int, list[int]] = {}
    for _ in range(40):
        ids = ids_a if rng.random() < 0.6 else ids_b
        cols = [array("I", [rng.choice((0, 1, 7, 0xFFFFFFFF)) for _ in ids]) for _ in range(2)]
        sums.add(ids, *cols)
        for j, i in enumerate(ids):
            row = expected.setdefault(i, [0, 0])
            row[0] += cols[0][j]
            row[1] += cols[1][j]
    assert {i: list(v) for i, v in sums.by_id().items()} == expected


def test_run_bar_tokens_follow_the_bar_order_not_the_run_ids(tmp_path: Path) -> None:
    """The bar lists runs by start time; after a clock was set back, run ids are not in that order: every
    token still lands under its own run (state.bar_tokens maps run ids to positions)."""
    with StateStore.in_dir(tmp_path) as store:
        record(store, T0, [res("a", latency=10.0)])
        record(store, T0 - HOUR, [res("a", "failed", latency=20.0), res("b", latency=30.0)])  # clock set back
        record(store, T0 + HOUR, [res("a", latency=40.0, attempts=2)])
        runs = store.recent_runs("prod", 10)
        ids = [rid for rid, _ in runs]
        assert ids != sorted(ids)
        tokens = store.bar_tokens(ids, {"server_error": "e", "unexpected": "u"})
    assert tokens == {"svc/a": ["e:500:20", "o:200:10", "r:200:40:2"], "svc/b": ["o:200:30", "-", "-"]}


def test_vacuum_step_waits_when_pruning_spent_the_time_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """Pruning and the vacuum step share one time budget: a run whose pruning used it up gives no pages
    back (the next run does), so the two never add up to a long pause."""
    monkeypatch.setattr(state_mod, "PRUNE_BATCH", 10)
    ticks = [0.0]
    with StateStore.in_dir(tmp_path, raw_hours=1000, timer=lambda: ticks[0]) as store:
        backlog(store)
        vacuums: list[int] = []
        monkeypatch.setattr(store, "_incremental_vacuum", lambda: vacuums.append(1) or 0)
        slow = [True]
        store.conn.set_trace_callback(lambda sql: ticks.__setitem__(0, ticks[0] + 0.03)
                                      if slow[0] and sql.startswith("DELETE FROM results") else None)
        record(store, T0 + 20 * 3 * HOUR, [res(f"i{n}") for n in range(10)])
        assert store.last_maintenance.out_of_budget and vacuums == []
        slow[0] = False
        record(store, T0 + 21 * 3 * HOUR, [res(f"i{n}") for n in range(10)])
        assert vacuums == [1]
