"""Rollups: per-interface figures of one hour or one day, and how they are packed and combined.

Pure functions, no SQL (state.py stores and reads them). One rollup row holds the figures of EVERY
interface of an environment for one period, packed column-wise and zlib-compressed: at 1000 interfaces an
hour costs a few kB instead of 1000 rows, which is what keeps a year of history within the budget of
docs/benchmarks.md (issue 18).

Per interface and period: executed checks (skips are not checks), passed checks, the sum of attempts, the
checks that needed more than one attempt (flaky), nearest-rank latency P50/P95 and the maximum in whole
milliseconds, and failures per category. Hourly and daily figures are computed EXACTLY from the raw
per-run results of the period when it completes. Figures of a longer span (a week, a quarter) are combined
from periods: counts add up and the maximum is exact; the P95 of the span is the highest P95 of its
periods (an upper bound: at most 5 % of each period's checks lie above that period's P95, so at most 5 %
of the span's do), and its P50 is the check-weighted median of the periods' P50s (an approximation).
"""

from __future__ import annotations

import json
import math
import sys
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

HOUR = 3600.0
NO_LATENCY = 0  # latencies are stored as whole ms + 1, so 0 is "none" and max() over a column just works
_FORMAT = 1
T = TypeVar("T")
_IDS: dict[bytes, array] = {}  # decoded id columns by their packed bytes: most rollups share one
# Column order of the packed blob (each an array of uint32, one entry per interface id, ascending ids).
COLUMNS = ("id_delta", "checks", "passed", "attempts", "retried", "p50", "p95", "max")


def hour_floor(ts: float) -> float:
    """Start of the local hour holding `ts` (local, so half-hour time zones get their own hours)."""
    lt = time.localtime(ts)
    return float(math.floor(ts) - lt.tm_min * 60 - lt.tm_sec)


def day_floor(ts: float) -> float:
    """Start of the local calendar day holding `ts` (DST-safe: mktime of local midnight)."""
    lt = time.localtime(ts)
    return float(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1)))


def next_day(day_start: float) -> float:
    """Start of the following local day (23 or 25 h later across a DST change)."""
    return day_floor(day_start + 36 * HOUR)


def nearest_rank(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (like report.compute_stats and state.p95)."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@dataclass
class Stats:
    """One interface over one period (or a combination of periods). Latencies in ms."""

    checks: int = 0
    passed: int = 0
    attempts: int = 0
    retried: int = 0
    p50: float | None = None
    p95: float | None = None
    max: float | None = None
    failures: dict[str, int] = field(default_factory=dict)  # category -> failed checks

    @property
    def failed(self) -> int:
        return self.checks - self.passed

    @property
    def availability(self) -> float | None:
        return self.passed / self.checks if self.checks else None


def compute(rows: Iterable[tuple[str, str, str | None, float | None, int | None]]) -> dict[str, Stats]:
    """Exact figures from raw results: rows of (key, outcome, category, latency_ms, attempts).

    Skipped results are ignored; a failure without a category counts as `unexpected`.
    """
    out: dict[str, Stats] = {}
    latencies: dict[str, list[float]] = {}
    for key, outcome, category, latency, attempts in rows:
        if outcome not in ("passed", "failed"):
            continue
        s = out.get(key)
        if s is None:
            s = out[key] = Stats()
            latencies[key] = []
        s.checks += 1
        n = attempts or 1
        s.attempts += n
        s.retried += n > 1
        if outcome == "passed":
            s.passed += 1
        else:
            cat = category or "unexpected"
            s.failures[cat] = s.failures.get(cat, 0) + 1
        if latency is not None:
            latencies[key].append(latency)
    for key, values in latencies.items():
        if values:
            values.sort()
            s = out[key]
            s.p50, s.p95, s.max = nearest_rank(values, 0.5), nearest_rank(values, 0.95), values[-1]
    return out


def _ms(value: float | None) -> int:
    return NO_LATENCY if value is None else max(0, min(round(value), 0xFFFFFFFE)) + 1


def latency(stored: int) -> float | None:
    """A stored latency column value as ms (None: no latency)."""
    return None if stored == NO_LATENCY else float(stored - 1)


def _native(a: array) -> array:
    if sys.byteorder == "big":  # stored little-endian
        a.byteswap()
    return a


def encode(stats: Mapping[int, Stats]) -> tuple[bytes, str | None]:
    """{interface id: Stats} -> (blob, failures JSON or None). Latencies are rounded to whole ms."""
    ids = sorted(stats)
    cols = {name: array("I") for name in COLUMNS}
    previous = 0
    for i in ids:
        s = stats[i]
        cols["id_delta"].append(i - previous)
        previous = i
        cols["checks"].append(s.checks)
        cols["passed"].append(s.passed)
        cols["attempts"].append(s.attempts)
        cols["retried"].append(s.retried)
        cols["p50"].append(_ms(s.p50))
        cols["p95"].append(_ms(s.p95))
        cols["max"].append(_ms(s.max))
    raw = b"".join(_native(cols[name]).tobytes() for name in COLUMNS)
    failures = {str(i): stats[i].failures for i in ids if stats[i].failures}
    return bytes([_FORMAT]) + zlib.compress(raw, 6), (json.dumps(failures, separators=(",", ":")) if failures
                                                      else None)


def decode_columns(blob: bytes, wanted: Sequence[str] = COLUMNS) -> dict[str, array]:
    """The packed columns (`id` holds absolute ids instead of `id_delta`). Equal id columns decode to the
    SAME array object, so callers can add columns position-wise when their `id` is the same object."""
    if not blob or blob[0] != _FORMAT:
        raise ValueError(f"unknown rollup format {blob[:1]!r}")
    raw = zlib.decompress(blob[1:])
    size = len(raw) // len(COLUMNS)
    out: dict[str, array] = {}
    deltas = raw[:size]
    ids = _IDS.get(deltas)
    if ids is None:
        col = _native(array("I", deltas))
        ids, total = array("I"), 0
        for delta in col:
            total += delta
            ids.append(total)
        if len(_IDS) > 64:
            _IDS.clear()
        _IDS[deltas] = ids
    out["id"] = ids
    for index, name in enumerate(COLUMNS[1:], start=1):
        if name in wanted:
            out[name] = _native(array("I", raw[index * size:(index + 1) * size]))
    return out


def decode(blob: bytes, failures: str | None) -> dict[int, Stats]:
    cols = decode_columns(blob)
    fails = {int(k): v for k, v in json.loads(failures).items()} if failures else {}
    out: dict[int, Stats] = {}
    def ms(column: str, j: int) -> float | None:
        return latency(cols[column][j])

    for j, i in enumerate(cols["id"]):
        out[i] = Stats(cols["checks"][j], cols["passed"][j], cols["attempts"][j], cols["retried"][j],
                       ms("p50", j), ms("p95", j), ms("max", j), dict(fails.get(i, {})))
    return out


def combine(parts: Iterable[Stats]) -> Stats:
    """Figures of a span from its periods: exact counts and max, P95 = highest period P95 (upper bound),
    P50 = check-weighted median of the period P50s (approximation). One part is returned unchanged."""
    parts = [p for p in parts if p.checks]
    if len(parts) == 1:
        return parts[0]
    out = Stats()
    medians: list[tuple[float, int]] = []
    for p in parts:
        out.checks += p.checks
        out.passed += p.passed
        out.attempts += p.attempts
        out.retried += p.retried
        for cat, n in p.failures.items():
            out.failures[cat] = out.failures.get(cat, 0) + n
        if p.max is not None:
            out.max = p.max if out.max is None else max(out.max, p.max)
        if p.p95 is not None:
            out.p95 = p.p95 if out.p95 is None else max(out.p95, p.p95)
        if p.p50 is not None:
            medians.append((p.p50, p.checks))
    if medians:
        medians.sort()
        half, seen = sum(w for _, w in medians) / 2, 0
        for value, weight in medians:
            seen += weight
            if seen >= half:
                out.p50 = value
                break
    return out


def suffix_sums(periods: Sequence[tuple[float, Mapping[str, Any]]], bounds: Iterable[float],
                columns: Sequence[str] = ("checks", "passed")) -> dict[float, dict[int, Sequence[int]]]:
    """{bound: {id: sums of `columns`}} over the periods starting at or after each bound. `periods` are
    (start, decoded columns), oldest first; each is added once, newest first, with a snapshot at every bound
    (windows that all end now: a year, 90 days and 30 days share one pass over the year's days)."""
    sums = Sums()
    pending = sorted(set(bounds), reverse=True)
    out: dict[float, dict[int, Sequence[int]]] = {}
    for start, cols in reversed(periods):
        while pending and start < pending[0]:
            out[pending.pop(0)] = sums.by_id()
        sums.add(cols["id"], *(cols[name] for name in columns))
    for bound in pending:
        out[bound] = sums.by_id()
    return out


def day_grid(days_cols: Sequence[tuple[int, Mapping[str, Any]]], width: int, cell: Callable[[tuple[int, int]], T],
             empty: T) -> dict[int, list[T]]:
    """{id: [cell((checks, passed)) per position]} from (position, decoded day columns) pairs, `empty` where an
    id has no day. When the days are consecutive and hold the same ids (the usual case) the rows come straight
    from the transposed columns instead of a Python step per interface and day."""
    grid: dict[int, list[T]] = {}
    memo: dict[tuple[int, int], T] = {}
    first = days_cols[0][0] if days_cols else 0
    if days_cols and all(n == first + k and c["id"] is days_cols[0][1]["id"] for k, (n, c) in enumerate(days_cols)):
        pairs = zip(*(zip(c["checks"], c["passed"], strict=True) for _, c in days_cols), strict=True)
        head, tail = [empty] * first, [empty] * (width - first - len(days_cols))
        for i, row_pairs in zip(days_cols[0][1]["id"], pairs, strict=True):
            grid[i] = head + [memo.get(pr) or memo.setdefault(pr, cell(pr)) for pr in row_pairs] + tail
        return grid
    for n, cols in days_cols:
        for i, pair in zip(cols["id"], zip(cols["checks"], cols["passed"], strict=True), strict=True):
            row = grid.get(i)
            if row is None:
                row = grid[i] = [empty] * width
            row[n] = memo.get(pair) or memo.setdefault(pair, cell(pair))
    return grid


def highest(periods: Sequence[Mapping[str, Any]], column: str) -> dict[int, int]:
    """{id: highest stored value of `column`} over decoded periods: one max() over all periods per id column."""
    by_ids: dict[int, list[Sequence[int]]] = {}
    for cols in periods:
        by_ids.setdefault(id(cols["id"]), [cols["id"]]).append(cols[column])
    top = Columns(max)
    for ids, *columns in by_ids.values():
        top.add(ids, list(map(max, *columns)) if len(columns) > 1 else columns[0])
    return {i: values[0] for i, values in top.by_id().items()}


class Columns:
    """Columns of several rollups combined position-wise with `op` (add, max) while they share one id column
    (decode_columns hands out one object per distinct id column): C-speed map() instead of a Python loop
    per interface and period."""

    def __init__(self, op: Callable[[int, int], int]) -> None:
        self.op = op
        self.groups: list[list[Any]] = []  # [ids, column, column, …]

    def add(self, ids: Sequence[int], *columns: Sequence[int]) -> None:
        """Combines `columns` (one entry per id of `ids`) into the running columns."""
        for group in self.groups:
            if group[0] is ids:
                for j, column in enumerate(columns, start=1):
                    group[j] = list(map(self.op, group[j], column))
                return
        self.groups.append([ids, *(list(c) for c in columns)])

    def by_id(self) -> dict[int, Sequence[int]]:
        """{id: (combined column values…)}."""
        if len(self.groups) == 1:  # the usual case: every period holds the same interfaces
            ids, *columns = self.groups[0]
            return dict(zip(ids, zip(*columns, strict=True), strict=True))
        out: dict[int, Sequence[int]] = {}
        for ids, *columns in self.groups:
            for j, i in enumerate(ids):
                values = [c[j] for c in columns]
                row = out.get(i)
                if row is None:
                    out[i] = values
                else:
                    out[i] = [self.op(a, b) for a, b in zip(row, values, strict=True)]
        return out


class Sums:
    """Columns of several rollups added position-wise (like Columns with addition), but each column is held
    as ONE integer whose 64-bit lanes are the column's entries: adding two such integers adds every lane at
    once (C speed, no Python int per entry and period). Entries are uint32 (rollup.py), so a lane cannot
    carry into the next before 2**32 periods have been added."""

    _LANE = 8
    _LOW = 0 if sys.byteorder == "little" else 1  # which uint32 half of a lane holds its value

    def __init__(self) -> None:
        self.groups: list[list[Any]] = []  # [ids, total, total, …]

    @classmethod
    def _wide(cls, column: array) -> int:
        wide = array("Q", bytes(cls._LANE * len(column)))
        memoryview(wide).cast("B").cast("I")[cls._LOW::2] = memoryview(column)
        return int.from_bytes(wide, sys.byteorder)

    def add(self, ids: Sequence[int], *columns: array) -> None:
        """Adds uint32 `columns` (one entry per id of `ids`) to the running sums."""
        for group in self.groups:
            if group[0] is ids:
                for j, column in enumerate(columns, start=1):
                    group[j] += self._wide(column)
                return
        self.groups.append([ids, *(self._wide(c) for c in columns)])

    def by_id(self) -> dict[int, Sequence[int]]:
        """{id: (sum, sum, …)}."""
        out: dict[int, Sequence[int]] = {}
        for ids, *totals in self.groups:
            columns = [array("Q", t.to_bytes(self._LANE * len(ids), sys.byteorder)) for t in totals]
            for i, values in zip(ids, zip(*columns, strict=True), strict=True):
                old = out.get(i)
                out[i] = values if old is None else [a + b for a, b in zip(old, values, strict=True)]
        return out
