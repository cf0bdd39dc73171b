"""The run history and alert memory: one SQLite file in the state folder (stdlib sqlite3, WAL).

Single writer by design (the xdist controller, under runlock.RunLock). Every run is written in ONE
transaction (prune old runs, insert the run and its results, replace the alert states), so a process
killed with SIGKILL leaves either the whole run or none of it. Readers (a status page, the heartbeat)
may read concurrently: WAL lets them see the last committed run.

Schema changes are append-only entries in MIGRATIONS; `schema_version` holds the applied version.

History has three tiers (issue 18; docs/state-and-alerts.md): raw per-run results for `raw_hours`
(default 48 h), hourly rollups for `hourly_days` (90) and daily rollups for `daily_days` (730). A rollup is
one row per environment and period holding every interface's figures packed (rollup.py). Rollups are
written in the transaction of the first run after their hour/day ends, computed exactly from the raw
results; raw results are pruned in bounded batches and never before their day is rolled up.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import rollup
from .categories import Outcome
from .errors import ApimonError
from .incidents import LEGACY_FILE, Incident, read_legacy
from .policy import InterfaceState, RunMemory, unique_keys
from .results import RunResult
from .statedir import make_private

log = logging.getLogger("pytest_apimon")

DB_FILE = "state.db"
DAY = 86400.0
HOUR = 3600.0
# Pruning per run (issue 18: never 100 ms): PRUNE_BATCH raw rows per statement, max(PRUNE_MIN_ROWS, 2 x the run's
# results) in all, no statement after PRUNE_TIME_BUDGET s (store timer); rollups PRUNE_ROLLUP_BATCH per tier.
PRUNE_BATCH = 500
PRUNE_MIN_ROWS = 2_000
PRUNE_TIME_BUDGET = 0.05
PRUNE_ROLLUP_BATCH = 24
VACUUM_FREE_PAGES = 1024  # give free pages back to the file system once this many (4 MiB) are free ...
VACUUM_STEP_PAGES = 256  # ... at most this many (1 MiB) per run (incremental_vacuum, after the run's commit)
SHORT_WINDOW = 7 * DAY  # windows up to this long read hourly rollups, longer ones daily rollups


class StateError(ApimonError):
    """The state database cannot be used (newer schema, not a database, locked too long)."""


# What a damaged database file raises while it is read: SQLite's own error, or text that is not UTF-8 (a
# flipped byte in a TEXT value or in the schema: sqlite3 decodes every TEXT value as UTF-8).
_DAMAGED = (sqlite3.DatabaseError, UnicodeDecodeError)
# ... and the run memory's JSON, which may no longer parse or no longer be an object of RunMemory's fields.
_DAMAGED_MEMORY = (sqlite3.DatabaseError, ValueError, AttributeError, TypeError)


# Version N is reached by applying MIGRATIONS[N-1]; add v2 by appending a list, never edit a released one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            env TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            total INTEGER NOT NULL, passed INTEGER NOT NULL, failed INTEGER NOT NULL, skipped INTEGER NOT NULL,
            selection_complete INTEGER NOT NULL)""",
        "CREATE INDEX runs_env_started ON runs(env, started_at)",
        """CREATE TABLE results (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            service TEXT NOT NULL,
            nodeid TEXT NOT NULL,
            outcome TEXT NOT NULL,
            category TEXT, sub TEXT, status INTEGER, latency_ms REAL, attempts INTEGER,
            PRIMARY KEY (run_id, key))""",
        "CREATE INDEX results_key ON results(key, run_id)",
        """CREATE TABLE alert_state (
            env TEXT NOT NULL, key TEXT NOT NULL, service TEXT NOT NULL,
            status TEXT NOT NULL, consecutive_failures INTEGER NOT NULL, consecutive_successes INTEGER NOT NULL,
            failing_since REAL, down_since REAL, last_alert_at REAL, last_change_at REAL,
            alerted INTEGER NOT NULL, flapping INTEGER NOT NULL, recent TEXT NOT NULL,
            breaker TEXT NOT NULL, open_since REAL, next_probe_at REAL, updated_at REAL NOT NULL,
            PRIMARY KEY (env, key))""",
        "CREATE TABLE meta (env TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (env, name))",
    ],
    [  # v2 (issue 18): rollup tiers; _backfill_rollups then moves the raw history into them
        "CREATE TABLE rollup_keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, service TEXT NOT NULL)",
        """CREATE TABLE rollups (
            env TEXT NOT NULL, tier TEXT NOT NULL, start REAL NOT NULL,
            data BLOB NOT NULL, failures TEXT,
            PRIMARY KEY (env, tier, start))""",
    ],
    [  # v3 (issue 14): the pool an interface belongs to (a run forgets only its own pools' interfaces), the
        # category of its last failure (shown while its circuit is open), and which pools a run checked.
        "ALTER TABLE alert_state ADD COLUMN pool TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE alert_state ADD COLUMN last_category TEXT",
        "ALTER TABLE runs ADD COLUMN pools TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN checked INTEGER",
        "ALTER TABLE results ADD COLUMN circuit_open INTEGER NOT NULL DEFAULT 0",
    ],
    [  # v4 (issue 16): the slowness machine beside up/down (policy.slow_step)
        "ALTER TABLE alert_state ADD COLUMN slow_runs INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE alert_state ADD COLUMN normal_runs INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE alert_state ADD COLUMN slow_alerted INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE alert_state ADD COLUMN slow_since REAL",
    ],
    [  # v5 (issue 20): the incident ledger (incidents.py), before in incidents.json; _import_incidents moves it
        """CREATE TABLE incidents (env TEXT NOT NULL, key TEXT NOT NULL, id TEXT NOT NULL, opened_at REAL NOT NULL,
            told TEXT NOT NULL, PRIMARY KEY (env, key))""",
    ],
    [  # v6 (issue 16): each HTTPS origin's certificate (notAfter) and when its expiry warning was last sent
        """CREATE TABLE certificates (env TEXT NOT NULL, origin TEXT NOT NULL, services TEXT NOT NULL, not_after REAL
            NOT NULL, checked_at REAL NOT NULL, warned_at REAL, PRIMARY KEY (env, origin))""",
    ],
    [  # v7 (issue 18): only failures are looked up by key; an index over all rows cost ~40 ms per 1000 written
        "DROP INDEX IF EXISTS results_key",
        "CREATE INDEX IF NOT EXISTS results_failed ON results(key, run_id) WHERE outcome = 'failed'",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_STATE_COLUMNS = [f.name for f in fields(InterfaceState)]
_STATE_BOOLS = [i for i, f in enumerate(fields(InterfaceState)) if f.type in ("bool", bool)]  # 0/1 in SQLite


@dataclass(frozen=True)
class RunRow:
    id: int
    env: str
    started_at: float
    finished_at: float
    total: int
    passed: int
    failed: int
    skipped: int
    selection_complete: bool


@dataclass(frozen=True)
class ResultRow:
    run_id: int
    started_at: float  # the run's start
    key: str
    service: str
    nodeid: str
    outcome: str
    category: str | None
    sub: str | None
    status: int | None
    latency_ms: float | None
    attempts: int | None


@dataclass
class Maintenance:
    """What one run's pruning and incremental vacuum did (StateStore.last_maintenance; tests and bench/)."""
    results_deleted: int = 0  # raw result rows
    runs_deleted: int = 0
    rollups_deleted: int = 0
    statements: int = 0  # DELETE statements executed
    out_of_budget: bool = False  # stopped by the row or time budget with work left for the next run
    pages_vacuumed: int = 0  # pages given back to the file system after the commit


@dataclass(frozen=True)
class Availability:
    checks: int  # executed (skips do not count)
    passed: int

    @property
    def ratio(self) -> float | None:
        return self.passed / self.checks if self.checks else None


@dataclass(frozen=True)
class LatencyTrend:
    current_p95: float | None  # the last `window`
    previous_p95: float | None  # the window before it

    @property
    def change(self) -> float | None:
        """Relative change (0.25 = 25 % slower), None when either window has no data."""
        if not self.current_p95 or self.previous_p95 is None or not self.previous_p95:
            return None
        return self.current_p95 / self.previous_p95 - 1


@dataclass(frozen=True)
class Figures:
    """A period's figures (the daily heartbeat): runs, checks, availability, what is down now."""

    runs: int
    checks: int
    failed_checks: int
    availability: float | None
    down_now: int
    open_circuits: int


def p95(values: Sequence[float]) -> float | None:
    """Nearest-rank P95, like report.compute_stats."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.95 * len(ordered))) - 1]


class StateStore:
    """`StateStore(path)` opens (creating and migrating) the database; use as a context manager.

    Conventions of every getter below: times are Unix seconds (float, `time.time()`, UTC-based; "local days"
    follow the process's time zone, rollup.day_floor); latencies are milliseconds; an interface is named by
    its key (policy.interface_key, "service/name"); an unknown env or an empty history gives an empty result
    (empty dict or list, zero counts), never an error. Getters only read (WAL: they never block the writer
    nor wait for it) and raise sqlite3.Error when the database cannot be read (e.g. a disk error);
    the constructor raises StateError for a file that is not a usable state database."""

    def __init__(self, path: str | Path, *, retention_days: float | None = None, raw_hours: float = 48.0,
                 hourly_days: float = 90.0, daily_days: float = 730.0, busy_timeout: float = 10.0,
                 clock: Callable[[], float] = time.time, timer: Callable[[], float] = time.perf_counter) -> None:
        """`retention_days` is the legacy name of the raw window (config `state.retention_days`);
        `clock` dates the one-off migration of a raw-only database, `timer` (s, monotonic) measures pruning's
        time budget (tests inject both)."""
        self.path = Path(path)
        self.clock = clock
        self.timer = timer
        self.last_maintenance = Maintenance()
        self.raw_hours = retention_days * 24 if retention_days is not None else raw_hours
        self.hourly_days = hourly_days
        self.daily_days = daily_days
        self._ids: dict[str, int] = {}
        self._names: dict[int, tuple[str, str]] = {}
        # Decoded rollup columns by (env, tier, start): the page and the metrics of one run read the same ones.
        self._decoded: dict[tuple[str, str, float], dict[str, Any]] = {}
        self._windows_memo: tuple[Any, dict[str, dict[str, Availability]]] | None = None
        self._vacuum_after_migration = False
        self.adopted: list[Path] = []  # files of earlier versions imported by the migration (renamed after it)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE … COMMIT), never implicit.
        try:  # a folder, a device or an unreadable file where the database should be
            self.conn = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"cannot use the state database {self.path}: {exc} (move it away to start afresh; "
                             "the history and alert memory will be lost)") from None
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            # Only takes effect on a new, empty file (before WAL writes its header); an older file is
            # switched over by the one VACUUM after its migration to v2, below.
            self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self.conn.execute("PRAGMA journal_mode = WAL")
            # The history holds failure reasons and URLs: private like the state folder (statedir.py).
            make_private(self.path, f"{self.path}-wal", f"{self.path}-shm")
            self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: consistent after a crash
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
            if self._vacuum_after_migration:
                try:  # one-off: the raw history moved into rollups; this shrinks the file, enables auto_vacuum
                    self.conn.execute("VACUUM")
                except sqlite3.OperationalError as exc:  # e.g. no room for the copy VACUUM makes: not fatal
                    log.warning("VACUUM after the history migration of %s failed (%s); the file keeps its size "
                                "until a later VACUUM", self.path, exc)
        except _DAMAGED as exc:  # a damaged file can also hold text that is not UTF-8 (its schema, its rows)
            self.conn.close()
            raise StateError(f"cannot use the state database {self.path}: {exc} (move it away to start afresh; "
                             "the history and alert memory will be lost)") from None

    @classmethod
    def in_dir(cls, state_dir: str | Path, **kwargs: Any) -> StateStore:
        """The store at `state_dir`/DB_FILE (the folder is created); `kwargs` as the constructor's."""
        return cls(Path(state_dir) / DB_FILE, **kwargs)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ schema

    @property
    def version(self) -> int:
        """The schema version of the file (0 before any migration)."""
        row = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        if row is None:
            return 0
        got = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        return int(got or 0)

    def _migrate(self) -> None:
        if self.version == SCHEMA_VERSION:
            return  # the usual case: readers (heartbeat, status page) take no write lock
        self.conn.execute("BEGIN IMMEDIATE")  # two processes opening a fresh file must not both migrate
        try:
            self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at REAL)")
            current = self.version
            if current > SCHEMA_VERSION:
                raise StateError(f"the state database {self.path} has schema version {current}, newer than this "
                                 f"pytest-apimon understands ({SCHEMA_VERSION}): upgrade pytest-apimon")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    self.conn.execute(statement)
                after = _AFTER_MIGRATION.get(version)
                if after is not None and current > 0:  # a fresh file has no history to move
                    after(self)
                if version in _ADOPT_FILES:  # a file of an earlier version may sit next to a new database too
                    _ADOPT_FILES[version](self)
                self.conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        for path in self.adopted:  # imported and committed: renamed so it is never read again
            try:
                path.rename(path.with_name(path.name + ".imported"))
            except OSError as exc:  # the schema version already keeps it from being imported twice
                log.warning("imported %s into %s but could not rename it: %s", path, self.path.name, exc)

    # ------------------------------------------------------------------ writing

    def record_run(self, run: RunResult, states: Mapping[str, InterfaceState], memory: RunMemory | None = None, *,
                   selection_complete: bool = True, removed: Iterable[str] = (), now: float | None = None,
                   pools: Iterable[str] = ()) -> int:
        """Write one run in one transaction: prune, insert run + results, upsert states, drop removed ones.

        `states`/`memory`/`removed` come from policy.evaluate. Every result is a row (one per interface key;
        keys are unique per run, see items.py). `runs.checked` counts the interfaces actually checked
        (passed or failed), `runs.pools` lists the pools the run covered. Returns the new run id.
        """
        now = time.time() if now is None else now
        executed = [r for r in run.results if r.outcome != Outcome.SKIPPED]
        passed = sum(r.outcome == Outcome.PASSED for r in executed)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            cur = self.conn.execute(
                "INSERT INTO runs (env, started_at, finished_at, total, passed, failed, skipped, selection_complete,"
                " pools, checked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.env, run.started_at, run.finished_at, len(run.results), passed, len(executed) - passed,
                 len(run.results) - len(executed), int(selection_complete), json.dumps(sorted(set(pools))),
                 len(executed)))
            run_id = int(cur.lastrowid or 0)
            self.conn.executemany(
                "INSERT OR REPLACE INTO results (run_id, key, service, nodeid, outcome, category, sub, status,"
                " latency_ms, attempts, circuit_open) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, key, r.service, r.nodeid, r.outcome, r.category, r.sub or None, r.status,
                  r.elapsed_ms, r.attempts, int(r.circuit_open)) for key, r in unique_keys(run.results)])
            placeholders = ", ".join("?" * (len(_STATE_COLUMNS) + 2))
            self.conn.executemany(
                f"INSERT OR REPLACE INTO alert_state (env, {', '.join(_STATE_COLUMNS)}, updated_at)"  # noqa: S608
                f" VALUES ({placeholders})",
                [(run.env, *(_to_sql(getattr(s, c)) for c in _STATE_COLUMNS), now) for s in states.values()])
            self.conn.executemany("DELETE FROM alert_state WHERE env = ? AND key = ?",
                                  [(run.env, key) for key in removed])
            if memory is not None:
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, 'run_memory', ?)",
                                  (run.env, json.dumps(vars(memory))))
            self._windows_memo = None
            self._roll(run.env, run.started_at, now)
            deadline = self.timer() + PRUNE_TIME_BUDGET
            done = self._prune(run.env, now, max(PRUNE_MIN_ROWS, 2 * len(run.results)), deadline)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        if self.timer() < deadline:  # the vacuum step shares pruning's time budget: one or the other runs long
            done.pages_vacuumed = self._incremental_vacuum()
        self.last_maintenance = done
        return run_id

    def load_incidents(self, env: str) -> list[Incident]:
        """The open incidents of `env` (incidents.Ledger), oldest first."""
        rows = self.conn.execute("SELECT key, id, opened_at, told FROM incidents WHERE env = ? ORDER BY opened_at, key",
                                 (env,))
        return [Incident(r["id"], r["key"], float(r["opened_at"]), list(map(str, json.loads(r["told"])))) for r in rows]

    def save_incidents(self, env: str, incidents: Iterable[Incident]) -> None:
        """Replace the open incidents of `env` with `incidents`, in one transaction."""
        rows = [(env, i.key, i.id, i.opened_at, json.dumps(list(i.told))) for i in incidents]
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute("DELETE FROM incidents WHERE env = ?", (env,))
            self.conn.executemany("INSERT OR REPLACE INTO incidents (env, key, id, opened_at, told)"
                                  " VALUES (?, ?, ?, ?, ?)", rows)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def has_run(self, env: str, started_at: float) -> bool:
        """Whether the run of `env` that started at `started_at` (Unix seconds, exact) was recorded and is still
        in the raw tier (write-ahead outbox check)."""
        row = self.conn.execute("SELECT 1 FROM runs WHERE env = ? AND started_at = ? LIMIT 1",
                                (env, started_at)).fetchone()
        return row is not None

    # ------------------------------------------------------------------ tiers: rollups, pruning, vacuum

    def _meta_float(self, env: str, name: str) -> float | None:
        row = self.conn.execute("SELECT value FROM meta WHERE env = ? AND name = ?", (env, name)).fetchone()
        return float(row[0]) if row is not None else None

    def _set_meta(self, env: str, name: str, value: float) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?, ?)", (env, name, repr(float(value))))

    def _key_id(self, key: str, service: str) -> int:
        if not self._ids:
            self._load_keys()
        got = self._ids.get(key)
        if got is None:
            self.conn.execute("INSERT OR IGNORE INTO rollup_keys (key, service) VALUES (?, ?)", (key, service))
            got = int(self.conn.execute("SELECT id FROM rollup_keys WHERE key = ?", (key,)).fetchone()[0])
            self._ids[key], self._names[got] = got, (key, service)
        return got

    def _load_keys(self) -> None:
        for i, key, service in self.conn.execute("SELECT id, key, service FROM rollup_keys"):
            self._ids[key], self._names[int(i)] = int(i), (key, service)

    def _keys_of(self, ids: Iterable[int]) -> dict[int, str]:
        """{interface id: key} for `ids` (one dict for a hot loop instead of a _name call per id and window)."""
        if any(i not in self._names for i in ids):
            self._load_keys()
        return {i: self._names[i][0] if i in self._names else f"#{i}" for i in ids}

    def _name(self, key_id: int) -> tuple[str, str]:
        if key_id not in self._names:
            self._load_keys()
        return self._names.get(key_id, (f"#{key_id}", ""))

    def _roll_period(self, env: str, tier: str, start: float, end: float) -> None:
        """(Re)compute one hour or day exactly from the raw results of the runs that started in it."""
        rows = self.conn.execute(
            "SELECT r.key, r.service, r.outcome, r.category, r.latency_ms, r.attempts FROM results r"
            " JOIN runs ON runs.id = r.run_id WHERE runs.env = ? AND runs.started_at >= ? AND runs.started_at < ?",
            (env, start, end)).fetchall()
        services = {row[0]: row[1] for row in rows}
        stats = rollup.compute((row[0], row[2], row[3], row[4], row[5]) for row in rows)
        if not stats:
            return
        data, failures = rollup.encode({self._key_id(k, services[k]): s for k, s in stats.items()})
        self.conn.execute("INSERT OR REPLACE INTO rollups (env, tier, start, data, failures) VALUES (?, ?, ?, ?, ?)",
                          (env, tier, start, data, failures))
        self._decoded.pop((env, tier, start), None)

    def _roll(self, env: str, started_at: float, now: float) -> None:
        """Roll up every hour and day that ended before this run's hour/day and is not rolled up yet.

        Usually one hour (the run that opens a new hour), once a day one day. A run recorded into an hour
        that is already rolled up (a clock set back) re-rolls that hour and day while their raw results exist.
        """
        raw_from = self._meta_float(env, "raw_from")
        for tier, floor, name in (("hour", rollup.hour_floor, "rolled_hour"), ("day", rollup.day_floor, "rolled_day")):
            current = floor(started_at)
            rolled = self._meta_float(env, name)
            lo = rolled if rolled is not None else float("-inf")
            starts = {floor(ts) for (ts,) in self.conn.execute(
                "SELECT started_at FROM runs WHERE env = ? AND started_at >= ? AND started_at < ?",
                (env, lo, current))}
            if rolled is not None and current < rolled and (raw_from is None or current >= raw_from):
                starts.add(current)
            keep_from = now - (self.hourly_days if tier == "hour" else self.daily_days) * DAY
            for start in sorted(starts):
                end = start + HOUR if tier == "hour" else rollup.next_day(start)
                if end > keep_from:
                    self._roll_period(env, tier, start, end)
            if rolled is None or current > rolled:
                self._set_meta(env, name, current)

    def _prune(self, env: str, now: float, max_rows: int, deadline: float) -> Maintenance:
        """Deletes raw results past `raw_hours` (never of a day not rolled up) and rollups past retention, oldest
        first by indexed ranges: PRUNE_BATCH rows per statement, at most `max_rows`, no new statement once
        self.timer() reaches `deadline`; the rest is left for the next runs."""
        done = Maintenance()
        rolled_day = self._meta_float(env, "rolled_day")
        cutoff = rollup.hour_floor(now - self.raw_hours * HOUR)
        cutoff = min(cutoff, rolled_day) if rolled_day is not None else float("-inf")
        previous = self._meta_float(env, "raw_from")
        if previous is None or cutoff > previous:
            self._set_meta(env, "raw_from", cutoff)
        else:
            cutoff = previous
        for tier, days in (("hour", self.hourly_days), ("day", self.daily_days)):
            done.rollups_deleted += self.conn.execute(
                "DELETE FROM rollups WHERE rowid IN (SELECT rowid FROM rollups WHERE env = ? AND tier = ?"
                " AND start < ? ORDER BY start LIMIT ?)",
                (env, tier, now - days * DAY - (DAY if tier == "day" else HOUR), PRUNE_ROLLUP_BATCH)).rowcount
            done.statements += 1
        while True:
            batch = min(PRUNE_BATCH, max_rows - done.results_deleted)
            if batch <= 0 or self.timer() >= deadline:
                done.out_of_budget = bool(self.conn.execute("SELECT 1 FROM runs WHERE env = ? AND started_at < ?"
                                                            " LIMIT 1", (env, cutoff)).fetchall())
                break
            deleted = self.conn.execute(
                "DELETE FROM results WHERE rowid IN (SELECT r.rowid FROM runs JOIN results r ON r.run_id = runs.id"
                " WHERE runs.env = ? AND runs.started_at < ? ORDER BY runs.started_at LIMIT ?)",
                (env, cutoff, batch)).rowcount
            done.statements, done.results_deleted = done.statements + 1, done.results_deleted + deleted
            if deleted < batch:
                break  # nothing older is left
        # Runs whose results are all gone (also a run without results): the cascade finds none.
        done.runs_deleted = self.conn.execute(
            "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE env = ? AND started_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM results WHERE results.run_id = runs.id) LIMIT ?)",
            (env, cutoff, PRUNE_BATCH)).rowcount
        done.statements += 1
        return done

    def _incremental_vacuum(self) -> int:
        """Gives up to VACUUM_STEP_PAGES free pages back once VACUUM_FREE_PAGES are free (a steady history reuses
        its free pages; this returns what a shrinking one freed), after the run's commit. Returns the pages."""
        try:
            if self.conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                return 0
            free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
            if free < VACUUM_FREE_PAGES:
                return 0
            # executescript steps the pragma to the end (execute() frees a single page).
            self.conn.executescript(f"PRAGMA incremental_vacuum({min(free, VACUUM_STEP_PAGES)});")
            return free - int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        except sqlite3.OperationalError:  # busy: the next run does it
            return 0

    # ------------------------------------------------------------------ alert memory

    def load_states(self, env: str) -> dict[str, InterfaceState]:
        """{key: InterfaceState} of every interface the alert policy remembers for `env` (no order; empty when
        none). Times in them (down_since, failing_since, open_since, next_probe_at, …) are Unix seconds.
        Raises StateError when the database is damaged."""
        try:
            return self._load_states(env)
        except _DAMAGED as exc:
            raise StateError(f"cannot read the alert state from {self.path}: {exc} (the file is damaged: move it "
                             "away to start afresh; the history and alert memory will be lost)") from None

    def _load_states(self, env: str) -> dict[str, InterfaceState]:
        # Plain tuples in InterfaceState's field order (_STATE_COLUMNS): a run reads one row per interface
        # before its first request, and sqlite3.Row -> dict -> keywords took 3.5x as long (issue 15).
        cursor = self.conn.cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            f"SELECT {', '.join(_STATE_COLUMNS)} FROM alert_state WHERE env = ?", (env,))  # noqa: S608
        out = {}
        for row in rows:
            values = list(row)
            for i in _STATE_BOOLS:
                values[i] = bool(values[i])
            state = InterfaceState(*values)
            out[state.key] = state
        return out

    def load_memory(self, env: str) -> RunMemory:
        """The policy's run-level memory of `env` (storm state, …); a fresh RunMemory() when none is stored.
        Fields written by a newer version are ignored. Raises StateError when the database is damaged."""
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE env = ? AND name = 'run_memory'",
                                    (env,)).fetchone()
            if row is None:
                return RunMemory()
            known = {f.name for f in fields(RunMemory)}
            return RunMemory(**{k: v for k, v in json.loads(row[0]).items() if k in known})
        except _DAMAGED_MEMORY as exc:
            raise StateError(f"cannot read the run memory from {self.path}: {exc} (the file is damaged: move it "
                             "away to start afresh; the history and alert memory will be lost)") from None

    # ------------------------------------------------------------------ history queries

    def runs(self, env: str | None = None, *, since: float | None = None, until: float | None = None,
             limit: int | None = None) -> list[RunRow]:
        """RunRow per recorded run (raw tier) of `env` (all envs when None) with `since` <= started_at < `until`,
        newest first (ties by id), at most `limit`; started_at/finished_at in Unix seconds."""
        where, args = _where(env=env, since=since, until=until)
        sql = f"SELECT * FROM runs {where} ORDER BY started_at DESC, id DESC"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        known = {f.name for f in fields(RunRow)}  # columns added by later schema versions are ignored
        rows = []
        for r in self.conn.execute(sql, args):
            values: dict[str, Any] = {k: v for k, v in dict(r).items() if k in known}
            values["selection_complete"] = bool(values["selection_complete"])
            rows.append(RunRow(**values))
        return rows

    def results(self, env: str | None = None, *, keys: Iterable[str] | None = None, since: float | None = None,
                until: float | None = None, outcomes: Iterable[str] | None = None) -> list[ResultRow]:
        """ResultRow per interface and run (raw tier only) of `env` (all when None), optionally only `keys` and
        `outcomes` ('passed' / 'failed' / 'skipped'), for runs with `since` <= started_at < `until`; newest run
        first, then by key. `started_at` is the run's start (Unix seconds), `latency_ms` milliseconds. The
        general query the others are built on."""
        where, args = _where(env=env, since=since, until=until, keys=keys, outcomes=outcomes)
        columns = ("r.run_id, runs.started_at, r.key, r.service, r.nodeid, r.outcome, r.category, r.sub, r.status,"
                   " r.latency_ms, r.attempts")
        order = "ORDER BY runs.started_at DESC, r.run_id DESC, r.key"
        sql = f"SELECT {columns} FROM results r JOIN runs ON runs.id = r.run_id {where} {order}"  # noqa: S608
        return [ResultRow(**dict(row)) for row in self.conn.execute(sql, args)]

    def last_results(self, env: str, keys: Iterable[str] | None = None, limit: int = 10) -> dict[str, list[ResultRow]]:
        """{key: [ResultRow, …]}: the last `limit` results per interface (of `keys`, or all) in the raw tier,
        newest first; an interface without results is absent."""
        out: dict[str, list[ResultRow]] = {}
        for row in self.results(env, keys=keys):
            bucket = out.setdefault(row.key, [])
            if len(bucket) < limit:
                bucket.append(row)
        return out

    def last_failures(self, env: str, keys: Iterable[str]) -> dict[str, ResultRow]:
        """The newest failed result per key, however old (within retention): the status page's "last failure"
        column for incidents longer than its history bar or behind an open circuit. One indexed query per
        chunk of keys (results_failed index), fine for thousands of interfaces. {key: ResultRow}; a key that never
        failed (or whose failures were pruned) is absent."""
        keys = list(keys)
        out: dict[str, ResultRow] = {}
        columns = ("r.run_id, runs.started_at, r.key, r.service, r.nodeid, r.outcome, r.category, r.sub, r.status,"
                   " r.latency_ms, r.attempts")
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            # Newest failing run per key first (results_failed index), then those rows by primary key: linear in
            # the rows of the keys asked for, not quadratic like a correlated MAX per row.
            newest = (f"SELECT r.key AS k, MAX(r.run_id) AS rid FROM results r WHERE r.outcome = 'failed'"  # noqa: S608
                      f" AND r.key IN ({marks}) GROUP BY r.key")
            sql = (f"SELECT {columns} FROM ({newest}) AS n JOIN results r ON r.run_id = n.rid AND r.key = n.k"  # noqa: S608
                   f" JOIN runs ON runs.id = r.run_id WHERE runs.env = ?")
            for row in self.conn.execute(sql, [*chunk, env]):
                out[row["key"]] = ResultRow(**dict(row))
        return out

    def availability(self, env: str, *, since: float, until: float | None = None,
                     keys: Iterable[str] | None = None) -> dict[str, Availability]:
        """Executed/passed checks per interface in [since, until): exact from the raw tier while it holds
        `since`, else from the rollups (whole hours, or whole days beyond 7 days) plus the raw tail.
        {key: Availability(checks, passed)}: executed checks only (skips never count); `until` None = now and
        later; an interface without checks in the window is absent."""
        keys = list(keys) if keys is not None else None
        return {k: Availability(c, p) for k, (c, p) in self._counts(env, since, until, keys).items()}

    def latency_p95(self, env: str, *, since: float, until: float | None = None,
                    keys: Iterable[str] | None = None) -> dict[str, float | None]:
        """P95 of the latencies of executed checks (failures with a response included): nearest-rank over
        the raw results while the raw tier holds `since`; else the highest P95 of the rolled-up periods and
        the raw tail (an upper bound, see rollup.combine). {key: milliseconds, or None when its checks in the
        window had no latency}; an interface without checks is absent."""
        keys = list(keys) if keys is not None else None
        out: dict[str, float | None] = {}
        for src, lo, hi in self._segments(env, since, until):
            if src == "raw":
                values: dict[str, list[float]] = {}
                for key, latency in self._raw_latencies(env, lo, hi, keys):  # not a ResultRow per result
                    bucket = values.setdefault(key, [])
                    if latency is not None:
                        bucket.append(latency)
                part = {key: p95(v) for key, v in values.items()}
            else:
                highest = rollup.Columns(max)
                for _, cols in self._columns(env, src, lo, hi):
                    highest.add(cols["id"], cols["p95"])
                part = {}
                for i, (stored,) in highest.by_id().items():
                    key = self._name(i)[0]
                    if keys is None or key in keys:
                        part[key] = rollup.latency(stored)
            for key, value in part.items():
                out[key] = _max(out.get(key), value) if key in out else value
        return out

    def latency_trend(self, env: str, *, now: float, window: float = DAY,
                      keys: Iterable[str] | None = None) -> dict[str, LatencyTrend]:
        """P95 over the last `window` seconds before `now` against the `window` before it (default: last 24 h
        vs the day before). {key: LatencyTrend(current_p95, previous_p95)} in ms, sorted by key, for every key
        with checks in either window (None on the side without)."""
        keys = list(keys) if keys is not None else None
        current = self.latency_p95(env, since=now - window, until=now, keys=keys)
        previous = self.latency_p95(env, since=now - 2 * window, until=now - window, keys=keys)
        return {k: LatencyTrend(current.get(k), previous.get(k)) for k in sorted(set(current) | set(previous))}

    def figures(self, env: str, *, since: float, until: float | None = None) -> Figures:
        """The period's Figures for the daily heartbeat: recorded runs and executed/failed checks in [since,
        until), availability as a ratio 0..1 (None without checks), and what is down / open now."""
        runs = self.runs(env, since=since, until=until)
        avail = self.availability(env, since=since, until=until)
        checks = sum(a.checks for a in avail.values())
        passed = sum(a.passed for a in avail.values())
        states = self.load_states(env).values()
        return Figures(runs=len(runs), checks=checks, failed_checks=checks - passed,
                       availability=passed / checks if checks else None,
                       down_now=sum(s.status == "down" for s in states),
                       open_circuits=sum(s.breaker == "open" for s in states))

    def envs(self) -> list[str]:
        """Every env with raw runs or rollups, sorted; empty for a new database."""
        return [r[0] for r in self.conn.execute(
            "SELECT env FROM runs UNION SELECT env FROM rollups ORDER BY 1")]

    # ------------------------------------------------------------------ tiered reads (issue 18)

    def _segments(self, env: str, since: float, until: float | None,
                  exact: bool = True) -> list[tuple[str, float, float]]:
        """Where [since, until) is read from: [(tier 'raw' | 'hour' | 'day', lo, hi)], oldest first.

        Raw results cover everything from `raw_from`; hourly rollups the hours before `rolled_hour`; daily
        rollups the days before `rolled_day` (raw_from <= rolled_day <= rolled_hour, state._prune keeps it so).
        With exact=False a window the raw tier holds is read from whole hours too (cheaper for every key).
        """
        end = math.inf if until is None else until
        raw_from = self._meta_float(env, "raw_from")
        rolled_hour = self._meta_float(env, "rolled_hour")
        rolled_day = self._meta_float(env, "rolled_day")
        if raw_from is None or rolled_hour is None or (exact and since >= raw_from):
            return [("raw", since, end)]
        segments: list[tuple[str, float, float]] = []
        cursor = rollup.hour_floor(since)
        if rolled_day is not None and min(end, rolled_hour) - since > SHORT_WINDOW:
            first = rollup.day_floor(since)
            if first < rolled_day:
                segments.append(("day", first, min(rolled_day, end)))
                cursor = max(cursor, rolled_day)
        if cursor < min(rolled_hour, end):
            segments.append(("hour", cursor, min(rolled_hour, end)))
        tail = max(rolled_hour, cursor)
        if tail < end:
            segments.append(("raw", tail, end))
        return segments

    def _rollup_rows(self, env: str, tier: str, lo: float, hi: float) -> list[tuple[float, bytes, str | None]]:
        return [(float(a), bytes(b), c) for a, b, c in self.conn.execute(
            "SELECT start, data, failures FROM rollups WHERE env = ? AND tier = ? AND start >= ? AND start < ?"
            " ORDER BY start", (env, tier, lo, hi))]

    def _columns(self, env: str, tier: str, lo: float, hi: float) -> list[tuple[float, dict[str, Any]]]:
        """(start, decoded id/checks/passed/p95 columns) of the rollups in [lo, hi), oldest first (cached)."""
        # Starts from the primary key index; blobs not decoded yet in one query per range, not one per period.
        starts = [float(a) for (a,) in self.conn.execute(
            "SELECT start FROM rollups WHERE env = ? AND tier = ? AND start >= ? AND start < ? ORDER BY start",
            (env, tier, lo, hi))]
        if any((env, tier, start) not in self._decoded for start in starts):
            for start, data in self.conn.execute(
                    "SELECT start, data FROM rollups WHERE env = ? AND tier = ? AND start >= ? AND start < ?",
                    (env, tier, lo, hi)):
                if (env, tier, start) not in self._decoded:
                    self._decoded[(env, tier, float(start))] = rollup.decode_columns(data, ("checks", "passed", "p95"))
        return [(start, self._decoded[(env, tier, start)]) for start in starts]

    def _counts(self, env: str, since: float, until: float | None, keys: list[str] | None = None,
                exact: bool = True) -> dict[str, tuple[int, int]]:
        """{key: (executed checks, passed)} over [since, until) from the tiers (see _segments)."""
        sums = rollup.Sums()
        out: dict[str, tuple[int, int]] = {}
        for src, lo, hi in self._segments(env, since, until, exact):
            if src == "raw":
                _merge_counts(out, self._raw_counts(env, lo, hi, keys).items())
                continue
            for _, cols in self._columns(env, src, lo, hi):
                sums.add(cols["id"], cols["checks"], cols["passed"])
        self._add_counts(out, sums.by_id(), set(keys) if keys is not None else None)
        return out

    def _raw_latencies(self, env: str, lo: float, hi: float, keys: list[str] | None) -> list[tuple[str, Any]]:
        """(key, latency ms or None) of the executed raw results of the runs that started in [lo, hi)."""
        where, args = _where(env=env, since=lo, until=_finite(hi), keys=keys, outcomes=("passed", "failed"))
        return self.conn.execute(f"SELECT r.key, r.latency_ms FROM results r JOIN runs ON runs.id = r.run_id {where}",  # noqa: S608
                                 args).fetchall()

    def _raw_counts(self, env: str, lo: float, hi: float, keys: list[str] | None = None) -> dict[str, tuple[int, int]]:
        """{key: (executed, passed)} of the raw results of the runs that started in [lo, hi)."""
        where, args = _where(env=env, since=lo, until=_finite(hi), keys=keys, outcomes=("passed", "failed"))
        sql = ("SELECT r.key, COUNT(*), SUM(r.outcome = 'passed') FROM results r"  # noqa: S608
               f" JOIN runs ON runs.id = r.run_id {where} GROUP BY r.key")
        return {key: (int(n), int(ok or 0)) for key, n, ok in self.conn.execute(sql, args)}

    def _add_counts(self, out: dict[str, tuple[int, int]], by_id: Mapping[int, Sequence[int]],
                    wanted: set[str] | None = None) -> None:
        """Adds {interface id: (checks, passed)} into {key: (checks, passed)}, in place."""
        keys = self._keys_of(by_id)
        _merge_counts(out, ((keys[i], v) for i, v in by_id.items() if wanted is None or keys[i] in wanted))

    def availability_windows(self, env: str, *, now: float, windows: Mapping[str, float]
                             ) -> dict[str, dict[str, Availability]]:
        """{window name: {key: Availability}} for several windows ending at `now` (e.g. 24h, 7d, 30d, 90d, 1y)
        for every interface: whole hours (whole days beyond 7 days) plus the raw tail, even where the raw tier
        would have the exact window (the status page and metrics need every key; alerts use availability()).
        `windows`: {name: length in seconds}. An interface without checks in a window is absent from it. The
        last answer is memoized (same env, now and windows), so callers must not mutate it."""
        memo = (env, now, tuple(windows.items()))
        if self._windows_memo is not None and self._windows_memo[0] == memo:
            return self._windows_memo[1]  # the status page and the metrics of one run ask the same
        # All windows end at now + 1: they share the raw tail, and each rolled-up part is a suffix of one tier's
        # range, so each period is added once with a snapshot at every lower bound (rollup.suffix_sums).
        parts = {name: self._segments(env, now - seconds, now + 1, exact=False) for name, seconds in windows.items()}
        raw: dict[tuple[float, float], dict[str, tuple[int, int]]] = {}
        lows: dict[tuple[str, float], set[float]] = {}  # (tier, hi) -> the lower bounds asked for
        for segments in parts.values():
            for src, lo, hi in segments:
                if src == "raw" and (lo, hi) not in raw:
                    raw[(lo, hi)] = self._raw_counts(env, lo, hi)
                elif src != "raw":
                    lows.setdefault((src, hi), set()).add(lo)
        suffix = {(tier, lo, hi): by_id for (tier, hi), bounds in lows.items()
                  for lo, by_id in rollup.suffix_sums(self._columns(env, tier, min(bounds), hi), bounds).items()}
        got: dict[str, dict[str, Availability]] = {}
        for name, segments in parts.items():
            counts: dict[str, tuple[int, int]] = {}
            for src, lo, hi in segments:
                if src == "raw":
                    _merge_counts(counts, raw[(lo, hi)].items())
                else:
                    self._add_counts(counts, suffix[(src, lo, hi)])
            got[name] = {k: Availability(c, p) for k, (c, p) in counts.items()}
        self._windows_memo = (memo, got)
        return got

    def daily_history(self, env: str, *, days: int, now: float) -> tuple[list[float], dict[str, list[Availability]]]:
        """The last `days` local days (oldest first, today last) and per interface one Availability per day
        (checks 0 where it has none): the status page's daily bar. Returns (day starts in Unix seconds, `days`
        of them; {key: list of `days` Availability in the same order}); an interface without any check in those
        days is absent."""
        starts = [rollup.day_floor(now)]
        while len(starts) < days:
            starts.insert(0, rollup.day_floor(starts[0] - HOUR))
        index = {s: n for n, s in enumerate(starts)}
        empty = Availability(0, 0)
        out: dict[str, list[Availability]] = {}
        rolled_day = self._meta_float(env, "rolled_day")
        first_open = starts[0] if rolled_day is None else max(rolled_day, starts[0])
        grid = rollup.day_grid([(index[start], cols) for start, cols in self._columns(env, "day", starts[0], first_open)
                                if start in index], days, lambda pair: Availability(*pair), empty)
        keys = self._keys_of(grid)
        out = {keys[i]: row for i, row in grid.items()}
        for start in starts:
            if start >= first_open:  # today: its whole hours are rolled up already, exact like raw counts
                for key, (c, p) in self._counts(env, start, rollup.next_day(start), exact=False).items():
                    out.setdefault(key, [empty] * days)[index[start]] = Availability(c, p)
        return starts, out

    def p95_buckets(self, env: str, *, since: float, width: float) -> dict[str, dict[int, float]]:
        """{key: {bucket index: P95 ms}} of executed checks in buckets of `width` seconds from `since`.

        Rolled-up hours contribute their exact hourly P95 and a bucket shows the highest (an upper bound of
        its P95, rollup.combine); the raw tail not rolled up yet is nearest-rank, computed inside SQLite.
        Bucket b covers [since + b*width, since + (b+1)*width); buckets without a latency are absent, and so is
        an interface without any.
        """
        out: dict[str, dict[int, float]] = {}

        def add(key: str, bucket: int, value: float) -> None:
            row = out.setdefault(key, {})
            row[bucket] = max(row.get(bucket, value), value)

        for src, lo, hi in self._segments(env, since, None):
            if src == "raw":
                # Nearest-rank P95 = the smallest value whose cumulative share reaches 95 %: one window pass.
                sql = """
                    SELECT key, b, MIN(v) FROM (
                        SELECT key, b, v, CUME_DIST() OVER (PARTITION BY key, b ORDER BY v) AS cd
                        FROM (SELECT r.key AS key, CAST((runs.started_at - ?) / ? AS INTEGER) AS b,
                                     r.latency_ms AS v
                              FROM results r JOIN runs ON runs.id = r.run_id
                              WHERE runs.env = ? AND runs.started_at >= ? AND r.outcome IN ('passed', 'failed')
                                AND r.latency_ms IS NOT NULL))
                    WHERE cd >= 0.95 - 1e-12 GROUP BY key, b"""
                for key, bucket, value in self.conn.execute(sql, (since, width, env, lo)):
                    add(key, int(bucket), float(value))
                continue
            periods: dict[int, list[dict[str, Any]]] = {}
            for start, cols in self._columns(env, src, lo, hi):
                bucket = int((start - since) // width)
                if bucket >= 0:
                    periods.setdefault(bucket, []).append(cols)
            for bucket, bucket_cols in periods.items():
                by_id = rollup.highest(bucket_cols, "p95")
                keys = self._keys_of(by_id)
                for i, v in by_id.items():
                    if v != rollup.NO_LATENCY:
                        row = out.get(keys[i])
                        if row is None:
                            row = out[keys[i]] = {}
                        old = row.get(bucket)
                        row[bucket] = float(v - 1) if old is None or v - 1 > old else old
        return out

    def window_stats(self, env: str, *, since: float, until: float | None = None) -> dict[str, rollup.Stats]:
        """Full per-interface figures over [since, until) from the tiers (rollup.combine across periods):
        {key: rollup.Stats} (checks, passed, attempts, retried, P50/P95/max in ms, failures per category), only
        interfaces with at least one executed check."""
        parts: dict[str, list[rollup.Stats]] = {}
        for src, lo, hi in self._segments(env, since, until):
            if src == "raw":
                where, args = _where(env=env, since=lo, until=_finite(hi))
                sql = ("SELECT r.key, r.outcome, r.category, r.latency_ms, r.attempts FROM results r"  # noqa: S608
                       f" JOIN runs ON runs.id = r.run_id {where}")
                for key, st in rollup.compute(self.conn.execute(sql, args)).items():
                    parts.setdefault(key, []).append(st)
                continue
            for _, data, failures in self._rollup_rows(env, src, lo, hi):
                for i, st in rollup.decode(data, failures).items():
                    parts.setdefault(self._name(i)[0], []).append(st)
        return {key: rollup.combine(p) for key, p in parts.items() if any(x.checks for x in p)}

    def services(self) -> dict[str, str]:
        """{interface key: service} of every interface with history (raw or rolled up)."""
        out = {key: service for key, service in self.conn.execute("SELECT key, service FROM rollup_keys")}
        for key, service in self.conn.execute("SELECT DISTINCT key, service FROM results"):
            out.setdefault(key, service)
        return out

    def recent_runs(self, env: str, n: int) -> list[tuple[int, float]]:
        """The last `n` runs of `env` as (id, started_at in Unix seconds), oldest first (the status page's bar
        columns); fewer when fewer are recorded, empty for n <= 0."""
        rows = self.conn.execute("SELECT id, started_at FROM runs WHERE env = ? ORDER BY started_at DESC, id DESC"
                                 " LIMIT ?", (env, max(0, int(n)))).fetchall()
        return [(int(rid), float(ts)) for rid, ts in reversed(rows)]

    def bar_results(self, run_ids: Sequence[int], keys: Iterable[str] | None = None
                    ) -> dict[tuple[int, str], tuple[Any, ...]]:
        """{(run id, key): (outcome, category, sub, status, latency_ms, attempts)} of the given runs (optionally
        only `keys`); latency in ms; a key absent from a run has no entry; empty for no run ids."""
        if not run_ids:
            return {}
        marks = ", ".join("?" * len(run_ids))
        sql = ("SELECT run_id, key, outcome, category, sub, status, latency_ms, attempts FROM results"  # noqa: S608
               f" WHERE run_id IN ({marks})")
        args: list[Any] = list(run_ids)
        if keys is not None:
            wanted = list(keys)
            sql += f" AND key IN ({', '.join('?' * len(wanted))})"
            args += wanted
        return {(row[0], row[1]): tuple(row[2:]) for row in self.conn.execute(sql, args)}

    def bar_tokens(self, run_ids: Sequence[int], classes: Mapping[str, str]) -> dict[str, list[str]]:
        """{key: one token per run of `run_ids` (in that order)}: `-` not in that run, `s` skipped, else
        `class:status:ms:attempts:sub` with empty trailing fields dropped; class `o` passed, `r` passed after
        a retry, else `classes[category]` (`classes['unexpected']` for an unknown one). Built inside SQLite:
        the status page's run bar is 50 000 of them at 1000 interfaces. `ms` is whole milliseconds; a key in
        none of the runs is absent; empty for no run ids."""
        if not run_ids:
            return {}
        cases = " ".join("WHEN ? THEN ?" for _ in classes)
        # First branch: the usual cell (passed at once, status and latency known), as the general text, half the work.
        token = (
            "CASE WHEN outcome = 'passed' AND attempts = 1 AND sub IS NULL AND status IS NOT NULL"
            " AND latency_ms IS NOT NULL THEN 'o:' || status || ':' || printf('%.0f', latency_ms)"
            " WHEN outcome = 'skipped' THEN 's' ELSE rtrim("
            " (CASE WHEN outcome = 'passed' THEN (CASE WHEN IFNULL(attempts, 1) > 1 THEN 'r' ELSE 'o' END)"
            f"  ELSE (CASE IFNULL(category, 'unexpected') {cases} ELSE ? END) END)"
            " || ':' || IFNULL(status, '') || ':' || IFNULL(printf('%.0f', latency_ms), '') || ':'"
            " || (CASE WHEN IFNULL(attempts, 1) > 1 THEN attempts ELSE '' END) || ':'"
            " || replace(replace(IFNULL(sub, ''), ' ', '_'), ':', ''), ':') END")
        # One row per key; both aggregates walk the same rows in the same order, so the run ids place each token
        # (usually in run id order: the row splits straight into place). No ORDER BY: GROUP BY sorts already.
        sql = (f"SELECT key, group_concat(run_id), group_concat(tok, ' ') FROM (SELECT key, run_id,"  # noqa: S608
               f" {token} AS tok FROM results WHERE run_id IN ({', '.join('?' * len(run_ids))})) GROUP BY key")
        args: list[Any] = [v for pair in classes.items() for v in pair]
        args += [classes.get("unexpected", "u"), *run_ids]
        width = len(run_ids)
        position = {int(rid): n for n, rid in enumerate(run_ids)}
        in_order = ",".join(str(rid) for rid in run_ids)  # the usual case: newer runs have higher ids
        out: dict[str, list[str]] = {}
        for key, where, tokens in self.conn.execute(sql, args):
            if where == in_order:
                out[key] = tokens.split(" ")
                continue
            row = out[key] = ["-"] * width
            for rid, tok in zip(where.split(","), tokens.split(" "), strict=True):
                row[position[int(rid)]] = tok
        return out

    # ------------------------------------------------------------------ certificates (certs.py)

    def record_certificates(self, env: str, seen: Iterable[tuple[str, Sequence[str], float]], now: float, *,
                            forget_after: float = 30 * DAY) -> None:
        """Store this run's certificates: (origin, services, notAfter) each; the warning time of an origin is
        kept while its notAfter stays the same (a renewed certificate starts afresh). Origins no run has seen
        for `forget_after` seconds are dropped (a service moved away or left the pool)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(
                "INSERT INTO certificates (env, origin, services, not_after, checked_at, warned_at)"
                " VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (env, origin) DO UPDATE SET services = excluded.services,"
                " checked_at = excluded.checked_at, warned_at = CASE WHEN certificates.not_after = excluded.not_after"
                " THEN certificates.warned_at END, not_after = excluded.not_after",
                [(env, origin, json.dumps(sorted(services)), not_after, now) for origin, services, not_after in seen])
            self.conn.execute("DELETE FROM certificates WHERE env = ? AND checked_at < ?", (env, now - forget_after))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def mark_certificates_warned(self, env: str, origins: Iterable[str], now: float) -> None:
        """Remember that the expiry warning of these origins was sent (staged for delivery) at `now`."""
        self.conn.executemany("UPDATE certificates SET warned_at = ? WHERE env = ? AND origin = ?",
                              [(now, env, origin) for origin in origins])

    def certificates(self, env: str, *, since: float | None = None) -> list[CertificateRow]:
        """Known certificates of `env` (checked at or after `since` if given), soonest notAfter first."""
        rows = self.conn.execute(
            "SELECT origin, services, not_after, checked_at, warned_at FROM certificates"
            " WHERE env = ? AND checked_at >= ? ORDER BY not_after, origin",
            (env, 0.0 if since is None else since))
        return [CertificateRow(origin, tuple(json.loads(services)), float(not_after), float(checked),
                               None if warned is None else float(warned))
                for origin, services, not_after, checked, warned in rows]

    def last_failure_since(self, env: str, since: float) -> dict[str, tuple[str, float]]:
        """{key: (category, run start in Unix seconds)} of each interface's most recent failure since `since`
        (raw tier only); a failure without a category reads 'unexpected'; keys without one are absent."""
        # SQLite returns the bare columns of the row holding MAX(): the category of that very run. CROSS JOIN
        # keeps results outermost, so the partial index results_failed (the ~1 % failed rows) drives the query
        # instead of every raw row since `since`.
        rows = self.conn.execute(
            "SELECT r.key, r.category, MAX(runs.started_at) FROM results r CROSS JOIN runs ON runs.id = r.run_id"
            " WHERE runs.env = ? AND runs.started_at >= ? AND r.outcome = 'failed' GROUP BY r.key", (env, since))
        return {key: (category or "unexpected", float(ts)) for key, category, ts in rows}


@dataclass(frozen=True)
class CertificateRow:
    """An HTTPS origin's certificate as last seen (certificates table): notAfter, the finish of the last run that
    saw it and when its expiry warning was last sent (None: never), all epoch seconds."""
    origin: str
    services: tuple[str, ...]
    not_after: float
    checked_at: float
    warned_at: float | None


def _backfill_rollups(store: StateStore) -> None:
    """Migration to v2: roll the raw-only history up (every day; the hours of the last `hourly_days`), then
    drop raw results outside the raw window. One-off and unbounded (it may take seconds on a big file);
    the VACUUM after it shrinks the file and switches on incremental auto-vacuum."""
    conn, now = store.conn, store.clock()
    hour_keep_from = now - store.hourly_days * DAY
    day_keep_from = now - store.daily_days * DAY
    for (env,) in conn.execute("SELECT DISTINCT env FROM runs").fetchall():
        newest = conn.execute("SELECT MAX(started_at) FROM runs WHERE env = ?", (env,)).fetchone()[0]
        rolled_hour, rolled_day = rollup.hour_floor(newest), rollup.day_floor(newest)
        days = sorted({rollup.day_floor(ts) for (ts,) in conn.execute(
            "SELECT started_at FROM runs WHERE env = ? AND started_at < ?", (env, rolled_hour))})
        for day in days:
            end = rollup.next_day(day)
            rows = conn.execute(
                "SELECT runs.started_at, r.key, r.service, r.outcome, r.category, r.latency_ms, r.attempts"
                " FROM results r JOIN runs ON runs.id = r.run_id"
                " WHERE runs.env = ? AND runs.started_at >= ? AND runs.started_at < ?", (env, day, end)).fetchall()
            services = {row[1]: row[2] for row in rows}
            periods: list[tuple[str, float, list[Any]]] = []
            if day < rolled_day and end > day_keep_from:
                periods.append(("day", day, rows))
            by_hour: dict[float, list[Any]] = {}
            for row in rows:
                by_hour.setdefault(rollup.hour_floor(row[0]), []).append(row)
            periods += [("hour", h, hr) for h, hr in by_hour.items() if h < rolled_hour and h + HOUR > hour_keep_from]
            for tier, start, period_rows in periods:
                stats = rollup.compute((r[1], r[3], r[4], r[5], r[6]) for r in period_rows)
                if stats:
                    data, failures = rollup.encode({store._key_id(k, services[k]): v for k, v in stats.items()})
                    conn.execute("INSERT OR REPLACE INTO rollups (env, tier, start, data, failures)"
                                 " VALUES (?, ?, ?, ?, ?)", (env, tier, start, data, failures))
        store._set_meta(env, "rolled_hour", rolled_hour)
        store._set_meta(env, "rolled_day", rolled_day)
        cutoff = min(rollup.hour_floor(now - store.raw_hours * HOUR), rolled_day)
        store._set_meta(env, "raw_from", cutoff)
        conn.execute("DELETE FROM results WHERE run_id IN (SELECT id FROM runs WHERE env = ? AND started_at < ?)",
                     (env, cutoff))
        conn.execute("DELETE FROM runs WHERE env = ? AND started_at < ?", (env, cutoff))
    store._vacuum_after_migration = True


# Python steps run right after the SQL of their version (only when upgrading a file that had data).
_AFTER_MIGRATION: dict[int, Callable[[StateStore], None]] = {2: _backfill_rollups}


def _import_incidents(store: StateStore) -> None:
    """Migration to v5: the open incidents of `incidents.json` next to the database (incidents.read_legacy)
    become rows; the file is renamed `incidents.json.imported` after the commit. An unreadable file is skipped
    with a warning: it costs at most one repeated NEW."""
    path = store.path.parent / LEGACY_FILE
    try:
        found = read_legacy(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        log.warning("the incident ledger %s is unreadable (%s); not imported", path, exc)
        return
    store.conn.executemany("INSERT OR REPLACE INTO incidents (env, key, id, opened_at, told) VALUES (?, ?, ?, ?, ?)",
                           [(env, i.key, i.id, i.opened_at, json.dumps(i.told)) for env, i in found])
    store.adopted.append(path)


# Steps that adopt the state files an earlier version kept outside the database (run for new databases too).
_ADOPT_FILES: dict[int, Callable[[StateStore], None]] = {5: _import_incidents}


def _merge_counts(out: dict[str, tuple[int, int]], items: Iterable[tuple[str, Sequence[int]]]) -> None:
    """Adds (key, (checks, passed)) pairs into {key: (checks, passed)}, in place."""
    for key, (c, p) in items:
        old = out.get(key)
        out[key] = (c, p) if old is None else (old[0] + c, old[1] + p)


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _to_sql(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def _where(*, env: str | None = None, since: float | None = None, until: float | None = None,
           keys: Iterable[str] | None = None, outcomes: Iterable[str] | None = None) -> tuple[str, list[Any]]:
    """A WHERE clause over runs (and results r when keys/outcomes are given); values are bound, never inlined."""
    parts: list[str] = []
    args: list[Any] = []
    if env is not None:
        parts.append("runs.env = ?")
        args.append(env)
    if since is not None:
        parts.append("runs.started_at >= ?")
        args.append(since)
    if until is not None:
        parts.append("runs.started_at < ?")
        args.append(until)
    for column, values in (("r.key", keys), ("r.outcome", outcomes)):
        if values is not None:
            values = list(values)
            parts.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
            args.extend(values)
    return ("WHERE " + " AND ".join(parts)) if parts else "", args
