"""End of run: turn the RunResult into a Notification, decide whether to send, deliver.

The bridge between report rendering and the provider-neutral notifiers. Runs on the xdist
controller (or the single process) only, once per run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from . import certs
from .categories import Category, Outcome
from .certs import CertStatus
from .config import Config
from .incidents import Ledger
from .maintenance import in_maintenance
from .messages import PHRASES, display_name, localize, say
from .notify import DeliveryResult, Notification, build_notifiers
from .policy import (
    DOWN,
    InterfaceState,
    Kind,
    RunMemory,
    ShardGap,
    ShardReport,
    Trigger,
    UncheckedGap,
    Verdict,
    evaluate,
    fmt_time,
    interface_key,
    message_mode,
    shard_step,
    skips,
    triggers,
)
from .redact import Redactor
from .report import (
    Extras,
    compute_stats,
    is_down,
    render_details,
    render_first_screen,
    render_markdown,
    status_label,
)
from .results import InterfaceResult, RunResult
from .runlock import LockTimeout, RunLock
from .state import DAY, StateStore

if TYPE_CHECKING:  # the providers and the outbox are imported only when a robot is configured (issue 15)
    from .notify.outbox import OutboxEntry
    from .notify.settings import NotifySettings

log = logging.getLogger("pytest_apimon")
wait_log = logging.getLogger("pytest_apimon.wait")  # what a run waits on; plugin.py echoes it for the watcher

SUMMARY_PROBLEMS = 15  # problems listed by name in the short summary of a big report


@dataclass
class AlertOutcome:
    sent: bool = False
    reason: str = ""  # why nothing was sent, or the dry-run text
    results: list[DeliveryResult] = field(default_factory=list)


TRIGGER_WORDS = {
    "new": ("新问题", "new problem"),
    "flapping": ("开始抖动", "started flapping"),
    "reminder": ("提醒：仍未恢复", "reminder: still down"),
    "reminder_circuit": ("提醒：熔断中，仍按故障计", "reminder: down behind an open circuit"),
    "recovered": ("已恢复", "recovered"),
    "removed": ("已从接口池移除", "removed from the pool"),
    "storm": ("网络风暴", "network storm"),
    "storm_reminder": ("网络风暴仍在持续（提醒）", "network storm still going on (reminder)"),
    "storm_ended": ("网络风暴已结束", "network storm over"),
    "slow": ("响应慢", "slow responses"),
    "slow_cleared": ("响应恢复正常", "response times back to normal"),
    "digest": ("仍未恢复的问题摘要", "digest of problems still open"),
    "always": ("例行报告（send_on: always）", "routine report (send_on: always)"),
    "cert": ("证书即将过期", "certificate expiring soon"),
    **{what: PHRASES[f"trigger.{what}"]
       for what in ("shards", "shards_reminder", "shards_ongoing", "shards_recovered", "incomplete",
                    "incomplete_reminder", "incomplete_ongoing", "incomplete_recovered")},
}
TRIGGER_KEYS_SHOWN = 5  # interfaces named per trigger; the rest are counted


def trigger_line(found: list[Trigger], lang: str, services: tuple[str, ...] | None = None, *,
                 short: bool = False) -> str:
    """'**触发原因**：新问题 svc/a、svc/b；开始抖动 svc/c' — why this message was sent, naming every interface
    (up to TRIGGER_KEYS_SHOWN per kind) with its label. `services`: restrict the names to a routed view.
    `short`: the first screen's one line, a count per kind instead of the names ('**触发原因**：新问题（2）；
    监控不完整'): the problem lines under it name them, and a phone screen has no room for a list."""
    zh = lang == "zh"
    parts = []
    for t in found:
        keys = [k for k in t.keys if services is None or _shard_trigger(t) or k.split("/", 1)[0] in services]
        if t.keys and not keys:
            continue
        label = TRIGGER_WORDS[t.what][0 if zh else 1]
        if keys and short:
            label += f"（{len(keys)}）" if zh else f" ({len(keys)})"
        elif keys:
            shown = ("、" if zh else ", ").join(keys[:TRIGGER_KEYS_SHOWN])
            more = len(keys) - TRIGGER_KEYS_SHOWN
            if more > 0:
                shown += f" 等 {len(keys)} 个" if zh else f" and {more} more"
            label += f" {shown}" if zh else f": {shown}"
        parts.append(label)
    if not parts:
        return ""
    return ("**触发原因**：" if zh else "**Why this message**: ") + ("；" if zh else "; ").join(parts)


def _shard_trigger(t: Trigger) -> bool:
    return t.what.startswith("shards")  # its keys are shards ("2/3"), not interfaces of a service


def shard_verdict(gap: ShardGap, lang: str, unchecked: int | None, failed: int) -> str:
    """'监控不完整：分片 2/3 未上报结果，5 个接口未检查；1 个失败' — the verdict of a merge with missing shards
    (`unchecked`: interfaces of this view not checked; None: unknown), or '分片已恢复' at their return."""
    if gap.report is None:
        return say("shards.back_failed", lang, n=failed) if failed else say("shards.back", lang)
    report = gap.report
    if report.received == 0:
        text = (say("shards.none_unknown", lang) if not report.total
                else say("shards.none_n", lang, total=report.total) if unchecked is None
                else say("shards.none", lang, total=report.total, n=unchecked))
    else:
        names = say("shards.sep", lang).join(report.names)
        text = (say("shards.missing_n", lang, shards=names) if unchecked is None
                else say("shards.missing", lang, shards=names, n=unchecked))
    return text + (say("shards.failed", lang, n=failed) if failed else "")


def title(run: RunResult, lang: str, config_title: str | None = None, found: list[Trigger] | None = None, *,
          shards: ShardGap | None = None, unchecked: int | None = None, elsewhere: int = 0) -> str:
    """'【prod】接口巡检：3 个失败'. Never "all passed" while something is down (circuit-open ones count), and
    a run with nothing down says what made it worth a message (flapping, recovery) instead. A merge with
    missing shards (or their return) says so first (shard_verdict), then a run that ended without checking
    some interfaces (InterfaceResult.unchecked: "monitoring incomplete"). `elsewhere`: interfaces announced down
    that this run did not select (a -k/-m subset): a passing subset is not "all passed"."""
    stats = compute_stats(run)
    name = config_title or ("接口巡检" if lang == "zh" else "API monitor")
    zh = lang == "zh"
    news = {t.what: len(t.keys) for t in found or []}
    if shards is not None and (shards.report is not None or "shards_recovered" in news):
        verdict = shard_verdict(shards, lang, unchecked, stats.failed)
    elif stats.unchecked:  # the run ended without checking part of this view (a lost xdist worker)
        verdict = say("incomplete.verdict", lang, n=stats.unchecked) + (
            say("shards.failed", lang, n=stats.failed) if stats.failed else "")
    elif "incomplete_recovered" in news:  # every interface is checked again (policy.unchecked_step)
        verdict = say("incomplete.back", lang) + (say("shards.failed", lang, n=stats.failed) if stats.failed else "")
    elif stats.failed:
        verdict = f"{stats.failed} 个失败" if zh else f"{stats.failed} failed"
    elif news.get("flapping"):
        verdict = f"{news['flapping']} 个接口抖动" if zh else f"{news['flapping']} flapping"
    elif "storm" in news or "storm_reminder" in news:
        verdict = "网络风暴" if zh else "network storm"
    elif news.get("recovered"):
        verdict = f"{news['recovered']} 个已恢复" if zh else f"{news['recovered']} recovered"
    elif news.get("slow"):  # passing, but slower than warn_ms for slow_threshold runs: not a failure
        verdict = f"{news['slow']} 个接口响应慢" if zh else f"{news['slow']} slow"
    elif news.get("slow_cleared"):
        verdict = f"{news['slow_cleared']} 个接口响应恢复正常" if zh else \
            f"{news['slow_cleared']} back to normal speed"
    elif news.get("digest"):  # e.g. RECOVERING: passing now, not yet back up after success_threshold
        verdict = f"{news['digest']} 个未恢复" if zh else f"{news['digest']} not yet recovered"
    elif elsewhere:
        verdict = say("subset.verdict", lang, n=stats.total, down=elsewhere)
    elif "cert" in news:  # a warning, not a failure: every check passed
        verdict = "全部通过，证书即将过期" if zh else "all passed, a certificate expires soon"
    else:
        verdict = "全部通过" if zh else "all passed"
    return f"【{run.env}】{name}：{verdict}" if zh else f"[{run.env}] {name}: {verdict}"


def apply_ownership(run: RunResult, config: Config) -> None:
    """Fill each result's owners and severity from its service (config.yaml) and the default, where the
    document did not set them (ownership.py: the most specific level wins)."""
    default = config.notify.default_severity
    for r in run.results:
        svc = config.service(r.service)
        if not r.owners:
            r.owners = list(svc.owner)
        if not r.severity:
            r.severity = svc.severity or default


def mark_known_down(run: RunResult, states: Mapping[str, InterfaceState], not_checked: Collection[str] = ()) -> None:
    """Mark every result the run did not check (InterfaceResult.unchecked, or a node id in `not_checked`: the
    interfaces of a missing shard, merge.py) whose stored alert state is down as `known_down`, with the category
    of its last failed check: not checked is not healthy, and what was down stays down as far as the monitor
    knows, so every output lists it as down now (report.is_down), as it does an interface behind an open
    circuit. Its alert state itself is not stepped (finish)."""
    for r in run.results:
        state = states.get(interface_key(r)) if r.unchecked or r.nodeid in not_checked else None
        if state is not None and state.status == DOWN:
            r.known_down = True
            r.category = Category.coerce(state.last_category) or r.category


def apply_maintenance(run: RunResult, config: Config, memory: Memory | None, lang: str) -> dict[str, str]:
    """Mark each result whose service is inside a maintenance window during the run (at its start or its end)
    with the window's label; returns {service: label} for policy.evaluate.

    The run's times are read on the memory's clock (Memory.clock, the wall clock unless a test moved it), so a
    test steps past a window as it steps past a breaker cooldown; `apimon merge` judges the shards' own times."""
    if not config.maintenance:
        return {}
    skew = Memory.clock() - time.time() if memory is not None else 0.0
    start, end = run.started_at + skew, run.finished_at + skew
    found = in_maintenance(config.maintenance, [r.service for r in run.results], start, end)
    labels = {svc: window.label(lang) for svc, window in found.items()}
    for r in run.results:
        r.maintenance = labels.get(r.service, "")
    return labels


def owners_to_mention(results: list[InterfaceResult], extras: Extras | None, settings: NotifySettings,
                      ) -> tuple[tuple[str, ...], bool]:
    """(owners to @-mention, whether the robots' own mention lists apply) for the problems of one message.

    Per severity (notify.severity.<P>.mention): 'always' = on NEW and on every reminder, 'new' = on NEW only,
    'never'. A problem that is neither new nor due a reminder mentions nobody, so an ongoing or flapping
    failure never pings people on every run. Without alert memory every problem counts as new.
    """
    owners: list[str] = []
    alerting = False
    memory = extras is not None and bool(extras.state)
    for r in results:
        if not is_down(r) or r.maintenance:  # a maintenance window holds every alert, mentions included
            continue
        new = not memory or (extras is not None and r.nodeid in extras.announced)
        remind = extras is not None and r.nodeid in extras.reminded
        rule = settings.mention_on.get(r.severity or settings.default_severity, "new")
        if rule == "never" or not (new or (remind and rule == "always")):
            continue
        alerting = True
        owners += r.owners
    return tuple(dict.fromkeys(owners)), alerting


_ANNOUNCED_KINDS = (Kind.NEW, Kind.FLAPPING, Kind.ONGOING, Kind.RECOVERING)  # an open incident


def build_notification(run: RunResult, config: Config, lang: str, redactor: Redactor,
                       extras: Extras | None = None, found: list[Trigger] | None = None, *,
                       verdict: Verdict | None = None, ledger: Ledger | None = None,
                       mode: str = "full", cert_due: Collection[CertStatus] = (),
                       shards: ShardGap | None = None, lost: UncheckedGap | None = None,
                       elsewhere: Mapping[str, str] | None = None) -> Notification:
    """The run's report as a Notification, with a `route` that gives each robot its own view.

    A robot's view holds only its services (all for a catch-all robot). It is sent when it has news for that
    robot: a decision worth a message (NEW, a reminder due, a flapping start, a storm) for one of its services,
    a RECOVERED of an incident the robot was told about, or an open incident it was never told about (then
    presented to it as NEW), or a certificate warning due for one of its services (`cert_due`, certs.due), or
    news of missing shards (`shards`, policy.shard_step) that left one of its services unchecked (every robot
    when that is unknown), or news of interfaces the run left unchecked (`lost`, policy.unchecked_step; without
    alert memory every run that left one of its services unchecked).
    elsewhere: {key: service} of the interfaces announced down that the run did not check (down_elsewhere).
    mode: 'full' | 'digest' (only ongoing problems: first screen only) | 'none'.
    The first message of every view is its first screen (report.render_first_screen); `markdown` (the
    attachment / legacy layout) is the full report with the trigger line, or the digest.
    """

    def make(view: RunResult, ex: Extras | None = extras, services: tuple[str, ...] | None = None,
             ) -> Notification:
        seen = _view_triggers(found or [], services, ex)  # every count in this robot's message is of its view
        unchecked = None if shards is None or shards.report is None else (
            shards.report.unchecked if services is None or not shards.report.by_service
            else sum(n for svc, n in shards.report.by_service.items() if svc in services))
        # The heading heads every continuation part.
        heading = redactor.text(title(view, lang, config.report.title, seen, shards=shards, unchecked=unchecked,
                                      elsewhere=sum(1 for svc in (elsewhere or {}).values()
                                                    if services is None or svc in services)))
        failed = [r for r in view.results if is_down(r)]
        owners, alerting = owners_to_mention(failed, ex, config.notify)
        mine = replace(ex or Extras(), trigger=trigger_line(seen, lang, services))
        if mode == "digest" and verdict is not None:
            full = render_digest(view, verdict, lang, heading, redactor, trigger=mine.trigger)
            expiring = [c.describe(view.finished_at) for c in (ex.cert_warnings if ex else [])
                        if {r.service for r in view.results} & set(c.services)]
            if expiring:  # a due warning is never dropped for being in a digest
                full += "\n" + redactor.text("\n".join(f"- {localize(line, lang)}" for line in expiring))
            summary = full
        else:
            full = render_markdown(view, lang, heading, redactor=redactor, extras=mine)
            # Sent with the full report as a file when the report would take too many messages.
            summary = render_markdown(view, lang, heading, redactor=redactor, extras=mine,
                                      max_problems=SUMMARY_PROBLEMS)
        return Notification(
            title=heading,
            markdown=full,
            summary=summary,
            run_started_at=view.started_at,
            lang=lang,
            services=tuple(sorted({r.service for r in failed})),
            failed=len(failed),
            first_screen=render_first_screen(view, lang, heading, redactor=redactor, extras=_scoped(ex, view),
                                             trigger=trigger_line(seen, lang, services, short=True)),
            details=("" if mode == "digest" else
                     render_details(_announced(view, ex), lang, heading, redactor=redactor, extras=ex)),
            owners=owners,
            mention=alerting,
            incident_keys=tuple(interface_key(r) for r in failed),
        )

    def certs_for(mine: Callable[[str], bool]) -> bool:
        return any(mine(svc) for c in cert_due for svc in c.services)

    def shards_for(mine: Callable[[str], bool], catch_all: bool, notify: bool = True) -> bool:
        """News of missing shards (`notify` False: also ongoing) for this robot: the part of the pool left
        unmonitored (or back) goes to its services' robots and the catch-all."""
        return shards is not None and (shards.notify or not notify) and (
            catch_all or not shards.services or any(mine(svc) for svc in shards.services))

    def scope(services: tuple[str, ...]) -> Notification | None:
        view = replace(run, results=[r for r in run.results if r.service in services])
        recovered = extras is not None and any(svc in services for svc, *_ in extras.recovered)
        slow = verdict is not None and any(d.notify and d.service in services for d in verdict.slow)
        news = recovered or slow or certs_for(services.__contains__) or shards_for(services.__contains__,
                                                                                   not services) \
            or _lost_for(run, lost, verdict, services.__contains__, not services)
        if not news and not any(is_down(r) and not r.maintenance for r in view.results):
            return None  # nothing about these services: this robot hears nothing
        return make(view, services=services)

    def route(target: str, services: tuple[str, ...]) -> Notification | None:
        mine = (lambda svc: svc in services) if services else (lambda svc: True)
        view = replace(run, results=[r for r in run.results if mine(r.service)]) if services else run
        failed = [r for r in view.results if is_down(r) and not r.maintenance]  # maintenance: held
        scoped = services or None
        if verdict is None or extras is None:  # no memory: every robot with problems (or send_on: always)
            if failed or certs_for(mine) or shards_for(mine, not services) \
                    or _lost_for(run, lost, verdict, mine, not services) \
                    or (mode == "full" and config.notify.send_on == "always" and not services):
                return make(view, services=scoped)
            return None
        keys = {r.nodeid: interface_key(r) for r in failed}
        untold = {n for n, k in keys.items() if n in extras.incident and ledger is not None
                  and not ledger.told(k, target)}
        told_recovered = [x for x in extras.recovered if mine(x[0]) and (
            ledger is None or not x[3] or x[3] in told_ids.get(target, set()))]
        storm = verdict.storm is not None and verdict.storm.notify and (
            not services or any(mine(s) for s in verdict.storm.by_service))
        storm = storm or (verdict.storm_ended is not None and not services)
        news = storm or bool(told_recovered) or certs_for(mine) or shards_for(mine, not services) \
            or _lost_for(run, lost, verdict, mine, not services) or any(
            d.notify and d.kind not in (Kind.RECOVERED, Kind.REMOVED) and mine(d.service)
            for d in (*verdict.decisions, *verdict.slow))
        if mode == "none":
            worth = bool(untold)
        elif mode == "digest":
            worth = bool(untold) or bool(failed) or shards_for(mine, not services, notify=False) \
                or _lost_for(run, lost, verdict, mine, not services, notify=False)
        else:
            worth = news or bool(untold) or (config.notify.send_on == "always" and not services) or (
                config.notify.send_on == "failure" and bool(failed))
        if not worth:
            return None
        ex = replace(extras, recovered=told_recovered, state=dict(extras.state), announced=set(extras.announced))
        for nodeid in untold:  # this robot never heard of it: it starts with a NEW
            ex.state[nodeid] = "new"
            ex.announced.add(nodeid)
            ex.reminded.discard(nodeid)
        return make(view, ex, scoped)

    told_ids = _told_ids(ledger)
    return replace(make(run), scope=scope, route=route)


def _told_ids(ledger: Ledger | None) -> dict[str, set[str]]:
    """{robot: ids of the incidents closed this run that it was told about} (for RECOVERED routing)."""
    out: dict[str, set[str]] = {}
    for inc in ledger.closing if ledger is not None else ():
        for target in inc.told:
            out.setdefault(target, set()).add(inc.id)
    return out


def _lost_for(run: RunResult, lost: UncheckedGap | None, verdict: Verdict | None, mine: Callable[[str], bool],
              catch_all: bool, notify: bool = True) -> bool:
    """News of interfaces left unchecked (`lost`, policy.unchecked_step; `notify` False: also ongoing) for a
    robot, as missing shards are: its services' robots and the catch-all; their return goes to the robots of
    every service unchecked meanwhile. Without alert memory (`verdict` None), every run that left one of its
    services unchecked."""
    if lost is None:
        return verdict is None and _incomplete_for(run, mine, catch_all)
    return (lost.notify or (not notify and bool(lost.names))) and (
        catch_all or any(mine(svc) for svc in lost.services))


def _incomplete_for(run: RunResult, mine: Callable[[str], bool], catch_all: bool) -> bool:
    """Interfaces the run did not check (InterfaceResult.unchecked): news for their services' robots and the
    catch-all, as missing shards are."""
    return any(r.unchecked and (catch_all or mine(r.service)) for r in run.results)


def _view_triggers(found: list[Trigger], services: tuple[str, ...] | None, extras: Extras | None,
                   ) -> list[Trigger]:
    """The triggers as one robot sees them: keys of its services only (`services` None: all), and RECOVERED
    only for the recoveries it is told (`extras.recovered`, already cut to the incidents it heard of). A trigger
    left with no key is dropped; one that never had keys (a storm, a routine report) is kept."""
    told = {f"{svc}/{name}" for svc, name, *_ in extras.recovered} if extras is not None else None
    out = []
    for t in found:
        keys = t.keys if _shard_trigger(t) else tuple(
            k for k in t.keys if (services is None or k.split("/", 1)[0] in services)
            and (t.what != "recovered" or told is None or k in told))
        if t.keys and not keys:
            continue
        out.append(replace(t, keys=keys))
    return out


def _announced(view: RunResult, extras: Extras | None) -> RunResult:
    """The problems whose details are worth sending: those announced for the first time in this run (a
    reminder or a recovery repeats nothing). Without alert memory every problem is new."""
    if extras is None or not extras.state:
        return view
    return replace(view, results=[r for r in view.results if r.nodeid in extras.announced])


def _scoped(extras: Extras | None, view: RunResult) -> Extras | None:
    """extras restricted to the services of view (a routed robot hears only about its own services)."""
    if extras is None:
        return None
    services = {r.service for r in view.results}
    return replace(extras, recovered=[x for x in extras.recovered if x[0] in services],
                   service_lead={s: line for s, line in extras.service_lead.items() if s in services})


@dataclass
class Memory:
    """The controller's hold on the state folder for one run: lock, store, remembered states, breaker skips."""

    store: StateStore
    lock: RunLock
    states: dict[str, InterfaceState]
    memory: RunMemory
    skips: dict[str, str]  # interface key (service/name) -> skip reason (open circuit)
    verdict: Verdict | None = None
    # The clock (epoch seconds) the circuit breaker's cooldown and maintenance windows are judged by when `open`
    # gets no `now`; tests replace it to step past a cooldown or a window without sleeping through it.
    clock: ClassVar[Callable[[], float]] = time.time

    @classmethod
    def open(cls, config: Config, *, breaker: bool = True, now: float | None = None) -> Memory:
        """Take the run lock (raises runlock.LockTimeout) and load what earlier runs left.

        Waiting for another run's lock is logged on `pytest_apimon.wait` (the watcher shows it)."""
        try:
            lock = RunLock(config.state_path, timeout=0).acquire()
        except LockTimeout as busy:
            pid, started = busy.holder.get("pid", "?"), busy.holder.get("started_at")
            since = fmt_time(started, time.time(), seconds=True) if isinstance(started, int | float) else "?"
            wait_log.warning("waiting up to %gs (state.lock_timeout) for another run's lock (pid %s, started %s)",
                             config.state.lock_timeout, pid, since)
            lock = RunLock(config.state_path, timeout=config.state.lock_timeout).acquire()
            wait_log.warning("got the run lock after %.1fs", lock.waited)
        try:
            store = StateStore.in_dir(config.state_path, **config.state.store_options())
            states, memory = store.load_states(config.env), store.load_memory(config.env)
        except BaseException:
            lock.release()
            raise
        gates = skips(states, config.policy, cls.clock() if now is None else now) if breaker else {}
        return cls(store, lock, states, memory, gates)

    def close(self) -> None:
        self.store.close()
        self.lock.release()


def build_extras(run: RunResult, verdict: Verdict | None, store: StateStore | None, lang: str,
                 status_page_url: str | None = None, ledger: Ledger | None = None) -> Extras:
    """Report annotations: NEW/ONGOING/RECOVERED per problem, storm diagnosis, login root causes, circuits."""
    zh = lang == "zh"
    extras = Extras()
    extras.link = status_page_url
    now = run.finished_at
    # One root cause per failed login (token issue): a lead line, and its interfaces counted, not listed.
    # A login that could not reach the service is reported as the service being down (network/timeout),
    # not as an auth problem: the reason itself says "service unreachable: …" (auth.LoginFailed).
    # The lead line is also the counted group's label (report._collapsed_lines), so it is shown once, with its
    # count, wherever the group is shown.
    logins: dict[str, tuple[str, str]] = {}
    login_of: dict[str, str] = {}  # nodeid -> the service whose login it needed
    for r in run.results:
        if r.outcome == Outcome.FAILED and r.sub == "login":
            svc = r.login_service or r.service  # an interface may borrow another service's login
            logins.setdefault(svc, (r.category or Category.AUTH.value, r.reason))
            login_of[r.nodeid] = svc
    for service, (category, reason) in sorted(logins.items()):
        said = localize(reason, lang)
        if category == Category.AUTH.value:
            extras.service_lead[service] = (f"登录失败（{service}）：{said}" if zh
                                            else f"Login failed ({service}): {said}")
        else:
            extras.service_lead[service] = f"{service}：{said}" if zh else f"{service}: {said}"
    for nodeid, svc in login_of.items():
        extras.collapsed[nodeid] = extras.service_lead[svc]
    if verdict is None:
        return extras
    if verdict.storm is not None:
        extras.lead.insert(0, verdict.storm.describe(lang))
        per = ("，" if zh else ", ").join(f"{svc} {n}" for svc, n in verdict.storm.by_service.items())
        for r in run.results:
            if r.outcome == Outcome.FAILED and r.category in ("network", "timeout"):
                extras.collapsed[r.nodeid] = (f"网络风暴：{per}" if zh else f"[{r.category}] storm: {per}")
    elif verdict.storm_ended is not None:
        since = fmt_time(verdict.storm_ended, now)
        extras.lead.append(f"网络风暴已结束（自 {since} 起）" if zh else f"The network storm (since {since}) is over")
    by_key = {interface_key(r): r for r in run.results}
    decisions = {d.key: d for d in verdict.decisions}  # one lookup per problem, not a scan
    keys = [interface_key(r) for r in run.results if is_down(r)]
    avail = store.availability(run.env, since=now - DAY, until=now + 1, keys=keys) if store and keys else {}
    trends = store.latency_trend(run.env, now=now + 1, keys=keys) if store and keys else {}
    for key in keys:
        r = by_key[key]
        decision = decisions.get(key)
        # An interface the run did not check (InterfaceResult.unchecked) has no decision: its label may start
        # with the history parts, so the parts are joined by status_label, never prefixed with a separator.
        parts = [decision.describe(lang, now) if decision else ""]
        if decision is not None:
            extras.state[r.nodeid] = "circuit" if decision.breaker == "open" else decision.kind.value
            if decision.since is not None:
                extras.since[r.nodeid] = decision.since
            if decision.remind:
                extras.reminded.add(r.nodeid)
            elif decision.notify:  # NEW, or flapping announced for the first time
                extras.announced.add(r.nodeid)
            if ledger is not None and decision.kind in _ANNOUNCED_KINDS:
                extras.incident[r.nodeid] = ledger.opened(key, now).id
        a = avail.get(key)
        if a is not None and a.ratio is not None and a.checks >= 2:  # one run says nothing about a trend
            parts.append(f"24h 可用率 {a.ratio * 100:.1f}%" if zh else f"24h availability {a.ratio * 100:.1f}%")
        t = trends.get(key)
        if t is not None and t.current_p95 is not None and t.change is not None:
            parts.append(f"P95 {t.current_p95:.0f} ms ({t.change * 100:+.0f}%)")
        label = status_label(parts, lang)
        if label:
            extras.notes[r.nodeid] = label
    recovered = verdict.of_kind(Kind.RECOVERED)
    for d in sorted(recovered, key=lambda d: d.key):
        service, _, name = d.key.partition("/")
        closing = ledger.closing_of(d.key) if ledger is not None else None
        extras.recovered.append((service, name, now - d.since if d.since is not None else None,
                                 closing.id if closing is not None else ""))
    for d in verdict.slow:
        line = f"{d.key} — {d.describe(lang, now)}"
        got = d.result
        if d.kind is Kind.SLOW and got is not None and got.elapsed_ms is not None and got.warn_ms is not None:
            line += (f"（本次 {got.elapsed_ms:.0f} ms，warn_ms {got.warn_ms:g} ms）" if zh
                     else f" (this run {got.elapsed_ms:.0f} ms, warn_ms {got.warn_ms:g} ms)")
        extras.service_notes.append((d.service, line))
    if recovered:
        extras.sections.append(("已恢复" if zh else "Recovered", [
            f"{d.key} — {d.describe(lang, now)}" for d in sorted(recovered, key=lambda d: d.key)]))
    circuits = verdict.open_circuits
    if circuits:
        lines = []
        for s in circuits:
            since, nxt = fmt_time(s.open_since, now, seconds=True), fmt_time(s.next_probe_at, now, seconds=True)
            lines.append(f"{display_name(s.key, lang)} — 熔断自 {since} 起，下次探测 {nxt}" if zh
                         else f"{s.key} — circuit open since {since}, next probe at {nxt}")
        extras.sections.append(("熔断中的接口" if zh else "Open circuits", lines))
    return extras


DIGEST_BYTES = 3800  # one WeCom message (4096) with room for a mention line and notes


def render_digest(run: RunResult, verdict: Verdict, lang: str, heading: str, redactor: Redactor,
                  trigger: str = "", budget: int = DIGEST_BYTES) -> str:
    """Only ongoing problems inside their reminder window: the overview and one line each, not a full alert.

    Always one message (at most `budget` UTF-8 bytes): a storm's interfaces are one line per service (the
    storm collapse), flapping interfaces one line each after the others, then as many single lines as fit,
    and the rest counted per service. It promises no full report: none is sent with it.
    Returns Markdown text ('\n' lines) masked with `redactor`, cut to `budget` bytes after masking
    (truncate_bytes). No I/O; raises no error of its own.
    """
    zh = lang == "zh"
    stats = compute_stats(run)
    now = run.finished_at
    sep = "：" if zh else ": "
    overview = (f"总数 {stats.total} · 通过 {stats.passed} · 失败 {stats.failed} · 跳过 {stats.skipped}" if zh else
                f"total {stats.total} · passed {stats.passed} · failed {stats.failed} · skipped {stats.skipped}")
    if stats.circuit_open:
        overview += f"（其中熔断中 {stats.circuit_open}）" if zh else f" ({stats.circuit_open} behind open circuits)"
    head = [f"# {heading}", *([trigger] if trigger else []), "", f"> {overview}", ""]
    head.append("**仍未恢复（已通知过）**" if zh else "**Still failing (already announced)**")
    mine = {r.service for r in run.results}  # a routed robot's view: its services' problems only, counted so
    ongoing = sorted((d for d in verdict.ongoing if d.service in mine),
                     key=lambda d: (d.kind is Kind.FLAPPING, d.service, d.key))
    storm = [d for d in ongoing if d.kind is Kind.STORM]
    rest = [d for d in ongoing if d.kind is not Kind.STORM]
    lines: list[str] = []
    if storm:
        per: dict[str, int] = {}
        for d in storm:
            per[d.service] = per.get(d.service, 0) + 1
        counts = ", ".join(f"{svc} {n}" for svc, n in sorted(per.items()))
        lines.append(f"- {'网络风暴' if zh else 'network storm'}{sep}{len(storm)} "
                     f"{'个接口' if zh else 'interfaces'} ({counts})")
    left: dict[str, int] = {}
    text = "\n".join(head + lines)
    for n, d in enumerate(rest):
        line = f"- {d.key} — {d.describe(lang, now)}"
        remaining = len(rest) - n - 1
        tail_room = 200 if remaining else 0  # keep room for the "and N more" line
        if not left and len((text + "\n" + line).encode("utf-8")) + tail_room <= budget:
            lines.append(line)
            text += "\n" + line
            continue
        left[d.service] = left.get(d.service, 0) + 1
    if left:
        total = sum(left.values())
        per_service = ", ".join(f"{svc} {k}" for svc, k in sorted(left.items(), key=lambda p: (-p[1], p[0])))
        lines.append(f"- …以及另外 {total} 个（{per_service}）" if zh else f"- …and {total} more ({per_service})")
    out = redactor.text("\n".join(head + lines))
    if len(out.encode("utf-8")) > budget:  # masking can lengthen a line; never exceed one message
        from .notify.split import truncate_bytes

        out = truncate_bytes(out, budget)
    return out


def finish(run: RunResult, config: Config, lang: str, redactor: Redactor, memory: Memory | None, *,
           dry_run: bool = False, selection_complete: bool = True,
           pools: Collection[str] | None = None, shards: ShardReport | None = None) -> tuple[AlertOutcome, Extras]:
    """End of run on the controller: remember it, decide what is worth saying, say it (or show it).

    Write-ahead delivery (issue 14): the rendered report is stored in the outbox (marked as awaiting this
    run's record) *before* the run and its alert states are recorded, the record is committed, the entry is
    confirmed, and only then is anything sent; the outbox entry is removed once WeCom accepted its last
    message. Killed before the record: the next run discards the entry and announces again from the
    unchanged states. Killed after it: the next run delivers the entry (the rest of it) first. Either way
    exactly one announcement reaches the group (save a kill between WeCom's acceptance of one message and
    the outbox rewrite that follows it, a window of one file write).

    `shards` (apimon merge): which shards sent no results (policy.shard_step decides what is news; without
    alert memory every incomplete merge is announced).

    Returns the outcome and the report annotations (in the report language `lang`) for the report files.
    """
    settings = config.notify
    verdict = None
    ledger: Ledger | None = None
    store = memory.store if memory is not None else None
    apply_ownership(run, config)
    held = apply_maintenance(run, config, memory, lang)
    if memory is not None:
        mark_known_down(run, memory.states)
    # Interfaces the run did not check (a lost xdist worker) are neither up nor down: the alert policy and the
    # history never see them, so no alert is raised or resolved and nothing is forgotten (the run is also
    # not selection_complete). Their identity was rebuilt from the node id alone (collector.py).
    unchecked = [r for r in run.results if r.unchecked]
    checked = replace(run, results=[r for r in run.results if not r.unchecked]) if unchecked else run
    if memory is not None:
        policy = replace(config.policy, remind_by_severity=settings.remind_every)
        # Which services the run left unchecked: none when it checked its whole selection, unknown (the memory
        # of an earlier incomplete run is kept) when it was cut short or a subset.
        lost_services = [r.service for r in unchecked] if unchecked else [] if selection_complete else None
        verdict = evaluate(memory.states, checked.results, policy, run.finished_at, memory.memory,
                           selection_complete=selection_complete, pools=pools, maintenance=held, shards=shards,
                           unchecked=lost_services)
        memory.verdict = verdict
        ledger = Ledger(config.env, memory.store.load_incidents(config.env))
        # An incident ends when its interface is no longer announced down (recovered, removed, or resolved
        # without a message); its robots are remembered for this run's RECOVERED.
        ledger.close_all(k for k in list(ledger.open) if not (k in verdict.states and verdict.states[k].alerted))
    gap = verdict.shards if verdict is not None else shard_step(RunMemory(), shards, run.finished_at, 0)
    lost = verdict.unchecked if verdict is not None else None
    extras = build_extras(run, verdict, store, lang, config.report.status_page_url, ledger)
    _shard_lead(extras, gap, lang, run.finished_at)
    _incomplete_lead(extras, unchecked, lang, lost, run.finished_at)
    elsewhere = down_elsewhere(run, verdict, pools)
    _elsewhere_notes(extras, elsewhere, lang)
    cert_due = _certificates(run, config, extras, store, dry_run=dry_run)
    outcome = AlertOutcome()
    notifiers = build_notifiers(settings, config.state_path / "outbox")

    def record() -> None:
        if memory is not None and verdict is not None and not dry_run:
            memory.store.record_run(checked, verdict.states, verdict.memory, selection_complete=selection_complete,
                                    removed=verdict.removed, pools=pools or ())

    def save_ledger() -> None:
        if ledger is not None and store is not None:
            store.save_incidents(config.env, ledger.open.values())

    def committed(entry: OutboxEntry) -> bool:
        return store is None or store.has_run(entry.awaiting_run, entry.run_started_at)

    if not notifiers and not dry_run:
        record()
        save_ledger()
        outcome.reason = say("reason.no_notifier", lang)
        return outcome, extras
    if verdict is not None:
        mode = message_mode(settings.send_on, verdict)
    else:
        failed = any(is_down(r) and not r.maintenance for r in run.results)
        # Without alert memory nothing can say "already announced": a monitor with blind spots is news each run.
        mode = "full" if settings.send_on == "always" or failed or gap is not None or unchecked else "none"
    targets = [t for notifier in notifiers for t in notifier.targets()]  # type: ignore[attr-defined]
    if mode == "none" and ledger is not None and _untold(run, extras, ledger, targets):
        mode = "new-robot"  # nothing new overall, but a robot has an open incident it was never told about
    mode = "full" if mode == "none" and cert_due else mode  # only a certificate warning is due: the report with it
    if mode == "none":
        record()
        if not dry_run:
            save_ledger()
        why = say("reason.nothing_new" if verdict is not None else "reason.no_failure", lang)
        if held:
            why += say("reason.maintenance_held", lang, services=", ".join(sorted(held)))
        if gap is not None and gap.report is not None:
            why += say("shards.held", lang, shards=say("shards.sep", lang).join(gap.names))
        if unchecked:
            why += say("incomplete.held", lang, n=len(unchecked))
        outcome.reason = say("reason.none_dry" if dry_run else "reason.none", lang, send_on=settings.send_on, why=why)
        if any(is_down(r) and r.maintenance for r in run.results):
            # Failures inside a window were held, not absent: "nothing new" would tell the reader all is well.
            outcome.reason = say("reason.held_dry" if dry_run else "reason.held", lang,
                                 services=", ".join(sorted({r.service for r in run.results if r.maintenance})))
        if not dry_run:
            outcome.results = [notifier.flush(committed=committed) for notifier in notifiers]  # earlier backlog
            _log_errors(outcome, redactor)
        return outcome, extras
    # Only now is a message worth rendering; the robots may speak another language than the report.
    notify_lang = settings.language or lang
    notify_extras = extras
    if notify_lang != lang:
        notify_extras = build_extras(run, verdict, store, notify_lang, config.report.status_page_url, ledger)
        _shard_lead(notify_extras, gap, notify_lang, run.finished_at)
        _incomplete_lead(notify_extras, unchecked, notify_lang, lost, run.finished_at)
        _elsewhere_notes(notify_extras, elsewhere, notify_lang)
    # A robot hears of a certificate at most once a day (certs.due); the report files list every warning.
    notify_extras = replace(notify_extras, certificates=extras.certificates, cert_warnings=cert_due)
    found = _with_certificates(triggers(verdict, "digest" if mode == "new-robot" else mode, settings.send_on),
                               cert_due, settings.send_on)
    if verdict is None and gap is not None:
        found.insert(0, Trigger(gap.what, gap.names))
    if verdict is None and unchecked:
        found = [Trigger("incomplete"), *(t for t in found if t.what != "always")]
    notification = build_notification(run, config, notify_lang, redactor, notify_extras, found, verdict=verdict,
                                      ledger=ledger, mode="none" if mode == "new-robot" else mode,
                                      cert_due=cert_due, shards=gap, lost=lost, elsewhere=elsewhere)
    if dry_run:
        if not notifiers:
            outcome.reason = say("reason.no_robot_dry", lang) + "\n\n" + notification.markdown
        else:
            from .notify.wecom import format_dry_run

            outcome.reason = "\n\n".join(format_dry_run(n.dry_run(notification), lang) for n in notifiers)
        return outcome, extras
    awaiting = run.env if memory is not None else ""
    staged = [notifier.stage(notification, awaiting_run=awaiting) for notifier in notifiers]
    if ledger is not None:
        # Staged in the outbox = told (write-ahead: it is delivered, now or by the next run). Saved before the
        # run is recorded so a kill after the record cannot make a robot look "never told" and get a 2nd NEW.
        for target, services in targets:
            view = notification.for_robot(target, services)
            for key in view.incident_keys if view is not None else ():
                ledger.tell(key, target)
        save_ledger()
    record()
    for notifier, entries in zip(notifiers, staged, strict=True):
        notifier.confirm(entries)
    _warned(store, run, cert_due)
    outcome.results = [notifier.flush(staged=entries, committed=committed)
                       for notifier, entries in zip(notifiers, staged, strict=True)]
    outcome.sent = True
    _log_errors(outcome, redactor)
    return outcome, extras


def _shard_lead(extras: Extras, gap: ShardGap | None, lang: str, now: float) -> None:
    """The lead lines of a merge with missing shards (which, since when, the unchecked interfaces per service,
    unusable files), or of their return, first in the report and on the first screen."""
    if gap is None:
        return
    since = fmt_time(gap.since, now)
    if gap.report is None:
        extras.lead.insert(0, say("shards.lead_back", lang, since=since))
        return
    sep = say("shards.sep", lang)
    counts = sep.join(f"{svc} {n}" for svc, n in sorted(gap.report.by_service.items()))
    lines = [] if gap.names == ("?",) else [say(
        "shards.lead", lang, shards=sep.join(gap.names), since=since,
        services=say("shards.lead_services", lang, counts=counts) if counts else "")
        + (say("shards.reminder", lang) if gap.what == "shards_reminder" else "")]
    extras.lead[0:0] = lines + [localize(problem, lang) for problem in gap.report.problems]


def _incomplete_lead(extras: Extras, unchecked: list[InterfaceResult], lang: str,
                     lost: UncheckedGap | None = None, now: float = 0.0) -> None:
    """The lead line of a run that ended without checking some interfaces: how many, why, that their alert
    state is kept, since when and whether it is a reminder (`lost`, policy.unchecked_step); or the line of
    their return (first in the report and on the first screen, after a merge's shard lines)."""
    if lost is not None and lost.what == "incomplete_recovered":
        extras.lead.append(say("incomplete.lead_back", lang, since=fmt_time(lost.since, now)))
    if not unchecked:
        return
    prefixes = ("未检查：", "重试未能执行：", "not checked: ", "its retry never ran: ")  # the reasons' own lead-ins
    causes = []
    for r in unchecked:
        text = localize(r.reason, lang)
        for prefix in prefixes:
            text = text.removeprefix(prefix)
        causes.append(text)
    why = say("shards.sep", lang).join(dict.fromkeys(causes))
    line = say("incomplete.lead", lang, n=len(unchecked), why=why)
    if lost is not None and lost.since < now:  # an earlier run was incomplete too: since when
        line += say("incomplete.since", lang, since=fmt_time(lost.since, now))
    if lost is not None and lost.what == "incomplete_reminder":
        line += say("shards.reminder", lang)
    extras.lead.append(line)


def down_elsewhere(run: RunResult, verdict: Verdict | None, pools: Collection[str] | None) -> dict[str, str]:
    """{key: service} of the interfaces announced down (an open alert) that this run has no result for (a
    -k/-m/--lf subset), in the run's pools. Not checked is not healthy: the title never says "all passed"."""
    if verdict is None:
        return {}
    seen = {interface_key(r) for r in run.results}
    out = {}
    for key, state in sorted(verdict.states.items()):
        in_pools = pools is None or not state.pool or state.pool in pools
        if in_pools and state.alerted and state.status == DOWN and key not in seen:
            out[key] = state.service
    return out


def _elsewhere_notes(extras: Extras, elsewhere: Mapping[str, str], lang: str) -> None:
    """One line per service of `elsewhere` (down_elsewhere), for that service's robots: at most 5 names."""
    by_service: dict[str, list[str]] = {}
    for key, service in elsewhere.items():
        by_service.setdefault(service, []).append(key)
    for service, keys in by_service.items():
        names = ("、" if lang == "zh" else ", ").join(keys[:5])
        if len(keys) > 5:
            names += f" 等 {len(keys)} 个" if lang == "zh" else f" and {len(keys) - 5} more"
        extras.service_notes.append((service, say("subset.note", lang, names=names)))


def certificate_statuses(run: RunResult, config: Config) -> list[CertStatus]:
    """Every HTTPS origin the run reached, with its certificate's days left and thresholds (certs.py)."""
    readings = [(r.service, r.certificates) for r in run.results if r.certificates]
    thresholds = {svc: config.cert_days(svc) for svc, _ in readings}
    return certs.summarize(readings, thresholds, run.finished_at)


def _certificates(run: RunResult, config: Config, extras: Extras, store: StateStore | None, *,
                  dry_run: bool) -> list[CertStatus]:
    """Fill the report's certificates and warnings, store what was seen, and return the warnings a robot is
    due (at most once a day per origin; without a state store, every run's). Never raises: a state problem
    costs at most a repeated warning."""
    statuses = certificate_statuses(run, config)
    extras.certificates = statuses
    extras.cert_warnings = [c for c in statuses if c.days_left < c.warn_days]
    if store is None:
        return list(extras.cert_warnings)
    try:
        known = {row.origin: (row.not_after, row.warned_at) for row in store.certificates(run.env)}
        due = certs.due(extras.cert_warnings, known, run.finished_at)
        if not dry_run:
            store.record_certificates(run.env, [(c.origin, c.services, c.not_after) for c in statuses],
                                      run.finished_at)
    except Exception:
        log.exception("pytest-apimon: reading or storing the certificates failed")
        return list(extras.cert_warnings)
    return due


def _with_certificates(found: list[Trigger], cert_due: Collection[CertStatus], send_on: str) -> list[Trigger]:
    """The triggers plus "cert" when a certificate warning is due (then not called a routine report)."""
    if not cert_due:
        return found
    routine = [t.what for t in found] == ["always"] and send_on != "always"
    return [*([] if routine else found), Trigger("cert")]


def _warned(store: StateStore | None, run: RunResult, cert_due: Collection[CertStatus]) -> None:
    """Remember that the due certificate warnings were staged for delivery (the next is due a day later)."""
    if not cert_due or store is None:
        return
    try:
        store.mark_certificates_warned(run.env, [c.origin for c in cert_due], run.finished_at)
    except Exception:  # the warning repeats next run at worst
        log.exception("pytest-apimon: remembering the certificate warnings failed")


def _untold(run: RunResult, extras: Extras, ledger: Ledger, targets: list[tuple[str, tuple[str, ...]]]) -> bool:
    """Some robot has an open incident of one of its services that it was never told about."""
    for r in run.results:
        if not is_down(r) or r.nodeid not in extras.incident:
            continue
        for target, services in targets:
            if (not services or r.service in services) and not ledger.told(interface_key(r), target):
                return True
    return False


def _log_errors(outcome: AlertOutcome, redactor: Redactor) -> None:
    for result in outcome.results:
        for error in result.errors:
            log.error("%s: %s", result.notifier, redactor.text(error))
