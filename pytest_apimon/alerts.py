"""End of run: turn the RunResult into a Notification, decide whether to send, deliver.

The bridge between report rendering and the provider-neutral notifiers. Runs on the xdist
controller (or the single process) only, once per run.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .categories import ORDER, Category
from .config import Config
from .notify import DeliveryResult, Notification, build_notifiers, should_send
from .notify.wecom import format_dry_run
from .redact import Redactor
from .report import compute_stats, render_markdown
from .results import RunResult

log = logging.getLogger("pytest_apimon")

SUMMARY_PROBLEMS = 15  # problems listed by name in the short summary of a big report
LAST_RUN_FILE = "last_run.json"


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


def build_notification(run: RunResult, config: Config, lang: str, redactor: Redactor) -> Notification:
    def make(view: RunResult) -> Notification:
        heading = title(view, lang, config.report.title)
        failed = [r for r in view.results if r.outcome == "failed"]
        return Notification(
            title=heading,
            markdown=render_markdown(view, lang, heading, redactor=redactor),
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


def failing_set(run: RunResult) -> dict[str, str]:
    return {r.nodeid: r.category or "" for r in run.results if r.outcome == "failed"}


def load_last_run(state_dir: Path) -> dict[str, str] | None:
    try:
        data = json.loads((state_dir / LAST_RUN_FILE).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.get("failing", {}).items()}
    except (OSError, ValueError, AttributeError):
        return None


def save_last_run(state_dir: Path, run: RunResult) -> None:
    """Atomically remember which interfaces failed (for send_on: change)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (LAST_RUN_FILE + ".tmp")
    tmp.write_text(json.dumps({"finished_at": run.finished_at, "failing": failing_set(run)}, ensure_ascii=False),
                   encoding="utf-8")
    os.replace(tmp, state_dir / LAST_RUN_FILE)


def deliver(run: RunResult, config: Config, lang: str, redactor: Redactor, *, dry_run: bool = False,
            selection_complete: bool = True) -> AlertOutcome:
    """Send (or, dry_run, render) this run's report through every configured notifier."""
    settings = config.notify
    lang = settings.language or lang
    notifiers = build_notifiers(settings, config.state_path / "outbox")
    outcome = AlertOutcome()
    if not notifiers and not dry_run:
        outcome.reason = "no notifier configured"
        return outcome
    notification = build_notification(run, config, lang, redactor)
    if dry_run:
        if not notifiers:
            outcome.reason = "(no WeCom robot configured: nothing would be sent)\n\n" + notification.markdown
            return outcome
        outcome.reason = "\n\n".join(format_dry_run(n.dry_run(notification)) for n in notifiers)
        return outcome
    previous = load_last_run(config.state_path)
    current = failing_set(run)
    # First run ever: a change only if something fails. Afterwards: any difference in the failing set.
    changed = bool(current) if previous is None else previous != current
    if selection_complete:  # a -k/-m subset must not overwrite the memory of the full run
        save_last_run(config.state_path, run)
    send = should_send(settings.send_on, len(current), changed)
    for notifier in notifiers:
        result = notifier.send(notification) if send else notifier.flush()
        outcome.results.append(result)
        for error in result.errors:
            log.error("%s: %s", notifier.name, redactor.text(error))
    outcome.sent = send
    if not send:
        outcome.reason = f"not sent (send_on: {settings.send_on})"
    return outcome
