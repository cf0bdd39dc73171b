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

from .categories import Category
from .config import Config
from .notify import DeliveryResult, Notification, build_notifiers
from .notify.outbox import OutboxEntry
from .notify.wecom import format_dry_run
from .policy import InterfaceState, Kind, RunMemory, Verdict, evaluate, fmt_time, interface_key, message_mode, skips
from .redact import Redactor
from .report import Extras, compute_stats, is_down, render_markdown
from .results import RunResult
from .runlock import RunLock
from .state import DAY, StateStore

log = logging.getLogger("pytest_apimon")

SUMMARY_PROBLEMS = 15  # problems listed by name in the short summary of a big report


@dataclass
class AlertOutcome:
    sent: bool = False
    reason: str = ""  # why nothing was sent, or the dry-run text
    results: list[DeliveryResult] = field(default_factory=list)


def title(run: RunResult, lang: str, config_title: str | None = None) -> str:
    stats = compute_stats(run)
    name = config_title or ("接口巡检" if lang == "zh" else "API monitor")
    if lang == "zh":
        verdict = f"{stats.failed} 个失败" if stats.failed else "全部通过"
    else:
        verdict = f"{stats.failed} failed" if stats.failed else "all passed"
    return f"【{run.env}】{name}：{verdict}" if lang == "zh" else f"[{run.env}] {name}: {verdict}"


def build_notification(run: RunResult, config: Config, lang: str, redactor: Redactor,
                       extras: Extras | None = None, verdict: Verdict | None = None) -> Notification:
    def make(view: RunResult) -> Notification:
        heading = redactor.text(title(view, lang, config.report.title))  # also heads every continuation part
        failed = [r for r in view.results if is_down(r)]
        return Notification(
            title=heading,
            markdown=render_markdown(view, lang, heading, redactor=redactor, extras=extras),
            # Sent with the full report as a file when the report would take too many messages.
            summary=render_markdown(view, lang, heading, redactor=redactor, extras=extras,
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
        return make(view)

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
        """Take the run lock (raises runlock.LockTimeout) and load what earlier runs left."""
        lock = RunLock(config.state_path, timeout=config.state.lock_timeout).acquire()
        try:
            store = StateStore.in_dir(config.state_path, retention_days=config.state.retention_days)
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
        if r.outcome == "failed" and r.category == Category.AUTH.value and r.sub == "login":
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
            if r.outcome == "failed" and r.category in ("network", "timeout"):
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


def render_digest(run: RunResult, verdict: Verdict, lang: str, heading: str, redactor: Redactor) -> str:
    """Only ongoing problems inside their reminder window: the overview and one line each, not a full alert."""
    zh = lang == "zh"
    lines = [render_markdown(run, lang, heading, redactor=redactor, max_problems=0).rstrip("\n"), ""]
    lines.append("**仍未恢复（已通知过）**" if zh else "**Still failing (already announced)**")
    lines += [f"- {d.key} — {d.describe(lang, run.finished_at)}" for d in sorted(verdict.ongoing, key=lambda d: d.key)]
    return redactor.text("\n".join(lines))


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
    notification = build_notification(run, config, notify_lang, redactor, notify_extras, verdict=verdict)
    if mode == "digest" and verdict is not None:
        digest = render_digest(run, verdict, notify_lang, notification.title, redactor)
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
