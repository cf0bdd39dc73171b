"""End of run: turn the RunResult into a Notification, decide whether to send, deliver.

The bridge between report rendering and the provider-neutral notifiers. Runs on the xdist
controller (or the single process) only, once per run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import ClassVar

from .categories import Category, Outcome
from .config import Config
from .notify import DeliveryResult, Notification, build_notifiers
from .notify.outbox import OutboxEntry
from .notify.split import truncate_bytes
from .notify.wecom import format_dry_run
from .policy import (
    InterfaceState,
    Kind,
    RunMemory,
    Trigger,
    Verdict,
    evaluate,
    fmt_time,
    interface_key,
    message_mode,
    skips,
    triggers,
)
from .redact import Redactor
from .report import Extras, compute_stats, is_down, render_markdown
from .results import RunResult
from .runlock import LockTimeout, RunLock
from .state import DAY, StateStore

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
    "digest": ("仍未恢复的问题摘要", "digest of problems still open"),
    "always": ("例行报告（send_on: always）", "routine report (send_on: always)"),
}
TRIGGER_KEYS_SHOWN = 5  # interfaces named per trigger; the rest are counted


def trigger_line(found: list[Trigger], lang: str, services: tuple[str, ...] | None = None) -> str:
    """'**触发原因**：新问题 svc/a、svc/b；开始抖动 svc/c' — why this message was sent, naming every interface
    (up to TRIGGER_KEYS_SHOWN per kind) with its label. `services`: restrict the names to a routed view."""
    zh = lang == "zh"
    parts = []
    for t in found:
        keys = [k for k in t.keys if services is None or k.split("/", 1)[0] in services]
        if t.keys and not keys:
            continue
        label = TRIGGER_WORDS[t.what][0 if zh else 1]
        if keys:
            shown = ("、" if zh else ", ").join(keys[:TRIGGER_KEYS_SHOWN])
            more = len(keys) - TRIGGER_KEYS_SHOWN
            if more > 0:
                shown += f" 等 {len(keys)} 个" if zh else f" and {more} more"
            label += f" {shown}" if zh else f": {shown}"
        parts.append(label)
    if not parts:
        return ""
    return ("**触发原因**：" if zh else "**Why this message**: ") + ("；" if zh else "; ").join(parts)


def title(run: RunResult, lang: str, config_title: str | None = None, found: list[Trigger] | None = None) -> str:
    """'【prod】接口巡检：3 个失败'. Never "all passed" while something is down (circuit-open ones count), and
    a run with nothing down says what made it worth a message (flapping, recovery) instead."""
    stats = compute_stats(run)
    name = config_title or ("接口巡检" if lang == "zh" else "API monitor")
    zh = lang == "zh"
    news = {t.what: len(t.keys) for t in found or []}
    if stats.failed:
        verdict = f"{stats.failed} 个失败" if zh else f"{stats.failed} failed"
    elif news.get("flapping"):
        verdict = f"{news['flapping']} 个接口抖动" if zh else f"{news['flapping']} flapping"
    elif "storm" in news or "storm_reminder" in news:
        verdict = "网络风暴" if zh else "network storm"
    elif news.get("recovered"):
        verdict = f"{news['recovered']} 个已恢复" if zh else f"{news['recovered']} recovered"
    elif news.get("digest"):  # e.g. RECOVERING: passing now, not yet back up after success_threshold
        verdict = f"{news['digest']} 个未恢复" if zh else f"{news['digest']} not yet recovered"
    else:
        verdict = "全部通过" if zh else "all passed"
    return f"【{run.env}】{name}：{verdict}" if zh else f"[{run.env}] {name}: {verdict}"


def build_notification(run: RunResult, config: Config, lang: str, redactor: Redactor,
                       extras: Extras | None = None, found: list[Trigger] | None = None) -> Notification:
    def make(view: RunResult, services: tuple[str, ...] | None = None) -> Notification:
        heading = redactor.text(title(view, lang, config.report.title, found))  # heads every continuation part
        failed = [r for r in view.results if is_down(r)]
        mine = replace(extras or Extras(), trigger=trigger_line(found or [], lang, services))
        return Notification(
            title=heading,
            markdown=render_markdown(view, lang, heading, redactor=redactor, extras=mine),
            # Sent with the full report as a file when the report would take too many messages.
            summary=render_markdown(view, lang, heading, redactor=redactor, extras=mine,
                                    max_problems=SUMMARY_PROBLEMS),
            run_started_at=view.started_at,
            lang=lang,
            services=tuple(sorted({r.service for r in failed})),
            failed=len(failed),
        )

    def scope(services: tuple[str, ...]) -> Notification | None:
        view = replace(run, results=[r for r in run.results if r.service in services])
        if not any(is_down(r) for r in view.results):
            return None
        return make(view, services)

    return replace(make(run), scope=scope)


@dataclass
class Memory:
    """The controller's hold on the state folder for one run: lock, store, remembered states, breaker skips."""

    store: StateStore
    lock: RunLock
    states: dict[str, InterfaceState]
    memory: RunMemory
    skips: dict[str, str]  # interface key (service/name) -> skip reason (open circuit)
    verdict: Verdict | None = None
    # The clock (epoch seconds) the circuit breaker's cooldown is judged by when `open` gets no `now`;
    # tests replace it to step past a cooldown without sleeping through it.
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
                 status_page_url: str | None = None) -> Extras:
    """Report annotations: NEW/ONGOING/RECOVERED per problem, storm diagnosis, login root causes, circuits."""
    zh = lang == "zh"
    extras = Extras()
    if status_page_url:
        extras.lead.append(f"[{'状态页' if zh else 'Status page'}]({status_page_url})")
    now = run.finished_at
    # One root cause per failed login (token issue): a lead line, and its interfaces counted, not listed.
    logins: dict[str, str] = {}
    for r in run.results:
        if r.outcome == Outcome.FAILED and r.category == Category.AUTH and r.sub == "login":
            logins.setdefault(r.login_service or r.service, r.reason)
            extras.collapsed[r.nodeid] = f"[auth] {r.reason}"
    for service, reason in sorted(logins.items()):
        extras.lead.append(f"登录失败（{service}）：{reason}" if zh else f"Login failed ({service}): {reason}")
    if verdict is None:
        return extras
    if verdict.storm is not None:
        extras.lead.insert(0, verdict.storm.describe(lang))
        per = ", ".join(f"{svc} {n}" for svc, n in verdict.storm.by_service.items())
        for r in run.results:
            if r.outcome == Outcome.FAILED and r.category in (Category.NETWORK, Category.TIMEOUT):
                extras.collapsed[r.nodeid] = (f"[{r.category}] 网络风暴：{per}" if zh
                                              else f"[{r.category}] storm: {per}")
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
        note = decision.describe(lang, now) if decision else ""
        a = avail.get(key)
        if a is not None and a.ratio is not None and a.checks >= 2:  # one run says nothing about a trend
            note += ("；" if zh else "; ") + (f"24h 可用率 {a.ratio * 100:.1f}%" if zh else f"24h availability "
                                                                                    f"{a.ratio * 100:.1f}%")
        t = trends.get(key)
        if t is not None and t.current_p95 is not None and t.change is not None:
            note += ("；" if zh else "; ") + f"P95 {t.current_p95:.0f} ms ({t.change * 100:+.0f}%)"
        if note:
            extras.notes[r.nodeid] = f"[{note}]"
    recovered = verdict.of_kind(Kind.RECOVERED)
    if recovered:
        extras.sections.append(("已恢复" if zh else "Recovered", [
            f"{d.key} — {d.describe(lang, now)}" for d in sorted(recovered, key=lambda d: d.key)]))
    circuits = verdict.open_circuits
    if circuits:
        lines = []
        for s in circuits:
            since, nxt = fmt_time(s.open_since, now, seconds=True), fmt_time(s.next_probe_at, now, seconds=True)
            lines.append(f"{s.key} — 熔断自 {since} 起，下次探测 {nxt}" if zh
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
    ongoing = sorted(verdict.ongoing, key=lambda d: (d.kind is Kind.FLAPPING, d.service, d.key))
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
        out = truncate_bytes(out, budget)
    return out


def finish(run: RunResult, config: Config, lang: str, redactor: Redactor, memory: Memory | None, *,
           dry_run: bool = False, selection_complete: bool = True,
           pools: Collection[str] | None = None) -> tuple[AlertOutcome, Extras]:
    """End of run on the controller: remember it, decide what is worth saying, say it (or show it).

    Write-ahead delivery (issue 14): the rendered report is stored in the outbox (marked as awaiting this
    run's record) *before* the run and its alert states are recorded, the record is committed, the entry is
    confirmed, and only then is anything sent; the outbox entry is removed once WeCom accepted its last
    message. Killed before the record: the next run discards the entry and announces again from the
    unchanged states. Killed after it: the next run delivers the entry (the rest of it) first. Either way
    exactly one announcement reaches the group (save a kill between WeCom's acceptance of one message and
    the outbox rewrite that follows it, a window of one file write).

    Returns the outcome and the report annotations (in the report language `lang`) for the report files.
    """
    settings = config.notify
    verdict = None
    store = memory.store if memory is not None else None
    if memory is not None:
        verdict = evaluate(memory.states, run.results, config.policy, run.finished_at, memory.memory,
                           selection_complete=selection_complete, pools=pools)
        memory.verdict = verdict
    extras = build_extras(run, verdict, store, lang, config.report.status_page_url)
    outcome = AlertOutcome()
    notifiers = build_notifiers(settings, config.state_path / "outbox")

    def record() -> None:
        if memory is not None and verdict is not None and not dry_run:
            memory.store.record_run(run, verdict.states, verdict.memory, selection_complete=selection_complete,
                                    removed=verdict.removed, pools=pools or ())

    def committed(entry: OutboxEntry) -> bool:
        return store is None or store.has_run(entry.awaiting_run, entry.run_started_at)

    if not notifiers and not dry_run:
        record()
        outcome.reason = "no notifier configured"
        return outcome, extras
    if verdict is not None:
        mode = message_mode(settings.send_on, verdict)
    else:
        failed = any(is_down(r) for r in run.results)
        mode = "full" if settings.send_on == "always" or failed else "none"
    if mode == "none":
        record()
        reason = "nothing new since the last report" if verdict is not None else "no failure"
        verb = "nothing would be sent" if dry_run else "not sent"
        outcome.reason = f"{verb} (send_on: {settings.send_on}; {reason})"
        if not dry_run:
            outcome.results = [notifier.flush(committed=committed) for notifier in notifiers]  # earlier backlog
            _log_errors(outcome, redactor)
        return outcome, extras
    # Only now is a message worth rendering; the robots may speak another language than the report.
    notify_lang = settings.language or lang
    notify_extras = extras if notify_lang == lang else build_extras(
        run, verdict, store, notify_lang, config.report.status_page_url)
    found = triggers(verdict, mode, settings.send_on)
    notification = build_notification(run, config, notify_lang, redactor, notify_extras, found=found)
    if mode == "digest" and verdict is not None:
        digest = render_digest(run, verdict, notify_lang, notification.title, redactor,
                               trigger=trigger_line(found, notify_lang))
        notification = replace(notification, markdown=digest, summary=digest, scope=None)
    if dry_run:
        if not notifiers:
            outcome.reason = "(no WeCom robot configured: nothing would be sent)\n\n" + notification.markdown
        else:
            outcome.reason = "\n\n".join(format_dry_run(n.dry_run(notification)) for n in notifiers)
        return outcome, extras
    awaiting = run.env if memory is not None else ""
    staged = [notifier.stage(notification, awaiting_run=awaiting) for notifier in notifiers]
    record()
    for notifier, entries in zip(notifiers, staged, strict=True):
        notifier.confirm(entries)
    outcome.results = [notifier.flush(staged=entries, committed=committed)
                       for notifier, entries in zip(notifiers, staged, strict=True)]
    outcome.sent = True
    _log_errors(outcome, redactor)
    return outcome, extras


def _log_errors(outcome: AlertOutcome, redactor: Redactor) -> None:
    for result in outcome.results:
        for error in result.errors:
            log.error("%s: %s", result.notifier, redactor.text(error))
