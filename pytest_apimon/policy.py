"""The alert state machine, in one place: Gatus-style thresholds for a runner where every run is a restart.

Pure functions. `evaluate(previous states, this run's results, settings, now, memory)` returns the new
states and one Decision per notable interface; `gate(state, policy, now)` says whether an interface with
an open circuit runs (half-open probe) or is skipped. The store persists what `evaluate` returns.

Per interface the memory is: up/down after thresholds, the consecutive counters, whether a problem was
announced (`alerted`: RECOVERED is only sent for something that was announced, and an interface that was
announced down is resolved even if it recovered between runs), the last outcomes (flapping) and the breaker.
Beside the up/down machine, a second, smaller one for slowness (expect.warn_ms): SLOW after `slow_threshold`
consecutive slow passes, SLOW_CLEARED after `normal_threshold` normal ones; never a failure, never down.

Maintenance (maintenance.py says which services are in a window; `evaluate` gets it as `maintenance`): the
interface is checked and its counters advance, but nothing is announced (no NEW, reminder, FLAPPING, RECOVERED,
SLOW), its flapping history and the circuit breaker ignore the run (a circuit is never opened by a failure in
maintenance; an open one still closes on a pass). The first run after the window decides from the state: still
down and never announced -> NEW; announced before and passing now -> RECOVERED; down during the window only ->
nothing (it was never announced).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from itertools import pairwise

from . import times
from .categories import Category, Outcome
from .policy_settings import AlertPolicy, PolicySettings, StormSettings
from .results import InterfaceResult

UP, DOWN = "up", "down"
CLOSED, OPEN = "closed", "open"  # half-open is the run that probes an open circuit, not a stored state
STORM_CATEGORIES = frozenset({Category.NETWORK, Category.TIMEOUT})
# Document and config errors (engine.py files config under invalid_document) never open a circuit.
NO_BREAKER_CATEGORIES = frozenset({Category.INVALID_DOCUMENT})


def interface_key(result: InterfaceResult) -> str:
    """One identity per interface, stable across file moves and node-id changes: "service/name" (names are
    unique within a service); items.py gives duplicates and whole-file errors a file-qualified `key`."""
    return result.key or f"{result.service}/{result.name}"


def unique_keys(results: Iterable[InterfaceResult]) -> list[tuple[str, InterfaceResult]]:
    """(key, result) with every key unique: a key seen again (it should not happen, items.py qualifies
    duplicates) is qualified by the node id rather than overwriting the first result's memory or history."""
    seen: set[str] = set()
    out = []
    for r in results:
        key = interface_key(r)
        if key in seen:
            key = f"{key} [{r.nodeid}]"
            r.key = key
        seen.add(key)
        out.append((key, r))
    return out


@dataclass
class InterfaceState:
    key: str
    service: str
    status: str = UP
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failing_since: float | None = None  # first run of the current failing streak
    down_since: float | None = None  # the failing streak that made it down
    last_alert_at: float | None = None  # NEW, FLAPPING or a reminder announced
    last_change_at: float | None = None  # up <-> down
    alerted: bool = False  # a problem was announced and not yet resolved
    flapping: bool = False
    recent: str = ""  # last outcomes, oldest first: P passed, F failed
    breaker: str = CLOSED
    open_since: float | None = None
    next_probe_at: float | None = None
    pool: str = ""  # the Interface-pool it belongs to ("" = unknown, before schema v2)
    last_category: str | None = None  # category of its last failed check (shown while its circuit is open)
    slow_runs: int = 0  # consecutive passing runs slower than expect.warn_ms
    normal_runs: int = 0  # consecutive passing runs within warn_ms
    slow_alerted: bool = False  # SLOW was announced and not yet cleared
    slow_since: float | None = None  # first run of the current slow streak


@dataclass
class RunMemory:
    """Run-level memory (per env): the storm guard's own alert state."""

    storm_since: float | None = None
    storm_last_alert_at: float | None = None
    # `apimon merge` (shard_step): the missing shards last announced ("K/N"; "?" = nothing arrived, N unknown),
    # since when the runs are incomplete, the last announcement, the services left unchecked meanwhile (the
    # recovery goes to their robots), and N and the number of planned interfaces of the last split seen.
    shards_missing: list[str] = field(default_factory=list)
    shards_since: float | None = None
    shards_last_alert_at: float | None = None
    shards_services: list[str] = field(default_factory=list)
    shards_total: int = 0
    shards_planned: int = 0
    # unchecked_step: the services with interfaces a run left unchecked (a lost xdist worker), announced since the
    # runs became incomplete (every one told so far), since when, the last announcement.
    unchecked_names: list[str] = field(default_factory=list)
    unchecked_since: float | None = None
    unchecked_last_alert_at: float | None = None


class Kind(str, Enum):
    NEW = "new"  # became down (or stopped flapping while down): announce
    FLAPPING = "flapping"  # announce once, then only reminders
    ONGOING = "ongoing"  # still down; `remind` when the reminder interval has passed
    RECOVERING = "recovering"  # down, passing, below success_threshold
    PENDING = "pending"  # failing, below failure_threshold
    STORM = "storm"  # network/timeout failure during a storm: counted, not alerted
    RECOVERED = "recovered"
    REMOVED = "removed"  # announced down, then its document disappeared
    MAINTENANCE = "maintenance"  # failing (or holding news) inside a maintenance window: checked, not alerted
    SLOW = "slow"  # slow_threshold consecutive slow passes: announced once (Verdict.slow)
    SLOW_CLEARED = "slow_cleared"  # normal_threshold normal passes after SLOW (Verdict.slow)

    def label(self, lang: str = "zh") -> str:
        return _LABELS[self][0 if lang == "zh" else 1]


_LABELS = {
    Kind.NEW: ("新告警", "NEW"), Kind.FLAPPING: ("抖动", "FLAPPING"), Kind.ONGOING: ("持续", "ONGOING"),
    Kind.RECOVERING: ("恢复中", "RECOVERING"), Kind.PENDING: ("待确认", "PENDING"),
    Kind.STORM: ("网络风暴", "STORM"), Kind.RECOVERED: ("已恢复", "RECOVERED"),
    Kind.REMOVED: ("已移除", "REMOVED"), Kind.MAINTENANCE: ("维护中", "MAINTENANCE"),
    Kind.SLOW: ("响应慢", "SLOW"), Kind.SLOW_CLEARED: ("响应恢复正常", "SLOW CLEARED"),
}
_ORDER = list(Kind)


@dataclass
class Decision:
    key: str
    service: str
    kind: Kind
    notify: bool = False  # makes the run worth a message on its own
    remind: bool = False
    since: float | None = None  # start of the problem (down/failing/flapping streak)
    runs: int = 0  # consecutive failing runs (passing runs for RECOVERING)
    changes: int = 0  # outcome changes within the flapping window
    breaker: str = CLOSED  # after this run
    breaker_event: str = ""  # opened | reopened | closed (a half-open probe's outcome)
    open_since: float | None = None
    next_probe_at: float | None = None
    circuit_skipped: bool = False  # not run: the circuit is open
    result: InterfaceResult | None = None

    def describe(self, lang: str = "zh", now: float | None = None) -> str:
        """One short annotation for the report, e.g. 'ONGOING since 04:00 (12 runs)'."""
        zh = lang == "zh"
        since = fmt_time(self.since, now) if self.since is not None else "?"
        text = self.kind.label(lang)
        first_run = self.kind is Kind.NEW and self.runs <= 1  # "new" says it all; no "since now (1 run)"
        if self.kind in (Kind.NEW, Kind.ONGOING, Kind.PENDING, Kind.STORM) and self.since is not None \
                and not first_run:
            text += f"，自 {since} 起（连续 {self.runs} 次）" if zh else f" since {since} ({self.runs} runs)"
        elif self.kind is Kind.FLAPPING:
            text += f"（最近状态变化 {self.changes} 次）" if zh else f" ({self.changes} changes recently)"
        elif self.kind is Kind.RECOVERED and self.since is not None:
            text += f"，故障自 {since} 起" if zh else f", was down since {since}"
        elif self.kind is Kind.MAINTENANCE:
            text += "，不告警" if zh else ", not alerted"
            if self.since is not None:
                text += f"，失败自 {since} 起（连续 {self.runs} 次）" if zh else \
                    f", failing since {since} ({self.runs} runs)"
        elif self.kind is Kind.SLOW and self.since is not None:
            text += f"，自 {since} 起连续 {self.runs} 次超过 warn_ms" if zh else \
                f": over warn_ms {self.runs} runs in a row since {since}"
        elif self.kind is Kind.SLOW_CLEARED and self.since is not None:
            text += f"（慢自 {since} 起）" if zh else f" (slow since {since})"
        if self.remind:
            text += "（提醒）" if zh else " (reminder)"
        if self.breaker == OPEN and self.next_probe_at is not None:
            nxt = fmt_time(self.next_probe_at, now)
            text += f"；熔断中，下次探测 {nxt}" if zh else f"; circuit open, next probe at {nxt}"
        elif self.breaker_event == "closed":
            text += "；熔断已关闭" if zh else "; circuit closed"
        return text


@dataclass
class Storm:
    """The storm guard's finding: most executed interfaces failed with network/timeout across services."""

    failed: int
    executed: int
    by_service: dict[str, int]
    since: float
    notify: bool

    def describe(self, lang: str = "zh") -> str:
        if lang == "zh":
            return (f"{self.executed} 个接口中 {self.failed} 个网络/超时失败，涉及 {len(self.by_service)} 个服务："
                    "很可能是监控机自身的网络或 DNS 出了问题")
        return (f"{self.failed} of {self.executed} interfaces failed with network/timeout errors across "
                f"{len(self.by_service)} services: probably the monitor's own network or DNS")


@dataclass(frozen=True)
class ShardReport:
    """What `apimon merge` received (merge.py): which shards of a K/N split sent no usable results.

    total: N (0: unknown: no usable file arrived); received: shard files used; unchecked: interfaces left
    unchecked (None: unknown); by_service: the same per service ({}: unknown); planned: interfaces in the whole
    split (None: no plan seen); problems: canonical English lines about unusable files (messages.localize)."""

    total: int
    missing: tuple[int, ...] = ()
    received: int = 0
    unchecked: int | None = None
    by_service: Mapping[str, int] = field(default_factory=dict)
    planned: int | None = None
    problems: tuple[str, ...] = ()

    @property
    def incomplete(self) -> bool:
        """Some shard is missing, or none arrived."""
        return bool(self.missing) or self.received == 0

    @property
    def names(self) -> tuple[str, ...]:
        """('2/3',) — or ('?',) when nothing arrived and N is unknown."""
        if self.received == 0 and not self.missing:
            return ("?",)
        return tuple(f"{k}/{self.total}" for k in self.missing)


@dataclass(frozen=True)
class ShardGap:
    """The shard machine's finding for one merge (shard_step). `report` None: every shard is back (recovery).

    what: shards (the set of missing shards is new or changed) | shards_reminder | shards_ongoing (the same set
    as announced, no reminder due) | shards_recovered. services: the services concerned (routing; (): unknown,
    every robot)."""

    report: ShardReport | None
    what: str
    since: float
    notify: bool
    services: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


@dataclass
class Episode:
    """The alert memory of one run-level problem that names a part of the pool (missing shards, interfaces left
    unchecked): what was last announced (`names`), since when the runs have it, the last announcement, and the
    services concerned meanwhile (the announcement of its end goes to their robots)."""

    names: list[str]
    since: float | None
    last_alert_at: float | None
    services: list[str]

    def step(self, names: Sequence[str], services: Iterable[str], now: float, remind_every: float, *,
             changed: bool) -> tuple[str, bool, float, tuple[str, ...]] | None:
        """One run (self updated in place): (phase, notify, since, services concerned). phase '' — new, or
        `changed` (the caller's rule): announce; 'reminder' — the same, `remind_every` seconds after the last
        announcement; 'ongoing' — the same, no reminder due; 'recovered' — `names` empty after a problem
        (announced once). None: no problem now and none remembered. As the storm guard: announce, remind, end."""
        if not names:
            if not self.names:
                return None
            since = self.since if self.since is not None else now
            gone = tuple(self.services)
            self.names, self.since, self.last_alert_at, self.services = [], None, None, []
            return "recovered", True, since, gone
        if self.since is None:
            self.since = now
        if changed:
            phase, notify = "", True
        else:
            notify = _due(self.last_alert_at, remind_every, now)
            phase = "reminder" if notify else "ongoing"
        if notify:
            self.last_alert_at = now
        self.names = list(names)
        self.services = sorted(set(self.services) | set(services))
        return phase, notify, self.since, tuple(self.services)


def _what(prefix: str, phase: str) -> str:
    return f"{prefix}_{phase}" if phase else prefix


def shard_step(memory: RunMemory, report: ShardReport | None, now: float, remind_every: float) -> ShardGap | None:
    """The completeness of a merged run, as the storm guard treats a run-level problem (memory is updated in place).

    Announced when the set of missing shards changes (new, grown, shrunk: the reader must learn which part of
    the pool is unmonitored now), reminded every `remind_every` while it stays the same, and its end announced
    once ("shards back") (Episode.step). A merge that received nothing takes N and the planned interfaces from
    the last merge. `report` None (a plain run, not a merge): nothing is known about shards and the memory is
    kept."""
    if report is None:
        return None
    if report.received == 0 and not report.total and memory.shards_total:
        report = replace(report, total=memory.shards_total, missing=tuple(range(1, memory.shards_total + 1)),
                         unchecked=report.unchecked if report.unchecked is not None else memory.shards_planned or None)
    if report.received:
        memory.shards_total = report.total
        memory.shards_planned = report.planned if report.planned is not None else memory.shards_planned
    names = list(report.names) if report.incomplete else []
    episode = Episode(memory.shards_missing, memory.shards_since, memory.shards_last_alert_at,
                      memory.shards_services)
    found = episode.step(names, report.by_service, now, remind_every, changed=names != memory.shards_missing)
    memory.shards_missing, memory.shards_since = episode.names, episode.since
    memory.shards_last_alert_at, memory.shards_services = episode.last_alert_at, episode.services
    if found is None:
        return None
    phase, notify, since, services = found
    if phase == "recovered":
        return ShardGap(None, "shards_recovered", since, True, services)
    return ShardGap(report, _what("shards", phase), since, notify, tuple(sorted(report.by_service)), tuple(names))


@dataclass(frozen=True)
class UncheckedGap:
    """The finding of unchecked_step for one run: interfaces it left unchecked (a lost xdist worker), or their
    return. what: incomplete (a service newly unchecked) | incomplete_reminder | incomplete_ongoing (no
    reminder due) | incomplete_recovered (every interface checked again); notify: worth a message;
    services: the services concerned (routing: now, or for the return every one unchecked meanwhile); since:
    the first incomplete run; names: the services unchecked now."""

    what: str
    since: float
    notify: bool
    services: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


def unchecked_step(memory: RunMemory, services: Collection[str] | None, now: float,
                   remind_every: float) -> UncheckedGap | None:
    """Interfaces a run did not check, as a run-level problem with the same rule as missing shards (Episode):
    announced when it starts and whenever a service not announced yet is left unchecked (its robot must learn
    of it), reminded every `remind_every` while it lasts, its end announced once. Which interfaces a dead worker
    leaves behind varies from run to run, so a shrinking set is not news; the whole pool checked again is.

    services: the services with an unchecked interface this run (empty: nothing unchecked); None: unknown (a
    run stopped early or a -k subset checked nothing it lost): nothing is decided and the memory is kept."""
    if services is None:
        return None
    names = sorted(set(services))
    announced = memory.unchecked_names
    episode = Episode(announced, memory.unchecked_since, memory.unchecked_last_alert_at, announced)
    found = episode.step(sorted(set(names) | set(announced)) if names else [], names, now, remind_every,
                         changed=not set(names) <= set(announced))
    memory.unchecked_names, memory.unchecked_since = episode.names, episode.since
    memory.unchecked_last_alert_at = episode.last_alert_at
    if found is None:
        return None
    phase, notify, since, concerned = found
    if phase == "recovered":
        return UncheckedGap("incomplete_recovered", since, True, concerned)
    return UncheckedGap(_what("incomplete", phase), since, notify, tuple(names), tuple(names))


@dataclass
class Verdict:
    states: dict[str, InterfaceState]
    decisions: list[Decision]
    memory: RunMemory
    storm: Storm | None = None
    storm_ended: float | None = None  # the previous run was a storm (its start), this one is not
    removed: list[str] = field(default_factory=list)  # keys whose state was dropped
    slow: list[Decision] = field(default_factory=list)  # SLOW / SLOW_CLEARED (an interface may also have a decision)
    maintenance: dict[str, str] = field(default_factory=dict)  # service -> its active window (label)
    shards: ShardGap | None = None  # apimon merge: missing shards (shard_step)
    unchecked: UncheckedGap | None = None  # interfaces the run left unchecked, or their return (unchecked_step)

    @property
    def worth_message(self) -> bool:
        """New problems, recoveries, reminders due, a storm (start/reminder/end), SLOW or its clearing, a change
        in the missing shards of a merge (or its reminder), in the unchecked interfaces (or its reminder)."""
        storm = self.storm is not None and self.storm.notify
        shards = self.shards is not None and self.shards.notify
        unchecked = self.unchecked is not None and self.unchecked.notify
        return storm or shards or unchecked or self.storm_ended is not None or any(
            d.notify for d in (*self.decisions, *self.slow))

    @property
    def ongoing(self) -> list[Decision]:
        return [d for d in self.decisions if d.kind in (Kind.ONGOING, Kind.RECOVERING, Kind.FLAPPING, Kind.STORM)]

    @property
    def open_circuits(self) -> list[InterfaceState]:
        return sorted((s for s in self.states.values() if s.breaker == OPEN), key=lambda s: s.key)

    def of_kind(self, *kinds: Kind) -> list[Decision]:
        return [d for d in self.decisions if d.kind in kinds]

    def decision(self, key: str) -> Decision | None:
        return next((d for d in self.decisions if d.key == key), None)


def message_mode(send_on: str, verdict: Verdict) -> str:
    """'full' report, short 'digest' (only ongoing problems inside their reminder window) or 'none'.

    A flapping interface is announced once (FLAPPING) and then stays quiet until it settles (NEW when it
    settles down, RECOVERED when it settles up) or its reminder is due: its failures alone never make a digest,
    whatever send_on says (issue 14).
    """
    if verdict.worth_message:
        return "full"
    if send_on == "change":
        return "none"
    if any(d.kind is not Kind.FLAPPING for d in verdict.ongoing) or (
            verdict.shards is not None and verdict.shards.report is not None) or (  # shards still missing
            verdict.unchecked is not None and verdict.unchecked.names):  # interfaces still unchecked
        return "digest"
    return "full" if send_on == "always" else "none"


@dataclass(frozen=True)
class Trigger:
    """Why a message is sent: one kind of news and the interfaces (keys) it concerns."""

    what: str  # new | flapping | reminder | reminder_circuit | recovered | removed | slow | slow_cleared | storm
    #            | storm_reminder | storm_ended | digest | always | shards | shards_reminder | shards_ongoing
    #            | shards_recovered (keys: "K/N" of the missing shards, not interface keys) | incomplete
    #            | incomplete_reminder | incomplete_ongoing | incomplete_recovered (keys: none)
    keys: tuple[str, ...] = ()


def triggers(verdict: Verdict | None, mode: str, send_on: str) -> list[Trigger]:
    """Every reason this run's message is sent, most urgent first (shown at its top, issue 14)."""
    if verdict is None:
        return [Trigger("always" if send_on == "always" else "digest")]
    out: list[Trigger] = []
    gap = verdict.shards
    if gap is not None and (gap.notify or mode == "digest"):  # a monitor with blind spots comes first
        out.append(Trigger(gap.what, gap.names))
    lost = verdict.unchecked
    if lost is not None and (lost.notify or mode == "digest"):
        out.append(Trigger(lost.what))
    if verdict.storm is not None and verdict.storm.notify:
        out.append(Trigger("storm" if verdict.storm.since == verdict.memory.storm_last_alert_at
                           else "storm_reminder"))
    buckets: dict[str, list[str]] = {}
    for d in (*verdict.decisions, *verdict.slow):
        if not d.notify:
            continue
        if d.kind is Kind.FLAPPING:
            what = "reminder" if d.remind else "flapping"
        elif d.remind:
            what = "reminder_circuit" if d.circuit_skipped else "reminder"
        else:
            what = d.kind.value
        buckets.setdefault(what, []).append(d.key)
    order = ("new", "flapping", "reminder", "reminder_circuit", "recovered", "removed", "slow", "slow_cleared")
    out += [Trigger(w, tuple(sorted(buckets[w]))) for w in order if w in buckets]
    if verdict.storm_ended is not None:
        out.append(Trigger("storm_ended"))
    ongoing = tuple(sorted(d.key for d in verdict.ongoing if d.kind is not Kind.FLAPPING))
    if mode == "digest" and all(t.what.startswith(("shards", "incomplete")) for t in out) and (ongoing or not out):
        out.append(Trigger("digest", ongoing))
    elif not out:
        out.append(Trigger("always"))
    return out


@dataclass(frozen=True)
class Gate:
    run: bool = True
    probe: bool = False  # the half-open probe of an open circuit
    reason: str = ""  # the skip reason when not run


def gate(state: InterfaceState | None, policy: AlertPolicy, now: float) -> Gate:
    """Whether an interface runs this time. Its circuit may be open from an earlier run."""
    if state is None or state.breaker != OPEN or not policy.breaker_enabled:
        return Gate()
    if state.next_probe_at is None or now >= state.next_probe_at:
        return Gate(probe=True)
    return Gate(run=False, reason=f"circuit open since {fmt_time(state.open_since, now, seconds=True)}, "
                                  f"next probe at {fmt_time(state.next_probe_at, now, seconds=True)}")


def skips(states: Mapping[str, InterfaceState], settings: PolicySettings, now: float) -> dict[str, str]:
    """{interface key: skip reason} for every open circuit still cooling down (computed once on the controller,
    shipped to xdist workers as plain data)."""
    out = {}
    for key, state in states.items():
        g = gate(state, settings.for_service(state.service), now)
        if not g.run:
            out[key] = g.reason
    return out


def fmt_time(ts: float | None, now: float | None = None, *, seconds: bool = False) -> str:
    """Time in the configured zone with its offset ('11:35 +08:00'); the date is added when it is not today."""
    if ts is None:
        return "?"
    return times.short(ts, now, seconds=seconds)


def _due(last: float | None, every: float, now: float) -> bool:
    # Runs jitter by a few seconds: a reminder due "at" the next run must not slip a whole interval.
    return every > 0 and (last is None or now - last >= every - min(30.0, every * 0.05))


def _changes(recent: str) -> int:
    return sum(1 for a, b in pairwise(recent) if a != b)


def _circuit_skip(s: InterfaceState, policy: AlertPolicy, now: float, result: InterfaceResult,
                  maintenance: bool = False, storm: bool = False) -> Decision:
    if s.status == DOWN and not s.alerted and not maintenance and not storm:
        # It went down inside a maintenance window (or a storm) while its circuit was open: the first run
        # after the window is a skip, and the news must not wait for the next half-open probe.
        s.alerted, s.last_alert_at = True, now
        return Decision(s.key, s.service, Kind.NEW, notify=True, since=s.down_since, runs=s.consecutive_failures,
                        breaker=OPEN, open_since=s.open_since, next_probe_at=s.next_probe_at,
                        circuit_skipped=True, result=result)
    remind = s.alerted and not maintenance and _due(s.last_alert_at, policy.remind_every, now)
    if remind:
        s.last_alert_at = now
    kind = Kind.ONGOING if s.status == DOWN else Kind.PENDING
    return Decision(s.key, s.service, kind, notify=remind, remind=remind, since=s.down_since or s.failing_since,
                    runs=s.consecutive_failures, breaker=OPEN, open_since=s.open_since,
                    next_probe_at=s.next_probe_at, circuit_skipped=True, result=result)


def step(prev: InterfaceState | None, result: InterfaceResult, policy: AlertPolicy, now: float,
         storm: bool = False, maintenance: bool = False) -> tuple[InterfaceState, Decision | None]:
    """One interface, one run. `storm`: this run is a storm (network/timeout failures are not alerted).
    `maintenance`: its service is in a maintenance window (checked and counted, never announced)."""
    key = interface_key(result)
    s = replace(prev) if prev is not None else InterfaceState(key=key, service=result.service)
    s.pool = result.pool or s.pool
    if result.outcome == Outcome.SKIPPED:
        # An open circuit stays listed (with reminders); any other skip leaves the memory alone.
        return s, (_circuit_skip(s, policy, now, result, maintenance, storm)
                   if s.breaker == OPEN else None)
    failed = result.outcome == Outcome.FAILED
    if failed:
        s.last_category = result.category
    storm_hit = storm and failed and result.category in STORM_CATEGORIES
    # Planned restarts are not flapping: a maintenance window's outcomes stay out of the history. Nor is a
    # storm (the monitor's own network): its failures say nothing about the interface, and counting them made
    # every interface of the pool "flapping" after a storm or two.
    s.recent = s.recent if maintenance or storm_hit else \
        (s.recent + ("F" if failed else "P"))[-max(policy.flapping_window, 2):]
    changes = _changes(s.recent)
    was_down_since = s.down_since
    _count(s, failed, policy, now)

    event = _breaker(s, policy, now, failed, storm_hit, result.category, maintenance)
    was_flapping = s.flapping
    s.flapping = s.flapping if maintenance else policy.flapping_changes > 0 and changes >= policy.flapping_changes

    def decide(kind: Kind, notify: bool = False, remind: bool = False, since: float | None = None,
               runs: int = 0) -> tuple[InterfaceState, Decision]:
        return s, Decision(key, s.service, kind, notify=notify, remind=remind, since=since, runs=runs,
                           changes=changes, breaker=s.breaker, breaker_event=event, open_since=s.open_since,
                           next_probe_at=s.next_probe_at, result=result)

    if maintenance:
        # Nothing is announced and `alerted` is left as it was: the first run after the window tells the news.
        return decide(Kind.MAINTENANCE, since=s.down_since or s.failing_since, runs=s.consecutive_failures) \
            if failed or s.alerted else (s, None)
    if storm_hit:
        return decide(Kind.STORM, since=s.down_since or s.failing_since, runs=s.consecutive_failures)
    if s.flapping:
        remind = was_flapping and _due(s.last_alert_at, policy.remind_every, now)
        if not was_flapping or remind:
            s.alerted, s.last_alert_at = True, now
        return decide(Kind.FLAPPING, notify=not was_flapping or remind, remind=remind,
                      since=s.down_since or s.failing_since)
    # Down but never announced (it went down during a storm or a maintenance window) and passing now: there is
    # nothing to announce and no one to tell it recovered, so it falls through to "nothing".
    if s.status == DOWN and (s.alerted or failed):
        # First announcement, or flapping settled into failures while down. Flapping that settles into
        # *passes* while still down (fewer than success_threshold) is not news: RECOVERING, then RECOVERED.
        if not s.alerted or (was_flapping and failed):
            s.alerted, s.last_alert_at = True, now
            return decide(Kind.NEW, notify=True, since=s.down_since, runs=s.consecutive_failures)
        remind = _due(s.last_alert_at, policy.remind_every, now)
        if remind:
            s.last_alert_at = now
        if failed:
            return decide(Kind.ONGOING, notify=remind, remind=remind, since=s.down_since,
                          runs=s.consecutive_failures)
        return decide(Kind.RECOVERING, notify=remind, remind=remind, since=s.down_since,
                      runs=s.consecutive_successes)
    # An announced problem failing below failure_threshold (flapping that settled into failures, or a recovery
    # held by a maintenance window that fails again after it) is never RECOVERED: it is PENDING below, and
    # the announcement stays open (a pass resolves it, reaching the threshold continues it as ONGOING).
    if s.alerted and not failed:
        s.alerted = False
        return decide(Kind.RECOVERED, notify=policy.send_on_resolved, since=was_down_since)
    if failed:
        return decide(Kind.PENDING, since=s.failing_since, runs=s.consecutive_failures)
    return s, None


def _count(s: InterfaceState, failed: bool, policy: AlertPolicy, now: float) -> None:
    """Advance the consecutive counters and up/down after failure_threshold / success_threshold."""
    if failed:
        s.consecutive_failures += 1
        s.consecutive_successes = 0
        if s.consecutive_failures == 1:
            s.failing_since = now
        if s.status == UP and s.consecutive_failures >= policy.failure_threshold:
            s.status, s.down_since, s.last_change_at = DOWN, s.failing_since, now
    else:
        s.consecutive_successes += 1
        s.consecutive_failures, s.failing_since = 0, None
        if s.status == DOWN and s.consecutive_successes >= policy.success_threshold:
            s.status, s.down_since, s.last_change_at = UP, None, now


def slow_step(s: InterfaceState, result: InterfaceResult, policy: AlertPolicy, now: float,
              maintenance: bool = False) -> Decision | None:
    """The slowness machine (issue 16), beside the up/down one: `s` is updated in place.

    Only passing checks count (a failure is the up/down machine's business and leaves these counters alone):
    SLOW once after policy.slow_threshold consecutive slow passes (result.slow: over expect.warn_ms), then
    quiet (no reminders); SLOW_CLEARED after policy.normal_threshold consecutive normal passes, sent when
    send_on_resolved. Inside a maintenance window the counters advance and nothing is announced.
    slow_threshold 0 turns the alert off (a pending SLOW is then forgotten without a message).
    """
    if result.outcome != Outcome.PASSED:
        return None
    if policy.slow_threshold <= 0:
        s.slow_runs = s.normal_runs = 0
        s.slow_alerted, s.slow_since = False, None
        return None
    key = interface_key(result)
    if result.slow:
        s.slow_runs += 1
        s.normal_runs = 0
        if s.slow_runs == 1 and not s.slow_alerted:
            s.slow_since = now
        if not s.slow_alerted and not maintenance and s.slow_runs >= policy.slow_threshold:
            s.slow_alerted = True
            return Decision(key, s.service, Kind.SLOW, notify=True, since=s.slow_since, runs=s.slow_runs,
                            result=result)
        return None
    s.normal_runs += 1
    s.slow_runs = 0
    if not s.slow_alerted:
        s.slow_since = None
        return None
    if maintenance or s.normal_runs < policy.normal_threshold:
        return None
    since, s.slow_alerted, s.slow_since = s.slow_since, False, None
    return Decision(key, s.service, Kind.SLOW_CLEARED, notify=policy.send_on_resolved, since=since,
                    runs=s.normal_runs, result=result)


def _breaker(s: InterfaceState, policy: AlertPolicy, now: float, failed: bool, storm_hit: bool,
             category: str | None = None, maintenance: bool = False) -> str:
    """Advance the circuit breaker; returns the event. A storm failure says nothing about the interface, and
    a failure inside a maintenance window never opens a circuit (the window's end is when we want to know)."""
    if not policy.breaker_enabled:
        s.breaker, s.open_since, s.next_probe_at = CLOSED, None, None
        return ""
    if storm_hit:
        return ""
    if failed and category in NO_BREAKER_CATEGORIES:
        # A broken document or config is not an unhealthy service: checking it costs nothing and skipping
        # it would hide the error (and then report it green). Such a failure never opens a circuit.
        if s.breaker == OPEN:
            s.breaker, s.open_since, s.next_probe_at = CLOSED, None, None
            return "closed"
        return ""
    if failed and s.breaker == OPEN:  # the half-open probe failed: a new cooldown, same open_since
        s.next_probe_at = now + policy.breaker_cooldown
        return "reopened"
    if failed and s.consecutive_failures >= policy.breaker_failures and not maintenance:
        s.breaker, s.open_since, s.next_probe_at = OPEN, now, now + policy.breaker_cooldown
        return "opened"
    if not failed and s.breaker == OPEN:
        s.breaker, s.open_since, s.next_probe_at = CLOSED, None, None
        return "closed"
    return ""


def detect_storm(results: Iterable[InterfaceResult], settings: StormSettings) -> tuple[int, int, dict[str, int]]:
    """(network/timeout failures, executed interfaces, failures per service) if this run is a storm, else zeros."""
    executed = [r for r in results if r.outcome != Outcome.SKIPPED]
    hits = [r for r in executed if r.outcome == Outcome.FAILED and r.category in STORM_CATEGORIES]
    by_service: dict[str, int] = {}
    for r in hits:
        by_service[r.service] = by_service.get(r.service, 0) + 1
    is_storm = (settings.enabled and len(hits) >= settings.min_interfaces and len(by_service) >= settings.min_services
                and len(hits) >= settings.fraction * len(executed))
    return (len(hits), len(executed), dict(sorted(by_service.items()))) if is_storm else (0, 0, {})


def evaluate(previous: Mapping[str, InterfaceState], results: Iterable[InterfaceResult], settings: PolicySettings,
             now: float, memory: RunMemory | None = None, *, selection_complete: bool = True,
             pools: Collection[str] | None = None, maintenance: Mapping[str, str] | None = None,
             shards: ShardReport | None = None, unchecked: Collection[str] | None = None) -> Verdict:
    """This run's results against the remembered states. `now`: the run's end (epoch seconds).

    Only interfaces with a result are stepped: an interface the run did not check (a -k/-m subset, a run
    stopped by -x/--maxfail or Ctrl-C, another pool sharing the state folder) keeps its state untouched.
    selection_complete: every interface of the run's pools was collected and reported (no subset, not
    stopped early), so remembered interfaces of those `pools` (None: any pool) absent from the run were removed
    from the pool: their state is dropped (REMOVED when they were announced down). States remembered before
    pools were recorded (pool "") count as belonging to every pool.
    An ongoing storm is re-announced every global remind_every.
    maintenance: {service: its active window's label} (maintenance.in_maintenance) for the services whose
    alerts are held this run; their failures do not count toward a storm either.
    shards: what `apimon merge` received (shard_step); None for a run that is not a merge.
    unchecked: the services of the interfaces the run left unchecked (unchecked_step; their results are not in
    `results`); empty: none; None: unknown (the memory is kept).
    """
    maintenance = dict(maintenance or {})
    results = list(results)
    memory = replace(memory) if memory is not None else RunMemory()
    failed, executed, by_service = detect_storm([r for r in results if r.service not in maintenance],
                                                settings.storm)
    storm: Storm | None = None
    storm_ended: float | None = None
    if failed:
        notify = memory.storm_since is None or _due(memory.storm_last_alert_at, settings.defaults.remind_every, now)
        memory.storm_since = memory.storm_since or now
        if notify:
            memory.storm_last_alert_at = now
        storm = Storm(failed, executed, by_service, memory.storm_since, notify)
    elif memory.storm_since is not None and any(r.outcome != Outcome.SKIPPED for r in results):
        storm_ended = memory.storm_since
        memory.storm_since = memory.storm_last_alert_at = None  # the shard memory is not the storm's
    gap = shard_step(memory, shards, now, settings.defaults.remind_every)
    lost = unchecked_step(memory, unchecked, now, settings.defaults.remind_every)

    states: dict[str, InterfaceState] = dict(previous)
    decisions: list[Decision] = []
    slow: list[Decision] = []
    seen: set[str] = set()
    for key, result in unique_keys(results):
        seen.add(key)
        if result.outcome == Outcome.SKIPPED and key not in previous:
            continue  # nothing to remember about an interface that never ran
        policy = settings.for_interface(result.service, result.severity)
        held = result.service in maintenance
        state, decision = step(previous.get(key), result, policy, now, storm=storm is not None, maintenance=held)
        slowness = slow_step(state, result, policy, now, maintenance=held)
        states[key] = state
        if decision is not None:
            decisions.append(decision)
        if slowness is not None:
            slow.append(slowness)
    removed: list[str] = []
    if selection_complete and results:  # an empty run (broken collection) must not forget everything
        for key in sorted(set(previous) - seen):
            if pools is not None and previous[key].pool and previous[key].pool not in pools:
                continue  # another pool's interface, sharing this state folder
            old = states.pop(key)
            removed.append(key)
            if old.alerted:
                decisions.append(Decision(key, old.service, Kind.REMOVED, since=old.down_since))
    decisions.sort(key=lambda d: (_ORDER.index(d.kind), d.service, d.key))
    slow.sort(key=lambda d: (_ORDER.index(d.kind), d.service, d.key))
    return Verdict(states, decisions, memory, storm, storm_ended, removed, slow, maintenance, gap, lost)
