"""`apimon export`: per-interface and per-service availability and latency for a period, for SLA reports.

Reads the history tiers through state.StateStore.window_stats (daily rollups for periods longer than 7 days,
hourly ones for shorter, the raw tail for what is not rolled up yet). Counts are exact; the latency
percentiles of a span longer than one hour/day are combined as rollup.combine documents (P95 = the highest
period P95, an upper bound; P50 = check-weighted median of period P50s); a service's are combined the same
way from its interfaces.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .categories import ORDER
from .rollup import Stats, combine
from .state import StateStore

FIELDS = ["scope", "env", "service", "interface", "from", "to", "checks", "passed", "failed", "availability",
          "attempts", "retried", "latency_p50_ms", "latency_p95_ms", "latency_max_ms",
          *(f"failures_{c.value}" for c in ORDER)]


@dataclass(frozen=True)
class Period:
    start: float  # Unix time, inclusive
    end: float  # Unix time, exclusive

    def label(self, ts: float) -> str:
        return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def parse_bound(text: str, *, end: bool = False) -> float:
    """A date (YYYY-MM-DD, local; as `--to` it includes that whole day) or an ISO 8601 date-time
    (local unless it names its offset). Raises ValueError with the accepted forms."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d")  # naive = the local calendar day, on purpose
            return (day + timedelta(days=1) if end else day).timestamp()
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"expected a date like 2026-01-31 or a date-time like 2026-01-31T08:00, got {text!r}"
                         ) from None


def rows(store: StateStore, env: str, period: Period) -> list[dict[str, Any]]:
    """One row per interface with checks in the period (sorted), then one per service."""
    stats = store.window_stats(env, since=period.start, until=period.end)
    services = store.services()
    out: list[dict[str, Any]] = []
    by_service: dict[str, list[Stats]] = {}
    for key in sorted(stats):
        service = services.get(key, key.split("/", 1)[0])
        by_service.setdefault(service, []).append(stats[key])
        out.append(_row("interface", env, service, key, period, stats[key]))
    for service in sorted(by_service):
        out.append(_row("service", env, service, "", period, combine(by_service[service])))
    return out


def _row(scope: str, env: str, service: str, key: str, period: Period, s: Stats) -> dict[str, Any]:
    return {
        "scope": scope, "env": env, "service": service, "interface": key,
        "from": period.label(period.start), "to": period.label(period.end),
        "checks": s.checks, "passed": s.passed, "failed": s.failed,
        "availability": round(s.availability, 6) if s.availability is not None else None,
        "attempts": s.attempts, "retried": s.retried,
        "latency_p50_ms": s.p50, "latency_p95_ms": s.p95, "latency_max_ms": s.max,
        **{f"failures_{c.value}": s.failures.get(c.value, 0) for c in ORDER},
    }


def render(data: list[dict[str, Any]], fmt: str) -> str:
    """`csv` (a header row, RFC 4180 quoting) or `json` (a list of objects)."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in data)
    return buffer.getvalue()
