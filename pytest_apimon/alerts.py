"""End of run: turn the RunResult into a Notification, decide whether to send, deliver.

The bridge between report rendering and the provider-neutral notifiers. Runs on the xdist
controller (or the single process) only, once per run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from .categories import ORDER, Category
from .config import Config
from .notify import DeliveryResult, Notification, build_notifiers
from .notify.wecom import format_dry_run
from .policy import InterfaceState, Kind, RunMemory, Verdict, evaluate, fmt_time, interface_key, message_mode, skips
from .redact import Redactor
from .report import Extras, compute_stats, render_markdown
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


def render_summary(run: RunResult, lang: str, heading: str, redactor: Redactor) -> str:
    """A short Markdown report: totals, counts per category, the first problems by name."""
    stats = compute_stats(run)
    zh = lang == "zh"
    rate = "-" if stats.success_rate is None else f"{stats.success_rate * 100:.1f}%"
    lines = [f"## {heading}"]
    if zh:
        lines.append(
            f"> 总数 {stats.total} · 通过 {stats.passed} · 失败 {stats.failed} · 跳过 {stats.skipped} · 成功率 {rate}"
        )
    else:
        lines.append(
            f"> total {stats.total} · passed {stats.passed} · failed {stats.failed} · skipped {stats.skipped}"
            f" · success {rate}"
        )
    for cat in ORDER:
        count = stats.by_category.get(cat.value)
        if count:
            lines.append(f"- **{cat.label(lang)}** `{cat.value}`: {count}")
    failed = sorted((r for r in run.results if r.outcome == "failed"),
                    key=lambda r: (_rank(r.category), r.service, r.module, r.name))
    if failed:
        lines.append("")
        lines.append(f"**问题（前 {min(len(failed), SUMMARY_PROBLEMS)} 个）**" if zh
                     else f"**Problems (first {min(len(failed), SUMMARY_PROBLEMS)})**")
        for r in failed[:SUMMARY_PROBLEMS]:
            status = r.status if r.status is not None else r.sub or "-"
            lines.append(f"- [{r.category}] {r.service}/{r.module} · {r.name} → {status}")
        if len(failed) > SUMMARY_PROBLEMS:
            more = len(failed) - SUMMARY_PROBLEMS
            lines.append(f"- …以及另外 {more} 个，详见完整报告" if zh else f"- …and {more} more in the full report")
    return redactor.text("\n".join(lines))


def _rank(category: str | None) -> int:
    try:
        return ORDER.index(Category(category))
    except ValueError:
        return len(ORDER)


def build_notification(run: RunResult, config: Config, lang: str, redactor: Redactor,
                       extras: Extras | None = None) -> Notification:
    def make(view: RunResult) -> Notification:
        heading = title(view, lang, config.report.title)
        failed = [r for r in view.results if r.outcome == "failed"]
        return Notification(
            title=heading,
            markdown=render_markdown(view, lang, heading, redactor=redactor, extras=extras),
            summary=render_summary(view, lang, heading, redactor),
            run_started_at=view.started_at,
            lang=lang,
            services=tuple(sorted({r.service for r in failed})),
            failed=len(failed),
        )

    def scope(services: tuple[str, ...]) -> Notification | None:
        view = replace(run, results=[r for r in run.results if r.service in services])
        if not any(r.outcome == "failed" for r in view.results):
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
        gates = skips(states, config.policy, time.time() if now is None else now) if breaker else {}
        return cls(store, lock, states, memory, gates)

    def close(self) -> None:
        self.store.close()
        self.lock.release()


def build_extras(run: RunResult, verdict: Verdict | None, store: StateStore | None, lang: str) -> Extras:
    """Report annotations: NEW/ONGOING/RECOVERED per problem, storm diagnosis, login root causes, circuits."""
    zh = lang == "zh"
    extras = Extras()
    now = run.finished_at
    # One root cause per failed login (token issue): a lead line, and its interfaces counted, not listed.
    logins: dict[str, str] = {}
    for r in run.results:
        if r.outcome == "failed" and r.category == Category.AUTH.value and r.sub == "login":
            logins.setdefault(r.service, r.reason)
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
    keys = [interface_key(r) for r in run.results if r.outcome == "failed"]
    avail = store.availability(run.env, since=now - DAY, until=now + 1, keys=keys) if store and keys else {}
    trends = store.latency_trend(run.env, now=now + 1, keys=keys) if store and keys else {}
    for key in keys:
        r = by_key[key]
        decision = verdict.decision(key)
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
    recovered = [d for d in verdict.of_kind(Kind.RECOVERED)]
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
    """Only ongoing problems inside their reminder window: a few lines, not a full alert."""
    zh = lang == "zh"
    lines = [render_summary(run, lang, heading, redactor), ""]
    lines.append("**仍未恢复（已通知过）**" if zh else "**Still failing (already announced)**")
    for d in sorted(verdict.ongoing, key=lambda d: d.key):
        lines.append(f"- {d.key} — {d.describe(lang, run.finished_at)}")
    return redactor.text("\n".join(lines))


def finish(run: RunResult, config: Config, lang: str, redactor: Redactor, memory: Memory | None, *,
           dry_run: bool = False, selection_complete: bool = True) -> tuple[AlertOutcome, Extras]:
    """End of run on the controller: remember it, decide what is worth saying, say it (or show it)."""
    settings = config.notify
    lang = settings.language or lang
    verdict = None
    if memory is not None:
        verdict = evaluate(memory.states, run.results, config.policy, run.finished_at, memory.memory,
                           selection_complete=selection_complete)
        memory.verdict = verdict
        if not dry_run:
            memory.store.record_run(run, verdict.states, verdict.memory, selection_complete=selection_complete,
                                    removed=verdict.removed)
    extras = build_extras(run, verdict, memory.store if memory else None, lang)
    if config.report.status_page_url:
        label = "状态页" if lang == "zh" else "Status page"
        extras.lead.append(f"[{label}]({config.report.status_page_url})")
    outcome = AlertOutcome()
    notifiers = build_notifiers(settings, config.state_path / "outbox")
    if verdict is not None:
        mode = message_mode(settings.send_on, verdict)
    else:
        failed = any(r.outcome == "failed" for r in run.results)
        mode = "full" if settings.send_on == "always" or failed else "none"
    notification = build_notification(run, config, lang, redactor, extras)
    if mode == "digest" and verdict is not None:
        digest = render_digest(run, verdict, lang, notification.title, redactor)
        notification = replace(notification, markdown=digest, summary=digest, scope=None)
    if dry_run:
        if not notifiers:
            outcome.reason = "(no WeCom robot configured: nothing would be sent)\n\n" + notification.markdown
        elif mode == "none":
            outcome.reason = f"nothing would be sent (send_on: {settings.send_on}; no new problem or recovery)"
        else:
            outcome.reason = "\n\n".join(format_dry_run(n.dry_run(notification)) for n in notifiers)
        return outcome, extras
    if not notifiers:
        outcome.reason = "no notifier configured"
        return outcome, extras
    for notifier in notifiers:
        result = notifier.send(notification) if mode != "none" else notifier.flush()
        outcome.results.append(result)
        for error in result.errors:
            log.error("%s: %s", notifier.name, redactor.text(error))
    outcome.sent = mode != "none"
    if not outcome.sent:
        outcome.reason = f"not sent (send_on: {settings.send_on}; nothing new since the last report)"
    return outcome, extras
