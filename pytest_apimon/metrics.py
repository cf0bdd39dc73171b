"""Prometheus text exposition for node_exporter's textfile collector, written after each run.

node_exporter re-reads `*.prom` files on every scrape, so the file is replaced atomically
(atomicfile.atomic_write: a temporary file in the same folder, fsync, os.replace): a scrape never sees half a
file. A duplicate series makes the collector reject the whole file, so every label set is written once.
The text itself (HELP/TYPE lines, label and HELP escaping, number formatting) is prometheus_client's
`generate_latest`, the reference implementation of the text format 0.0.4.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .atomicfile import atomic_write
from .categories import ORDER
from .policy import DOWN, OPEN, InterfaceState, Verdict, interface_key
from .report import compute_stats, is_down
from .results import InterfaceResult, RunResult
from .state import StateStore
from .statedir import SHARED_FILE

FAILURE_LOOKBACK = 7 * 86400.0  # how far back "the last failure" is looked up (bounds the query)
# apimon_interface_availability_ratio windows (issue 18), read from the rollups.
AVAILABILITY_WINDOWS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "90d": 90 * 86400.0,
                        "1y": 365 * 86400.0}  # the same windows as statuspage.WINDOWS (state memoizes them)
# Asked with the status page's window names so one run computes them once (state.availability_windows).
_NAMES = {"24h": "a24", "7d": "a7", "30d": "a30", "90d": "a90", "1y": "a1y"}
_STATUS_WINDOWS = {_NAMES[name]: seconds for name, seconds in AVAILABILITY_WINDOWS.items()}
_OUTCOME_RANK = {"failed": 0, "passed": 1, "skipped": 2}  # the one kept when two results share labels


@dataclass
class _Family:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float) -> None:
        """One sample; the caller keeps label sets unique (node_exporter rejects a file with a duplicate)."""
        self.samples.append((labels, value))

    def metric(self) -> GaugeMetricFamily:
        """prometheus_client's gauge family; every sample of a family has the same label names."""
        names = list(self.samples[0][0]) if self.samples else []
        family = GaugeMetricFamily(self.name, self.help, labels=names)
        for labels, value in self.samples:
            family.add_metric([str(labels[n]) for n in names], value)
        return family


class _Snapshot(Collector):
    """A collector holding one run's families, registered on a private registry for generate_latest (the
    global REGISTRY would add the process's own metrics and keep ours between runs)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return iter(self.families)


def render_prometheus(run: RunResult, store: StateStore | None = None, verdict: Verdict | None = None) -> str:
    """The whole textfile as one str: text format 0.0.4 written by prometheus_client's `generate_latest`
    (HELP and `TYPE gauge` per family, families without samples left out, labels sorted and escaped, values as
    Go floats, '\n' line ends). One series per label set (a failure wins over a pass over a skip, `_unique`).
    Units: latencies and durations in seconds, timestamps in Unix seconds, ratios 0..1.

    `verdict` (this run's policy outcome) or else `store` supplies alert state (down, open circuits);
    `store` also supplies the category of an earlier failure (within FAILURE_LOOKBACK) and the availability
    windows (AVAILABILITY_WINDOWS, from the rollups). Without either, only the run's own families are written.
    Raises sqlite3.Error when `store` cannot be read."""
    states: dict[str, InterfaceState] = {}
    if verdict is not None:
        states = verdict.states
    elif store is not None:
        states = store.load_states(run.env)
    env = run.env
    results = _unique(run.results)
    last_failures = store.last_failure_since(env, run.finished_at - FAILURE_LOOKBACK) if store is not None else {}
    availability = {}
    if store is not None:
        by_seconds = store.availability_windows(env, now=run.finished_at, windows=_STATUS_WINDOWS)
        availability = {name: by_seconds[_NAMES[name]] for name in AVAILABILITY_WINDOWS}

    fam = {name: _Family(name, text) for name, text in (
        ("apimon_interface_up", "1 if the interface passed its last check, 0 if it failed, its circuit is open or "
                                "it was not checked and its last known state is down; absent when not checked."),
        ("apimon_interface_unchecked", "1 if the last run did not check the interface (an xdist worker died and "
                                       "was not replaced), else 0."),
        ("apimon_interface_latency_seconds", "Latency of the interface's last check (last attempt)."),
        ("apimon_interface_http_status", "HTTP status of the interface's last check (absent without a response)."),
        ("apimon_interface_attempts", "Attempts the last check took (more than 1: retried)."),
        ("apimon_interface_down", "1 while the alert policy considers the interface down (after thresholds)."),
        ("apimon_interface_circuit_open", "1 while the interface's circuit breaker is open (checks skipped)."),
        ("apimon_interface_last_failure_info", "The category of the interface's most recent failure (value 1)."),
        ("apimon_interface_last_failure_timestamp_seconds", "Start of the run of the interface's most recent "
                                                            "failure, Unix time."),
        ("apimon_interface_availability_ratio", "Passed / executed checks of the interface over `window` "
                                                "(24h, 7d, 30d, 90d, 1y; from the history's rollups)."),
        ("apimon_interface_checks", "Executed checks of the interface over `window` (the ratio's denominator)."),
        ("apimon_service_availability_ratio", "Passed / executed checks of the service's interfaces over "
                                              "`window`."),
        ("apimon_run_interfaces", "Interfaces in the last run by result, as the JSON report's stats: failed = down "
                                  "now (failed, circuit open, or not checked and last known down)."),
        ("apimon_run_failures", "Down interfaces in the last run by category (the JSON stats' by_category)."),
        ("apimon_run_duration_seconds", "Wall-clock duration of the last run."),
        ("apimon_run_last_timestamp_seconds", "End of the last run, Unix time."),
        ("apimon_run_unchecked_interfaces", "Interfaces the last run did not check (an xdist worker died and was "
                                            "not replaced); more than 0: the monitoring is incomplete."),
        ("apimon_run_success_ratio", "Passed / (passed + failed) interfaces in the last run, the JSON stats' "
                                     "success_rate (absent when nothing ran and nothing is down)."),
        ("apimon_open_circuits", "Interfaces whose circuit breaker is open."),
        ("apimon_interfaces_down", "Interfaces the alert policy considers down."),
        ("apimon_storm", "1 when the last run was a network storm (most checks failed with network/timeout)."),
        ("apimon_cert_expiry_timestamp_seconds", "notAfter of the TLS certificate the HTTPS origin presented in the "
                                                 "last run, Unix time (the soonest if it presented several)."),
    )}

    for r in results:
        labels = {"env": env, "service": r.service, "module": r.module, "interface": r.name}
        key = interface_key(r)
        state = states.get(key)
        circuit_open = state is not None and state.breaker == OPEN
        # A plain skip says nothing about up or down, nor does a check that never ran: its series is left out (it
        # goes stale) rather than repeat a 1 nobody verified; known down (report.is_down) stays 0.
        if r.outcome != "skipped" or circuit_open or is_down(r):
            fam["apimon_interface_up"].add(labels, 1 if r.outcome == "passed" else 0)
        fam["apimon_interface_unchecked"].add(labels, 1 if r.unchecked else 0)
        if r.outcome != "skipped":
            if r.elapsed_ms is not None:
                fam["apimon_interface_latency_seconds"].add(labels, r.elapsed_ms / 1000)
            if r.status is not None:
                fam["apimon_interface_http_status"].add(labels, r.status)
            fam["apimon_interface_attempts"].add(labels, r.attempts)
        if state is not None:
            fam["apimon_interface_down"].add(labels, 1 if state.status == DOWN else 0)
            fam["apimon_interface_circuit_open"].add(labels, 1 if circuit_open else 0)
        if r.outcome == "failed":
            failure: tuple[str, float] | None = (r.category or "unexpected", r.started_at or run.started_at)
        else:
            failure = last_failures.get(key)
        if failure is not None:
            fam["apimon_interface_last_failure_info"].add({**labels, "category": failure[0]}, 1)
            fam["apimon_interface_last_failure_timestamp_seconds"].add(labels, failure[1])
        for window, per_key in availability.items():
            a = per_key.get(key)
            if a is not None and a.checks:
                fam["apimon_interface_availability_ratio"].add({**labels, "window": window}, a.passed / a.checks)
                fam["apimon_interface_checks"].add({**labels, "window": window}, a.checks)

    by_service: dict[str, set[str]] = {}
    for r in results:
        by_service.setdefault(r.service, set()).add(interface_key(r))
    for window, per_key in availability.items():
        for service, keys in sorted(by_service.items()):
            got = [per_key[k] for k in keys if k in per_key]
            checks = sum(a.checks for a in got)
            if checks:
                fam["apimon_service_availability_ratio"].add({"env": env, "service": service, "window": window},
                                                             sum(a.passed for a in got) / checks)

    # The run's totals are the JSON report's `stats` (report.compute_stats), not a count of its own: "failed"
    # is down now (report.is_down: failed, behind an open circuit, or not checked and last known down), so the
    # textfile, the JSON, the Markdown report and the status page never disagree about one run.
    stats = compute_stats(run)  # every result, like the report, even if labels collided
    for outcome, n in (("passed", stats.passed), ("failed", stats.failed), ("skipped", stats.skipped)):
        fam["apimon_run_interfaces"].add({"env": env, "result": outcome}, n)
    by_category = {c.value: 0 for c in ORDER} | stats.by_category
    for cat, n in by_category.items():
        fam["apimon_run_failures"].add({"env": env, "category": cat}, n)
    fam["apimon_run_duration_seconds"].add({"env": env}, run.duration)
    fam["apimon_run_last_timestamp_seconds"].add({"env": env}, run.finished_at)
    fam["apimon_run_unchecked_interfaces"].add({"env": env}, stats.unchecked)
    if stats.success_rate is not None:
        fam["apimon_run_success_ratio"].add({"env": env}, stats.success_rate)
    if states or verdict is not None or store is not None:
        fam["apimon_open_circuits"].add({"env": env}, sum(s.breaker == OPEN for s in states.values()))
        fam["apimon_interfaces_down"].add({"env": env}, sum(s.status == DOWN for s in states.values()))
    if verdict is not None:
        fam["apimon_storm"].add({"env": env}, 1 if verdict.storm is not None else 0)
    _certificates(fam["apimon_cert_expiry_timestamp_seconds"], run)

    registry = CollectorRegistry(auto_describe=False)
    # A HELP/TYPE without samples is legal but noise: only families with samples.
    registry.register(_Snapshot([f.metric() for f in fam.values() if f.samples]))
    return generate_latest(registry).decode("utf-8")


def write_prometheus(path: str | Path, run: RunResult, store: StateStore | None = None,
                     verdict: Verdict | None = None) -> Path:
    """Render (render_prometheus) and atomically replace `path` with mode statedir.SHARED_FILE (node_exporter
    reads `*.prom` in its textfile directory and never sees half a file). Returns `path` as a Path. Raises
    OSError when the file cannot be written (the old file is then unchanged) and sqlite3.Error as
    render_prometheus."""
    return atomic_write_text(path, render_prometheus(run, store, verdict))


def atomic_write_text(path: str | Path, text: str, mode: int = SHARED_FILE) -> Path:
    """atomicfile.atomic_write with a readable default mode: node_exporter and web servers usually run as other
    users. Raises OSError (the target is then unchanged)."""
    return atomic_write(path, text, mode=mode)


def _certificates(family: _Family, run: RunResult) -> None:
    """One sample per (origin, service): the soonest notAfter the run saw (certs.py), Unix time."""
    soonest: dict[tuple[str, str], float] = {}
    for r in run.results:
        for origin, when in r.certificates.items():
            soonest[origin, r.service] = min(when, soonest.get((origin, r.service), when))
    for (origin, service), when in sorted(soonest.items()):
        family.add({"env": run.env, "origin": origin, "service": service}, when)


def _unique(results: Iterable[InterfaceResult]) -> list[InterfaceResult]:
    """One result per (service, module, interface) label set; a failure wins over a pass over a skip."""
    best: dict[tuple[str, str, str], InterfaceResult] = {}
    for r in results:
        labels = (r.service, r.module, r.name)
        old = best.get(labels)
        if old is None or _OUTCOME_RANK.get(r.outcome, 3) < _OUTCOME_RANK.get(old.outcome, 3):
            best[labels] = r
    return sorted(best.values(), key=lambda r: (r.service, r.module, r.name))
