"""The run history and alert memory: one SQLite file in the state folder (stdlib sqlite3, WAL).

Single writer by design (the xdist controller, under runlock.RunLock). Every run is written in ONE
transaction (prune old runs, insert the run and its results, replace the alert states), so a process
killed with SIGKILL leaves either the whole run or none of it. Readers (a status page, the heartbeat)
may read concurrently: WAL lets them see the last committed run.

Schema changes are append-only entries in MIGRATIONS; `schema_version` holds the applied version.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .policy import InterfaceState, RunMemory, unique_keys
from .results import RunResult
from .statedir import make_private

DB_FILE = "state.db"
DAY = 86400.0


class StateError(Exception):
    """The state database cannot be used (newer schema, not a database, locked too long)."""


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
    [  # v2 (issue 14): the pool an interface belongs to (a run forgets only its own pools' interfaces), the
        # category of its last failure (shown while its circuit is open), and which pools a run checked.
        "ALTER TABLE alert_state ADD COLUMN pool TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE alert_state ADD COLUMN last_category TEXT",
        "ALTER TABLE runs ADD COLUMN pools TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE runs ADD COLUMN checked INTEGER",
        "ALTER TABLE results ADD COLUMN circuit_open INTEGER NOT NULL DEFAULT 0",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_STATE_COLUMNS = [f.name for f in fields(InterfaceState)]


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
    """`StateStore(path)` opens (creating and migrating) the database; use as a context manager."""

    def __init__(self, path: str | Path, *, retention_days: float = 30.0, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE … COMMIT), never implicit.
        self.conn = sqlite3.connect(str(self.path), timeout=busy_timeout, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            # The history holds failure reasons and URLs: private like the state folder (statedir.py).
            make_private(self.path, f"{self.path}-wal", f"{self.path}-shm")
            self.conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: consistent after a crash
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StateError(f"cannot use the state database {self.path}: {exc} (move it away to start afresh; "
                             "the history and alert memory will be lost)") from None

    @classmethod
    def in_dir(cls, state_dir: str | Path, **kwargs: Any) -> StateStore:
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
                self.conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

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
        executed = [r for r in run.results if r.outcome != "skipped"]
        passed = sum(r.outcome == "passed" for r in executed)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self._prune(now)
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
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return run_id

    def has_run(self, env: str, started_at: float) -> bool:
        """Whether the run of `env` that started at `started_at` was recorded (write-ahead outbox check)."""
        row = self.conn.execute("SELECT 1 FROM runs WHERE env = ? AND started_at = ? LIMIT 1",
                                (env, started_at)).fetchone()
        return row is not None

    def _prune(self, now: float) -> None:
        cutoff = now - self.retention_days * DAY
        self.conn.execute("DELETE FROM results WHERE run_id IN (SELECT id FROM runs WHERE started_at < ?)",
                          (cutoff,))
        self.conn.execute("DELETE FROM runs WHERE started_at < ?", (cutoff,))

    # ------------------------------------------------------------------ alert memory

    def load_states(self, env: str) -> dict[str, InterfaceState]:
        rows = self.conn.execute(
            f"SELECT {', '.join(_STATE_COLUMNS)} FROM alert_state WHERE env = ?", (env,))  # noqa: S608
        out = {}
        for row in rows:
            data = dict(row)
            data["alerted"], data["flapping"] = bool(data["alerted"]), bool(data["flapping"])
            out[data["key"]] = InterfaceState(**data)
        return out

    def load_memory(self, env: str) -> RunMemory:
        row = self.conn.execute("SELECT value FROM meta WHERE env = ? AND name = 'run_memory'", (env,)).fetchone()
        if row is None:
            return RunMemory()
        known = {f.name for f in fields(RunMemory)}
        return RunMemory(**{k: v for k, v in json.loads(row[0]).items() if k in known})

    # ------------------------------------------------------------------ history queries

    def runs(self, env: str | None = None, *, since: float | None = None, until: float | None = None,
             limit: int | None = None) -> list[RunRow]:
        """Newest first."""
        where, args = _where(env=env, since=since, until=until)
        sql = f"SELECT * FROM runs {where} ORDER BY started_at DESC, id DESC"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        known = {f.name for f in fields(RunRow)}  # columns added by later schema versions are ignored
        return [RunRow(**{k: (bool(v) if k == "selection_complete" else v) for k, v in dict(r).items() if k in known})
                for r in self.conn.execute(sql, args)]

    def results(self, env: str | None = None, *, keys: Iterable[str] | None = None, since: float | None = None,
                until: float | None = None, outcomes: Iterable[str] | None = None) -> list[ResultRow]:
        """Per-interface results, newest run first. The general query the others are built on."""
        where, args = _where(env=env, since=since, until=until, keys=keys, outcomes=outcomes)
        columns = ("r.run_id, runs.started_at, r.key, r.service, r.nodeid, r.outcome, r.category, r.sub, r.status,"
                   " r.latency_ms, r.attempts")
        order = "ORDER BY runs.started_at DESC, r.run_id DESC, r.key"
        sql = f"SELECT {columns} FROM results r JOIN runs ON runs.id = r.run_id {where} {order}"  # noqa: S608
        return [ResultRow(**dict(row)) for row in self.conn.execute(sql, args)]

    def last_results(self, env: str, keys: Iterable[str] | None = None, limit: int = 10) -> dict[str, list[ResultRow]]:
        """The last `limit` results per interface, newest first."""
        out: dict[str, list[ResultRow]] = {}
        for row in self.results(env, keys=keys):
            bucket = out.setdefault(row.key, [])
            if len(bucket) < limit:
                bucket.append(row)
        return out

    def last_failures(self, env: str, keys: Iterable[str]) -> dict[str, ResultRow]:
        """The newest failed result per key, however old (within retention): the status page's "last failure"
        column for incidents longer than its history bar or behind an open circuit. One indexed query per
        chunk of keys (results_key index), fine for thousands of interfaces."""
        keys = list(keys)
        out: dict[str, ResultRow] = {}
        columns = ("r.run_id, runs.started_at, r.key, r.service, r.nodeid, r.outcome, r.category, r.sub, r.status,"
                   " r.latency_ms, r.attempts")
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            # Newest failing run per key first (results_key index), then those rows by primary key: linear in
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
        where, args = _where(env=env, since=since, until=until, keys=keys, outcomes=("passed", "failed"))
        counts = "r.key, COUNT(*), SUM(r.outcome = 'passed')"
        sql = f"SELECT {counts} FROM results r JOIN runs ON runs.id = r.run_id {where} GROUP BY r.key"  # noqa: S608
        return {key: Availability(int(n), int(ok or 0)) for key, n, ok in self.conn.execute(sql, args)}

    def latency_p95(self, env: str, *, since: float, until: float | None = None,
                    keys: Iterable[str] | None = None) -> dict[str, float | None]:
        """P95 of the latencies of executed checks (failures with a response included)."""
        values: dict[str, list[float]] = {}
        for row in self.results(env, keys=keys, since=since, until=until, outcomes=("passed", "failed")):
            bucket = values.setdefault(row.key, [])
            if row.latency_ms is not None:
                bucket.append(row.latency_ms)
        return {key: p95(v) for key, v in values.items()}

    def latency_trend(self, env: str, *, now: float, window: float = DAY,
                      keys: Iterable[str] | None = None) -> dict[str, LatencyTrend]:
        """P95 over the last `window` against the `window` before it (default: last 24 h vs the day before)."""
        keys = list(keys) if keys is not None else None
        current = self.latency_p95(env, since=now - window, until=now, keys=keys)
        previous = self.latency_p95(env, since=now - 2 * window, until=now - window, keys=keys)
        return {k: LatencyTrend(current.get(k), previous.get(k)) for k in sorted(set(current) | set(previous))}

    def figures(self, env: str, *, since: float, until: float | None = None) -> Figures:
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
        return [r[0] for r in self.conn.execute("SELECT DISTINCT env FROM runs ORDER BY env")]


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
