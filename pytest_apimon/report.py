"""Report rendering: RunResult -> terminal text, Markdown, JSON. Pure functions; output is masked.

Every renderer masks field by field (headers with header rules, bodies as text) and the text renderers
also run a final pass over the whole output, so a secret planted anywhere in a result never leaves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from . import times
from .categories import ORDER, Category, Outcome
from .certs import CertStatus
from .messages import localize, zh_document
from .ownership import shown as shown_owner
from .redact import Redactor
from .results import InterfaceResult, RunResult

BODY_EXCERPT_BYTES = 300

# (zh, en) label pairs; any lang other than "zh" gets English, like Category.label.
_T: dict[str, tuple[str, str]] = {
    "start": ("开始", "Start"),
    "end": ("结束", "End"),
    "duration": ("耗时", "Duration"),
    "env": ("环境", "Env"),
    "proxy": ("经代理", "via proxy"),
    "total": ("总数", "Total"),
    "passed": ("通过", "Passed"),
    "failed": ("失败", "Failed"),
    "skipped": ("跳过", "Skipped"),
    "rate": ("成功率", "Success rate"),
    "latency": ("延迟", "Latency"),
    "max": ("最大", "max"),
    "none": ("无", "n/a"),
    "title": ("接口巡检报告", "API monitor report"),
    "result": ("结果", "Result"),
    "all_passed": ("全部通过", "All passed"),
    "incomplete": ("监控不完整：{n} 个接口未检查", "Monitoring incomplete: {n} interface(s) not checked"),
    "incomplete_failed": ("，{n} 个失败", ", {n} failed"),
    "unchecked_count": ("其中 {n} 个未检查", "{n} of them not checked"),
    "n_failed": ("{n} 个失败", "{n} failed"),
    "nothing_ran": ("没有执行任何接口", "Nothing ran"),
    "overview": ("概览", "Overview"),
    "problems": ("问题列表", "Problems"),
    "details": ("详情", "Details"),
    "status": ("状态", "status"),
    "no_response": ("无响应", "no response"),
    "attempts": ("尝试 {n} 次", "{n} attempts"),
    "reason": ("原因", "Reason"),
    "category": ("分类", "Category"),
    "location": ("位置", "Location"),
    "request": ("请求", "Request"),
    "req_headers": ("请求头", "Request headers"),
    "req_body": ("请求体", "Request body"),
    "response": ("响应", "Response"),
    "resp_headers": ("响应头", "Response headers"),
    "resp_body": ("响应体", "Response body"),
    "reproduce": ("复现命令", "Reproduce with"),
    "sep": ("：", ": "),
    "flaky": ("重试后通过", "Passed after retry"),
    "slow": ("响应慢", "Slow"),
    "slow_line": ("{ms} ms，超过 warn_ms {warn} ms", "{ms} ms, over warn_ms {warn} ms"),
    "more": ("…以及另外 {n} 个，详见完整报告", "…and {n} more in the full report"),
    "rate_limited": ("监控自身被限流：{host} 返回 429 共 {n} 次", "The monitor itself is being rate-limited: {host} "
                     "answered 429 {n} time(s)"),
    "lowered": ("，本次运行对其并发降至 {cap}", "; concurrency to it lowered to {cap} for the rest of the run"),
    "more_short": ("…以及另外 {n} 个", "…and {n} more"),
    "circuit_open": ("其中 {n} 个熔断中（未检查，仍按故障计）", "{n} of them behind an open circuit (not checked, "
                                                          "still counted as down)"),
    "circuit_note": ("熔断中，未检查", "circuit open, not checked"),
    "unchecked_down": ("其中 {n} 个未检查（最后已知为故障，仍按故障计）", "{n} of them not checked (last known down, "
                                                              "still counted as down)"),
    "unchecked_note": ("未检查，最后已知为故障", "not checked, last known down"),
    "by_service": ("按服务", "By service"),
    "maintenance": ("维护中", "maintenance"),
    "maintenance_count": ("其中 {n} 个维护中（不告警）", "{n} of them in maintenance (not alerted)"),
    "maintenance_line": ("维护中：{service}（{window}）— 照常检查和记录，不告警", "Maintenance: {service} ({window}) — "
                         "checked and recorded, alerts held"),
    "cert": ("证书即将过期", "Certificates expiring soon"),
}


@dataclass
class Extras:
    """What the run's memory adds to a report (alert policy, storms, login failures), kept generic here."""

    lead: list[str] = field(default_factory=list)  # lines right after the overview (diagnoses, root causes)
    notes: dict[str, str] = field(default_factory=dict)  # nodeid -> note on its problem line (NEW, ONGOING …)
    collapsed: dict[str, str] = field(default_factory=dict)  # nodeid -> group line: counted, not listed
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (heading, lines) at the end
    trigger: str = ""  # why a message is sent (alerts.trigger_line), right under the result line
    # For the first screen: per problem (nodeid) its alert state (policy.Kind value) and since when.
    state: dict[str, str] = field(default_factory=dict)
    since: dict[str, float] = field(default_factory=dict)
    # Recoveries of this run: (service, interface name, outage duration in seconds or None, incident id).
    recovered: list[tuple[str, str, float | None, str]] = field(default_factory=list)
    incident: dict[str, str] = field(default_factory=dict)  # nodeid -> incident id of its problem
    link: str | None = None  # the status page (one link on the first screen)
    service_lead: dict[str, str] = field(default_factory=dict)  # service -> its root-cause line (unreachable …)
    reminded: set[str] = field(default_factory=set)  # nodeids whose reminder is due this run
    announced: set[str] = field(default_factory=set)  # nodeids announced for the first time (NEW, FLAPPING)
    # (service, line) shown with the lead lines and kept to the service's robots: maintenance, SLOW alerts.
    service_notes: list[tuple[str, str]] = field(default_factory=list)
    # TLS certificates (certs.CertStatus): every HTTPS origin of the run, and those to warn about (fewer than
    # cert_warn_days left; in a robot message only those not warned about within the last day).
    certificates: list[CertStatus] = field(default_factory=list)
    cert_warnings: list[CertStatus] = field(default_factory=list)


def _t(key: str, lang: str, **kw: Any) -> str:
    s = _T[key][0 if lang == "zh" else 1]
    return s.format(**kw) if kw else s


def status_label(parts: Iterable[str], lang: str) -> str:
    """A problem line's status label: its non-empty parts (alert state, '24h 可用率 50.0%', P95 trend) in order,
    '；' (zh) or '; ' between them, in brackets: '[持续，自 04:00 起；24h 可用率 50.0%]'. '' when no part is
    left, e.g. an interface the run did not check (no alert decision) without history. Blank parts are dropped
    wherever they are, so no label starts, ends or doubles a separator."""
    kept = [p.strip() for p in parts if p and p.strip()]
    return f"[{('；' if lang == 'zh' else '; ').join(kept)}]" if kept else ""


@dataclass
class Stats:
    total: int
    passed: int
    failed: int  # down: failed checks plus interfaces known down behind an open circuit (`circuit_open`)
    skipped: int  # skipped for any other reason (not counted either way)
    by_category: dict[str, int]
    success_rate: float | None  # passed / (passed + failed); None when nothing ran and nothing is known down
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    flaky: int = 0  # passed, but only after one or more retries
    circuit_open: int = 0  # of `failed`: not checked this run, known down (the breaker saves requests, not truth)
    slow: int = 0  # passed, but slower than expect.warn_ms (degraded)
    maintenance: int = 0  # of `failed`: its service is in a maintenance window (not alerted)
    # Not checked, the run ended without it (InterfaceResult.unchecked): of `skipped`, or of `failed` when its last
    # known state is down (`unchecked_down`, InterfaceResult.known_down).
    unchecked: int = 0
    unchecked_down: int = 0


def maintenance_lines(run: RunResult, lang: str) -> list[tuple[str, str]]:
    """(service, 'Maintenance: svc (window) — …') for every service of the run inside a maintenance window."""
    seen: dict[str, str] = {}
    for r in run.results:
        if r.maintenance:
            seen.setdefault(r.service, r.maintenance)
    return [(svc, _t("maintenance_line", lang, service=svc, window=window)) for svc, window in sorted(seen.items())]


def _service_notes(run: RunResult, extras: Extras | None, lang: str) -> list[str]:
    """Maintenance lines of the run's services, then the memory's per-service notes (SLOW …) for them."""
    services = {r.service for r in run.results}
    lines = [line for _, line in maintenance_lines(run, lang)]
    return lines + [line for svc, line in (extras.service_notes if extras else []) if svc in services]


def _cert_lines(run: RunResult, extras: Extras | None, lang: str) -> list[str]:
    """One line per certificate warning of the view's services (a routed robot hears only about its own)."""
    if extras is None or not extras.cert_warnings:
        return []
    services = {r.service for r in run.results}
    return [localize(c.describe(run.finished_at), lang) for c in extras.cert_warnings
            if not services or services.intersection(c.services)]


def _sections(run: RunResult, extras: Extras | None, lang: str, *, markdown: bool) -> list[tuple[str, list[str]]]:
    """The closing sections: certificates expiring soon (a warning, not a failure), then the extras' own."""
    expiring = _cert_lines(run, extras, lang)
    out: list[tuple[str, list[str]]] = []
    if expiring and markdown:
        out.append((f"{_t('cert', lang)} `cert` ({len(expiring)})", [_font("warning", line) for line in expiring]))
    elif expiring:
        out.append((("" if lang == "zh" else "[cert] ") + f"{_t('cert', lang)} ({len(expiring)})", expiring))
    return out + (extras.sections if extras else [])


def is_down(r: InterfaceResult) -> bool:
    """Failed now, or skipped behind an open circuit (its last checks failed), or not checked while its stored
    state is down (InterfaceResult.known_down): down in every count and list (issue 14). The one test of "down
    right now" for the report, JSON `down_now`, WeCom, status page and textfile."""
    return r.outcome == Outcome.FAILED or (r.outcome == Outcome.SKIPPED and (r.circuit_open or r.known_down))


def _percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank: the smallest value with at least p% of the data at or below it."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _category_of(r: InterfaceResult) -> str:
    # A failure without a category is still a failure; file it under the catch-all.
    return r.category or Category.UNEXPECTED.value


def _category_order(values: set[str]) -> list[str]:
    known = [c.value for c in ORDER if c.value in values]
    return known + sorted(values - set(known))


def compute_stats(run: RunResult) -> Stats:
    """The run's totals, as every output (terminal, WeCom, JSON, status page) counts them.

    `total` = all results; `passed`; `failed` = down (is_down: failed now, or skipped behind an open circuit,
    also counted in `circuit_open`, or not checked and last known down, also counted in `unchecked_down`);
    `skipped` = other skips; so total = passed + failed + skipped. `unchecked`: not checked, either way.
    `by_category`: {category value: down count}, in categories.ORDER, unknown values sorted after; a failure
    without a category counts as 'unexpected'. `success_rate`: passed / (passed + failed) as a ratio 0..1,
    None when that is 0. `p50_ms`, `p95_ms` (nearest rank), `max_ms`: milliseconds over every result with a
    latency (skips have none), None without any. `flaky`: passed after a retry; `slow`: passed but over
    expect.warn_ms. An empty run gives zeros and Nones. Pure; raises nothing."""
    passed = sum(1 for r in run.results if r.outcome == Outcome.PASSED)
    failed_results = [r for r in run.results if is_down(r)]
    skipped = sum(1 for r in run.results if r.outcome == Outcome.SKIPPED and not is_down(r))
    counts: dict[str, int] = {}
    for r in failed_results:
        counts[_category_of(r)] = counts.get(_category_of(r), 0) + 1
    by_category = {c: counts[c] for c in _category_order(set(counts))}
    failed = len(failed_results)
    ran = passed + failed
    latencies = sorted(float(r.elapsed_ms) for r in run.results if r.elapsed_ms is not None)
    return Stats(
        total=len(run.results),
        passed=passed,
        failed=failed,
        skipped=skipped,
        by_category=by_category,
        success_rate=passed / ran if ran else None,
        p50_ms=_percentile(latencies, 50) if latencies else None,
        p95_ms=_percentile(latencies, 95) if latencies else None,
        max_ms=latencies[-1] if latencies else None,
        flaky=len(_flaky(run)),
        circuit_open=sum(1 for r in failed_results if r.outcome == Outcome.SKIPPED and r.circuit_open),
        slow=len(_slow(run)),
        maintenance=sum(1 for r in run.results if r.maintenance and is_down(r)),
        unchecked=sum(1 for r in run.results if r.unchecked),
        unchecked_down=sum(1 for r in failed_results if r.unchecked),
    )


# -- shared formatting ---------------------------------------------------------------------------------
def _rate_limit_lines(run: RunResult, lang: str) -> list[str]:
    """One line per host that answered the monitor with 429: it is the monitor being throttled, not an outage."""
    lines = []
    for host in sorted(run.rate_limited):
        line = _t("rate_limited", lang, host=host, n=run.rate_limited[host])
        if host in run.host_caps:
            line += _t("lowered", lang, cap=run.host_caps[host])
        lines.append(line)
    return lines


def _sort_key(r: InterfaceResult) -> tuple[str, str, str, str]:
    return (r.service, r.module, r.name, r.nodeid)


def _grouped_failures(run: RunResult, extras: Extras | None = None) -> list[tuple[str, list[InterfaceResult]]]:
    groups: dict[str, list[InterfaceResult]] = {}
    collapsed = extras.collapsed if extras else {}
    for r in run.results:
        if is_down(r) and r.nodeid not in collapsed:
            groups.setdefault(_category_of(r), []).append(r)
    return [(c, sorted(groups[c], key=_sort_key)) for c in _category_order(set(groups))]


def _flaky(run: RunResult) -> list[InterfaceResult]:
    return sorted((r for r in run.results if r.outcome == Outcome.PASSED and r.attempts > 1), key=_sort_key)


def _collapsed_lines(run: RunResult, extras: Extras | None, lang: str) -> list[str]:
    """One line per collapsed group with the number of interfaces it stands for, marked '[维护中，不告警]' when
    all of them are inside a maintenance window (as their own lines are), and ending with the incident ids it
    covers ('#5c0825 #e87360', the first INCIDENT_IDS_SHOWN then '等 N 个'): the line replaces the interface
    lines, so a later RECOVERED '#5c0825' refers to something the group was told."""
    if not extras or not extras.collapsed:
        return []
    zh = lang == "zh"
    groups: dict[str, list[InterfaceResult]] = {}
    for r in run.results:
        label = extras.collapsed.get(r.nodeid)
        if label and is_down(r):
            groups.setdefault(label, []).append(r)
    unit = "个接口" if zh else "interfaces"
    held = "[维护中，不告警] " if zh else "[maintenance, not alerted] "
    out = []
    for label, results in sorted(groups.items()):
        line = f"{held if all(r.maintenance for r in results) else ''}{label} ({len(results)} {unit})"
        ids = list(dict.fromkeys(extras.incident[r.nodeid] for r in results if r.nodeid in extras.incident))
        if ids:
            line += " " + " ".join(f"#{i}" for i in ids[:INCIDENT_IDS_SHOWN])
            if len(ids) > INCIDENT_IDS_SHOWN:
                line += f" 等 {len(ids)} 个" if zh else f" and {len(ids) - INCIDENT_IDS_SHOWN} more"
        out.append(line)
    return out


INCIDENT_IDS_SHOWN = 3  # incident ids named on a counted group line; the rest are counted


def _service_leads(run: RunResult, extras: Extras, *, mine: bool = False) -> list[str]:
    """The root-cause lines of the services (unreachable, login failed) that are not already shown as a
    counted group line (_collapsed_lines): each cause is shown once. `mine`: only the view's services."""
    grouped = {extras.collapsed[r.nodeid] for r in run.results if is_down(r) and r.nodeid in extras.collapsed}
    services = {r.service for r in run.results}
    return [line for svc, line in sorted(extras.service_lead.items())
            if line not in grouped and (not mine or svc in services)]


def _slow(run: RunResult) -> list[InterfaceResult]:
    return sorted((r for r in run.results if r.outcome == Outcome.PASSED and r.slow), key=_sort_key)


def _slow_line(r: InterfaceResult, lang: str) -> str:
    where = f"{r.service}/{r.module} · {r.name}"
    if r.elapsed_ms is None or r.warn_ms is None:
        return where
    return f"{where} · {_t('slow_line', lang, ms=f'{r.elapsed_ms:.0f}', warn=f'{r.warn_ms:g}')}"


def _skipped(run: RunResult) -> list[InterfaceResult]:
    return sorted((r for r in run.results if r.outcome == Outcome.SKIPPED and not is_down(r)), key=_sort_key)


def _label(category: str, lang: str) -> str:
    try:
        return Category(category).label(lang)
    except ValueError:
        return category


def _local(ts: float) -> str:
    return times.stamp(ts)


def _iso(ts: float) -> str:
    return times.iso(ts)


def _ms(v: float | None, lang: str) -> str:
    return f"{v:.0f} ms" if v is not None else _t("none", lang)


def _rate(v: float | None, lang: str) -> str:
    return f"{v * 100:.1f}%" if v is not None else _t("none", lang)


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _breakdown(stats: Stats, lang: str = "en") -> str:
    """'auth 1, timeout 2' (en: the machine names people grep for) or '认证失败 1，超时 2' (zh)."""
    if lang == "zh":
        return "，".join(f"{_label(c, lang)} {n}" for c, n in stats.by_category.items())
    return ", ".join(f"{c} {n}" for c, n in stats.by_category.items())


def _window(run: RunResult, lang: str) -> str:
    return (f"{_t('start', lang)} {_local(run.started_at)} · {_t('end', lang)} {_local(run.finished_at)}"
            f" · {_t('duration', lang)} {run.duration:.1f} s")


def _latency(stats: Stats, lang: str) -> str:
    return (f"{_t('latency', lang)} P50 {_ms(stats.p50_ms, lang)} · P95 {_ms(stats.p95_ms, lang)}"
            f" · {_t('max', lang)} {_ms(stats.max_ms, lang)}")


def headline(r: InterfaceResult, lang: str) -> str:
    """InterfaceResult.headline in the reader's language (category label, reason localized, 'in' -> '耗时');
    the English one (lang en) keeps the machine category in brackets."""
    if lang != "zh":
        return r.headline(lang)
    tag = f"[{_label(_category_of(r), lang)}] " if r.category else ""
    target = f"{r.method} {r.url}".strip()
    if r.status is not None and r.category not in ("timeout", "network"):
        result = f"→ {r.status}"
    else:
        result = f"→ {_reason(r, lang)}" if r.reason else ""
    timing = f" 耗时 {r.elapsed_ms:.0f} ms" if r.elapsed_ms is not None else ""
    where = " · ".join(p for p in (f"{r.service}/{r.module} · {r.name}", target) if p)
    return f"{tag}{where} {result}{timing}".rstrip()


def excerpt(text: str, limit: int = BODY_EXCERPT_BYTES) -> str:
    """At most `limit` UTF-8 bytes of text, never splitting a character; '…' marks a cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore") + "…"


def _down_notes(stats: Stats, lang: str) -> list[tuple[str, bool]]:
    """What the failed count includes beyond this run's failures, as (text, to be stressed) in the order every
    output shows them: behind an open circuit, not checked but last known down (stressed: the monitor did not
    look), in maintenance."""
    notes = [(_t("circuit_open", lang, n=stats.circuit_open), False)] if stats.circuit_open else []
    if stats.unchecked_down:
        notes.append((_t("unchecked_down", lang, n=stats.unchecked_down), True))
    if stats.maintenance:
        notes.append((_t("maintenance_count", lang, n=stats.maintenance), False))
    return notes


# -- terminal ------------------------------------------------------------------------------------------
def _terminal_totals(stats: Stats, lang: str) -> str:
    """The totals line: '总数 12 · 通过 6 · 失败 2 (…) [其中 1 个未检查（…）] · 跳过 4 [其中 4 个未检查] · …'."""
    failed = f"{_t('failed', lang)} {stats.failed}"
    if stats.by_category:
        failed += f" ({_breakdown(stats, lang)})"
    failed += "".join(f" [{text}]" for text, _ in _down_notes(stats, lang))
    unchecked_skips = stats.unchecked - stats.unchecked_down
    return " · ".join([f"{_t('total', lang)} {stats.total}", f"{_t('passed', lang)} {stats.passed}", failed,
                       f"{_t('skipped', lang)} {stats.skipped}"
                       + (f" [{_t('unchecked_count', lang, n=unchecked_skips)}]" if unchecked_skips else ""),
                       f"{_t('rate', lang)} {_rate(stats.success_rate, lang)}"])


def render_terminal(run: RunResult, lang: str = "zh", *, redactor: Redactor | None = None,
                    extras: Extras | None = None) -> str:
    """The terminal summary as one str of '\n'-separated lines ending in '\n': the run's window, env, totals
    (compute_stats) and latency (P50/P95/max in ms), `extras`' lead lines and sections, rate-limited hosts,
    then failures per category, flaky, slow and skipped interfaces. `lang` 'zh' or 'en'. The whole text is
    masked with `redactor` (default: a Redactor with no known secrets, masking the usual secret shapes).
    No I/O; raises no error of its own."""
    red = redactor or Redactor()
    stats = compute_stats(run)
    lines = [
        _window(run, lang),
        f"{_t('env', lang)} {run.env}" + (f" · {_t('proxy', lang)} {red.text(run.proxy)}" if run.proxy else ""),
        _terminal_totals(stats, lang),
        _latency(stats, lang),
    ]
    lead = [*extras.lead, *_service_leads(run, extras)] if extras else []
    lead += _service_notes(run, extras, lang)
    if lead:
        lines += ["", *lead]
    throttled = _rate_limit_lines(run, lang)
    if throttled:
        lines += ["", *throttled]
    grouped = _collapsed_lines(run, extras, lang)
    if grouped:
        lines += [""] + [f"  {line}" for line in grouped]
    for category, results in _grouped_failures(run, extras):
        tag = "" if lang == "zh" else f"[{category}] "
        lines += ["", f"{tag}{_label(category, lang)} ({len(results)})"]
        for r in results:
            line = _one_line(headline(r, lang))
            if extras and r.nodeid in extras.notes:
                line = f"{extras.notes[r.nodeid]} {line}"
            # headline() only shows the reason when there is no status; the reason is what tells a 200
            # "unexpected" apart, so append it.
            if r.status is not None and r.reason and _reason(r, lang, red) not in line:
                line += f" — {_reason(r, lang, red)}"
            if r.attempts > 1:
                line += f" · {_t('attempts', lang, n=r.attempts)}"
            lines.append(f"  {line}")
    flaky = _flaky(run)
    if flaky:
        lines += ["", ("" if lang == "zh" else "[flaky] ") + f"{_t('flaky', lang)} ({len(flaky)})"]
        lines += [f"  {_one_line(headline(r, lang))} · {_t('attempts', lang, n=r.attempts)}" for r in flaky]
    slow = _slow(run)
    if slow:
        lines += ["", ("" if lang == "zh" else "[slow] ") + f"{_t('slow', lang)} ({len(slow)})"]
        lines += [f"  {_slow_line(r, lang)}" for r in slow]
    skipped = _skipped(run)
    if skipped:
        lines += ["", f"{_t('skipped', lang)} ({len(skipped)})"]
        for r in skipped:
            line = f"{r.service}/{r.module} · {r.name}"
            if r.reason:
                line += f" — {_reason(r, lang, red)}"
            lines.append(f"  {line}")
    for heading, body in _sections(run, extras, lang, markdown=False):
        lines += ["", heading] + [f"  {line}" for line in body]
    return red.text("\n".join(lines) + "\n")


# -- markdown ------------------------------------------------------------------------------------------
def _code(s: str) -> str:
    """Inline code that survives any content: one line, no backticks (WeCom has no escaping)."""
    return "`" + _one_line(s).replace("`", "'") + "`"


def _font(color: str, s: str) -> str:
    return f'<font color="{color}">{s}</font>'


FIRST_SCREEN_LINES = 8  # a phone screen: the verdict and the top problems, before any detail

# How the alert states read on the first screen (the glossary's words: docs/zh/glossary.md).
_STATE_WORDS = {
    "new": ("新告警", "new"), "ongoing": ("持续", "ongoing"), "flapping": ("抖动", "flapping"),
    "recovering": ("恢复中", "recovering"), "pending": ("待确认", "pending"), "storm": ("网络风暴", "storm"),
    "circuit": ("熔断", "circuit open"), "maintenance": ("维护中", "maintenance"),
}
_SEVERITY_ORDER = {"P0": 0, "P1": 1, "P2": 2}
_STATE_ORDER = {"new": 0, "flapping": 1, "circuit": 2, "ongoing": 3, "recovering": 4, "pending": 5, "storm": 6,
                "maintenance": 7}


def duration_text(seconds: float, lang: str) -> str:
    """'42 分钟' / '1 小时 5 分钟' / '42 min' / '1 h 5 min' (at least one minute)."""
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    zh = lang == "zh"
    units = (("天", "d"), ("小时", "h"), ("分钟", "min"))
    parts = [f"{n} {u[0] if zh else u[1]}" for n, u in zip((days, hours, minutes), units, strict=True) if n]
    return " ".join(parts)


def reason_text(r: InterfaceResult, lang: str) -> str:
    """The result's reason, on one line, for a reader of lang (the catalogue's Chinese in zh)."""
    return _reason(r, lang)


def _reason(r: InterfaceResult, lang: str, red: Redactor | None = None) -> str:
    """The result's reason for a reader of lang (masked when a redactor is given)."""
    if not r.reason:
        return ""
    text = red.text(r.reason) if red is not None else r.reason
    if lang == "zh" and r.category == Category.INVALID_DOCUMENT.value:
        whole = localize(text, lang)  # a core line (an unfilled template), else a "file:line: field: …" problem
        return _one_line(whole if whole != text else zh_document(text))
    return _one_line(localize(text, lang))


def _problem_line(r: InterfaceResult, lang: str, extras: Extras) -> str:
    zh = lang == "zh"
    sep = "：" if zh else ": "
    state = extras.state.get(r.nodeid, "")
    bits = [_label(_category_of(r), lang)]
    since = extras.since.get(r.nodeid)
    if since is not None:
        bits.append(f"自 {times.short(since, r.started_at or since)} 起" if zh
                    else f"since {times.short(since, r.started_at or since)}")
    if state in _STATE_WORDS:
        bits.append(_STATE_WORDS[state][0 if zh else 1])
    incident = extras.incident.get(r.nodeid)
    if incident:
        bits.append(f"#{incident}")
    if r.owners:  # a mobile number is shown masked: the group sees who, the mention does the paging
        shown = [shown_owner(o) for o in r.owners]
        bits.append(f"负责人 {'、'.join(shown)}" if zh else f"owner {', '.join(shown)}")
    if r.severity == "P0":  # the default levels are noise on every line; P0 is what makes people move
        bits.append("P0")
    return f"- **{r.service}** · {r.name}{sep}" + ("，" if zh else ", ").join(bits)


def render_first_screen(run: RunResult, lang: str, heading: str, *, redactor: Redactor | None = None,
                        extras: Extras | None = None, max_lines: int = FIRST_SCREEN_LINES,
                        pointer: str = "", trigger: str = "") -> str:
    """The first message: one str of at most `max_lines` '\n'-separated lines ending in '\n', no blank line,
    before any detail; masked with `redactor` as a whole. No I/O; raises no error of its own.

    Line 1 the verdict (heading), line 2 the failures per service and the run's size and time, line 3 why the
    message was sent (`trigger`: alerts.trigger_line's short form, when there is one: the on-call engineer
    acts from this screen and must tell a new failure from a reminder, a recovery or incomplete monitoring),
    then root-cause lines (storm, unreachable services), the top problems (service, interface, category, since
    when, state, owner), recoveries with their duration, '…and N more', and last one link (status page) or
    `pointer` (where the details are: next message / attached file). Problems are ranked by severity, then new
    before ongoing, then category order.
    """
    red = redactor or Redactor()
    ex = extras or Extras()
    zh = lang == "zh"
    stats = compute_stats(run)
    failed = [r for r in run.results if is_down(r)]  # down now: failed, circuit open, or not checked and known down
    per_service: dict[str, int] = {}
    for r in failed:
        per_service[r.service] = per_service.get(r.service, 0) + 1
    counts = ("，" if zh else ", ").join(f"{svc} {n}" for svc, n in sorted(per_service.items(), key=lambda x: -x[1]))
    when = times.short(run.started_at, run.started_at)
    head = [f"**{_one_line(heading)}**"]
    if zh:
        head.append((f"失败：{counts}；" if counts else "") + f"共 {stats.total} 个接口 · {when}")
    else:
        head.append((f"Failed: {counts}; " if counts else "") + f"{stats.total} interfaces · {when}")
    head += [_one_line(trigger)] if trigger else []
    tail = [f"[{'状态页' if zh else 'Status page'}]({ex.link})"] if ex.link else ([pointer] if pointer else [])
    room = max(1, max_lines - len(head) - 1)  # the last line: the link, or the notifier's pointer to the details
    body: list[str] = [f"> {_one_line(localize(line, lang))}" for line in ex.lead]
    body += [f"> {_one_line(line)}" for line in _service_notes(run, ex, lang)]  # maintenance, SLOW
    body += [f"- {line}" for line in _collapsed_lines(run, ex, lang)]  # storm / unreachable service, counted
    body += [f"> {line}" for line in _rate_limit_lines(run, lang)]  # the monitor throttled (429), not an outage
    body += [f"> {_one_line(line)}" for line in _cert_lines(run, ex, lang)]  # a warning, not a failure
    order = {c: i for i, c in enumerate(_category_order({_category_of(r) for r in failed}))}
    ranked = sorted((r for r in failed if r.nodeid not in ex.collapsed),
                    key=lambda r: (_SEVERITY_ORDER.get(r.severity, 1), _STATE_ORDER.get(ex.state.get(r.nodeid, ""), 3),
                                   order[_category_of(r)], r.service, r.name))
    problems = [_problem_line(r, lang, ex) for r in ranked]
    for service, name, seconds, incident in ex.recovered:
        lasted = (f"，故障持续 {duration_text(seconds, lang)}" if zh else f", the outage lasted "
                  f"{duration_text(seconds, lang)}") if seconds is not None else ""
        tag = f" #{incident}" if incident else ""
        problems.append(f"- **{service}** · {name}{'：已恢复' if zh else ': recovered'}{lasted}{tag}")
    lines = body + problems
    if len(lines) > room:
        shown = lines[: room - 1]
        more = len(lines) - len(shown)
        lines = shown + [f"…另有 {more} 项，见详情" if zh else f"…and {more} more in the details"]
    return red.text("\n".join(head + lines + tail) + "\n")


def _curl(r: InterfaceResult, red: Redactor) -> str | None:
    """The details message's short reproduce line, as inline code: reproduce.curl_command of the recorded request
    (already masked: the reader fills the secrets in) without routine headers, redirects not followed, the body
    cut at BODY_EXCERPT_BYTES characters. None when inline code cannot show it exactly (_exact_code)."""
    from .reproduce import curl_command

    headers = {k: v for k, v in (r.request_headers or {}).items() if k.lower() not in _ROUTINE_HEADERS}
    return _exact_code(curl_command(r.method or "GET", red.text(r.url), headers, r.request_body or None,
                                    redactor=red, environ={}, follow_redirects=False,
                                    body_shown=BODY_EXCERPT_BYTES))


def _exact_code(line: str) -> str | None:
    """`line` as inline code, or None when inline code cannot show it exactly: longer than _REPRODUCE_MAX, or
    holding a backtick or a line break. _code would turn those into quotes and blanks, and a changed line is a
    different command: a red team pasted one whose body held `make; touch …` and the shell ran `touch`. Such a
    line stays in the terminal and the JSON report."""
    if len(line) > _REPRODUCE_MAX or "`" in line or _one_line(line) != line:
        return None
    return _code(line)


def _reproduce_code(r: InterfaceResult, red: Redactor) -> str | None:
    """The interface's reproduce line (reproduce.curl_command, the terminal's and the JSON's) as inline code, or
    None (_exact_code)."""
    return _exact_code(red.text(r.reproduce)) if r.reproduce else None


def render_details(run: RunResult, lang: str, heading: str, *, redactor: Redactor | None = None,
                   extras: Extras | None = None) -> str:
    """The second message (or the attachment): per problem its reason, request, response excerpt and a
    reproduce line. The first screen's list is not repeated; request headers and file lines are left out
    (they do not help on call) except the location of a document error, which is what needs fixing.
    Returns Markdown ('\n' lines, ending in '\n'), masked with `redactor` as a whole; no size limit here
    (notify/ splits or attaches). No I/O; raises no error of its own."""
    red = redactor or Redactor()
    zh = lang == "zh"
    sep = _t("sep", lang)
    failed = [r for _, results in _grouped_failures(run, extras) for r in results]
    if not failed:
        return ""
    lines = [f"**{_one_line(heading)} · {'详情' if zh else 'details'}**"]
    for i, r in enumerate(failed, 1):
        lines += ["", f"**{i}. {r.service} · {r.name}** · {_label(_category_of(r), lang)}"]
        if r.reason:
            lines.append(f"> {_t('reason', lang)}{sep}{_reason(r, lang, red)}")
        if r.category == Category.INVALID_DOCUMENT.value and r.file:
            lines.append(f"- {_t('location', lang)}{sep}{_code(f'{r.file}:{r.line}' if r.line else r.file)}")
            continue
        target = f"{r.method} {red.text(r.url)}".strip()
        if target:
            lines.append(f"- {_t('request', lang)}{sep}{_code(target)}")
        if r.status is not None:
            resp = [f"{_t('status', lang)} {r.status}"]
            if r.elapsed_ms is not None:
                resp.append(_ms(r.elapsed_ms, lang))
            if r.response_body:
                resp.append(_code(excerpt(red.text(r.response_body), 200)))
            lines.append(f"- {_t('response', lang)}{sep}" + " · ".join(resp))
        if r.url:
            shown = _curl(r, red)
            if shown:
                lines.append(f"- {'复现' if zh else 'Reproduce'}{sep}{shown}")
    return red.text("\n".join(lines) + "\n")


def _md_problem(r: InterfaceResult, lang: str, red: Redactor, note: str = "") -> str:
    parts = [f"**{r.service}/{r.module} · {r.name}**"]
    if note:
        parts.insert(0, _font("warning", note))
    target = f"{r.method} {red.text(r.url)}".strip()
    if target:
        parts.append(_code(target))
    status = _t("circuit_note", lang) if r.circuit_open else _t("unchecked_note", lang) if r.known_down \
        else _status_word(r, lang)
    if status:
        parts.append(_font("warning", status))
    if r.elapsed_ms is not None:
        parts.append(_ms(r.elapsed_ms, lang))
    if r.attempts > 1:
        parts.append(_t("attempts", lang, n=r.attempts))
    line = "- " + " · ".join(parts)
    if r.reason:
        line += f" — {_reason(r, lang, red)}"
    return line


def _status_word(r: InterfaceResult, lang: str) -> str:
    """'状态 503', or '无响应' only when the request went out and nothing came back (never for a document
    error or a login that failed before the request)."""
    if r.status is not None:
        return f"{_t('status', lang)} {r.status}"
    if r.category in (Category.NETWORK.value, Category.TIMEOUT.value) and r.sub != "login":
        return _t("no_response", lang)
    return ""


# Headers every exchange has; listing them in a chat message only hides the ones that matter.
_ROUTINE_HEADERS = frozenset({"user-agent", "accept-encoding", "accept", "connection", "keep-alive", "date",
                              "server", "content-length", "transfer-encoding"})


def _md_headers(headers: dict[str, str], red: Redactor, received: bool = False) -> str:
    shown = {k: v for k, v in red.headers(headers, received).items() if k.lower() not in _ROUTINE_HEADERS}
    return "; ".join(_code(f"{k}: {v}") for k, v in shown.items())


def _md_details(index: int, r: InterfaceResult, lang: str, red: Redactor) -> list[str]:
    sep = _t("sep", lang)
    tag = _label(_category_of(r), lang) if lang == "zh" else _category_of(r)
    out = ["", f"### {index}. [{tag}] {r.service}/{r.module} · {r.name}"]
    if r.reason:
        out.append(f"> **{_t('reason', lang)}**{sep}{_reason(r, lang, red)}")
    code = "" if lang == "zh" else f" {_code(_category_of(r))}"
    out.append(f"- {_t('category', lang)}{sep}{_label(_category_of(r), lang)}{code}")
    if r.file:
        out.append(f"- {_t('location', lang)}{sep}{_code(f'{r.file}:{r.line}' if r.line else r.file)}")
    target = f"{r.method} {red.text(r.url)}".strip()
    if target:
        out.append(f"- {_t('request', lang)}{sep}{_code(target)}")
    if r.request_headers and _md_headers(r.request_headers, red):
        out.append(f"- {_t('req_headers', lang)}{sep}{_md_headers(r.request_headers, red)}")
    if r.request_body:
        # Mask before cutting: a cut literal secret would no longer match and its prefix would leak.
        out.append(f"- {_t('req_body', lang)}{sep}{_code(excerpt(red.text(r.request_body)))}")
    resp = [_t("circuit_note", lang)] if r.circuit_open else [_t("unchecked_note", lang)] if r.known_down \
        else [w for w in (_status_word(r, lang),) if w]
    if r.elapsed_ms is not None:
        resp.append(_ms(r.elapsed_ms, lang))
    if r.attempts > 1:
        resp.append(_t("attempts", lang, n=r.attempts))
    if resp:
        out.append(f"- {_t('response', lang)}{sep}" + " · ".join(resp))
    if r.response_headers and _md_headers(r.response_headers, red, True):
        out.append(f"- {_t('resp_headers', lang)}{sep}{_md_headers(r.response_headers, red, True)}")
    if r.response_body:
        out.append(f"- {_t('resp_body', lang)}{sep}{_code(excerpt(red.text(r.response_body)))}")
    shown = _reproduce_code(r, red)  # a cut or changed command would run a different request
    if shown:
        out.append(f"- {_t('reproduce', lang)}{sep}{shown}")
    return out


_REPRODUCE_MAX = 1000  # characters of a curl line shown in Markdown (WeCom messages are at most 4096 bytes)


def render_markdown(run: RunResult, lang: str = "zh", title: str | None = None, *,
                    redactor: Redactor | None = None, details: bool = True, extras: Extras | None = None,
                    max_problems: int | None = None) -> str:
    """Markdown limited to what WeCom renders. `details=False` drops the per-problem section (message size);
    `max_problems` makes the short summary sent beside a long report: that many problem lines, no details.
    Returns one str of '\n' lines ending in '\n', masked with `redactor` as a whole (default: a Redactor with no
    known secrets). Latencies in ms, times in the configured time zone (times.py). No I/O; raises no error of
    its own."""
    red = redactor or Redactor()
    stats = compute_stats(run)
    sep = _t("sep", lang)
    if stats.unchecked:  # never "all passed" while part of the pool was not checked
        overall = _font("warning", _t("incomplete", lang, n=stats.unchecked)
                        + (_t("incomplete_failed", lang, n=stats.failed) if stats.failed else ""))
    elif stats.failed:
        overall = _font("warning", _t("n_failed", lang, n=stats.failed))
    elif stats.passed:
        overall = _font("info", _t("all_passed", lang))
    else:
        overall = _font("comment", _t("nothing_ran", lang))
    failed = f"- {_t('failed', lang)} {_font('warning' if stats.failed else 'comment', str(stats.failed))}"
    if stats.by_category:
        failed += f" ({_breakdown(stats, lang)})"
    failed += "".join(f" · {_font('warning', text) if stressed else text}"
                      for text, stressed in _down_notes(stats, lang))
    unchecked_skips = stats.unchecked - stats.unchecked_down
    lines = [
        f"# {title or _t('title', lang) + ' · ' + run.env}",
        f"**{_t('result', lang)}**{sep}{overall}",
        *([extras.trigger] if extras and extras.trigger else []),
        "",
        f"> {_window(run, lang)}",
        f"> {_t('env', lang)} {_code(run.env)}"
        + (f" · {_t('proxy', lang)} {_code(red.text(run.proxy))}" if run.proxy else ""),
        "",
        f"## {_t('overview', lang)}",
        f"- {_t('total', lang)} **{stats.total}**",
        f"- {_t('passed', lang)} {_font('info', str(stats.passed))}",
        failed,
        f"- {_t('skipped', lang)} {_font('comment', str(stats.skipped))}"
        + (f" · {_font('warning', _t('unchecked_count', lang, n=unchecked_skips))}" if unchecked_skips else "")
        + (f" · {_t('flaky', lang)} {stats.flaky}" if stats.flaky else "")
        + (f" · {_t('slow', lang)} {stats.slow}" if stats.slow else ""),
        f"- {_t('rate', lang)} **{_rate(stats.success_rate, lang)}**",
        f"- {_latency(stats, lang)}",
    ]
    lead = [*extras.lead, *_service_leads(run, extras, mine=True)] if extras else []
    lead += _service_notes(run, extras, lang)
    if extras and extras.link:
        lead.insert(0, f"[{'状态页' if lang == 'zh' else 'Status page'}]({extras.link})")
    if lead:
        lines += [""] + [f"> {line}" for line in lead]
    throttled = _rate_limit_lines(run, lang)
    if throttled:
        lines += [""] + [f"> {_font('warning', line)}" for line in throttled]
    groups = _grouped_failures(run, extras)
    grouped = _collapsed_lines(run, extras, lang)
    notes = extras.notes if extras else {}
    if groups or grouped:
        lines += ["", f"## {_t('problems', lang)}"]
        total = sum(len(results) for _, results in groups)
        if max_problems is not None and total > max_problems:
            # A summary that lists only the first N: the shape of the whole first (issue 14).
            per: dict[str, int] = {}
            for r in run.results:
                if is_down(r):
                    per[r.service] = per.get(r.service, 0) + 1
            lines.append(f"**{_t('by_service', lang)}**{sep}" + "; ".join(
                f"{svc} {n}" for svc, n in sorted(per.items(), key=lambda p: (-p[1], p[0]))))
        lines += [f"- {line}" for line in grouped]
        budget = total if max_problems is None else max_problems
        for category, results in groups:
            if budget <= 0:
                break
            code = "" if lang == "zh" else f" {_code(category)}"
            lines += ["", f"### {_label(category, lang)}{code} ({len(results)})"]
            lines += [_md_problem(r, lang, red, notes.get(r.nodeid, "")) for r in results[:budget]]
            budget -= len(results)
        if max_problems is not None and total > max_problems:
            lines += ["", _t("more", lang, n=total - max_problems)]
    if max_problems is not None:
        details = False
    def capped(items: list[str]) -> list[str]:
        # The short summary stays short: every list is cut to max_problems lines and the rest counted.
        if max_problems is None or len(items) <= max(max_problems, 1):
            return items
        keep = max(max_problems, 1)
        return [*items[:keep], _t("more_short", lang, n=len(items) - keep)]

    flaky = _flaky(run)
    if flaky:
        lines += ["", f"## {_t('flaky', lang)} ({len(flaky)})"]
        lines += capped([f"- {r.service}/{r.module} · {r.name} · {_t('attempts', lang, n=r.attempts)}"
                         for r in flaky])
    slow = _slow(run)
    if slow:
        lines += ["", f"## {_t('slow', lang)} `slow` ({len(slow)})"]
        lines += [f"- {_slow_line(r, lang)}" for r in slow]
    skipped = _skipped(run)
    if skipped:
        lines += ["", f"## {_t('skipped', lang)} ({len(skipped)})"]
        lines += capped([f"- {r.service}/{r.module} · {r.name}"
                         + (f" — {_reason(r, lang, red)}" if r.reason else "") for r in skipped])
    for heading, body in _sections(run, extras, lang, markdown=True):
        lines += ["", f"## {heading}"] + capped([f"- {line}" for line in body])
    if details and groups:
        lines += ["", f"## {_t('details', lang)}"]
        ordered = [r for _, results in groups for r in results]
        for i, r in enumerate(ordered, 1):
            lines += _md_details(i, r, lang, red)
    return red.text("\n".join(lines) + "\n")


# -- json ----------------------------------------------------------------------------------------------
def _json_record(r: InterfaceResult, red: Redactor) -> dict[str, Any]:
    data = r.to_dict()
    data["flaky"] = r.outcome == Outcome.PASSED and r.attempts > 1
    data["down"] = is_down(r)  # failed now, or known down behind an open circuit
    # The record is the tool's own: its field names ("key", "sub") are never judged as secret-looking names,
    # only what each field holds is masked. Header dicts need header rules (Authorization is not a key word);
    # the other fields are masked as text and, for user data nested in them, by name too.
    headers = {"request_headers": red.headers(r.request_headers),
               "response_headers": red.headers(r.response_headers, received=True)}
    return {k: headers[k] if k in headers else red.value(v) for k, v in data.items()}


def render_json(run: RunResult, *, redactor: Redactor | None = None, extras: Extras | None = None) -> str:
    """The run as a JSON document (str, UTF-8 text): {"env", "proxy" (or null), "started_at" /
    "finished_at" (ISO 8601 with UTC offset, seconds), "started_at_epoch" / "finished_at_epoch" (Unix seconds),
    "duration_s" (seconds, 3 decimals), "stats" (compute_stats' fields), "rate_limited" ({host: {"responses",
    "concurrency"}}), "down_now" (sorted interface keys, circuit-open ones included), "results" (one record per
    result, sorted by service, module, name, nodeid)}, and with `extras` "certificates" (one entry per HTTPS
    origin: certs.CertStatus.to_dict, `level` ok / warning / failing, plus `message`). Records hold the
    InterfaceResult fields (plus `flaky`), so InterfaceResult.from_dict reads them back. Every text is masked
    with `redactor`. Layout: indented 2, each result record on one line (see iter_json). No I/O; raises no
    error of its own."""
    return "".join(iter_json(run, redactor=redactor, extras=extras))


_RESULTS_SLOT = "\x00results\x00"  # stands in for the records while the envelope is laid out


def iter_json(run: RunResult, *, redactor: Redactor | None = None, extras: Extras | None = None,
              coverage: dict[str, Any] | None = None) -> Iterator[str]:
    """render_json's document in pieces, one result record at a time (atomicfile.atomic_write takes them), so
    a 10 000-interface run never holds all masked records and the whole text at once (its peak was 68 MB).
    The envelope is indented 2; each record is one line (json's C encoder: fast, and one line per interface
    for grep and diff). `coverage` (coverage.to_dict, --apimon-coverage) is added as "coverage", masked."""
    red = redactor or Redactor()
    doc = {
        "env": red.text(run.env),
        "proxy": red.text(run.proxy) if run.proxy else None,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "started_at_epoch": run.started_at,
        "finished_at_epoch": run.finished_at,
        "duration_s": round(run.duration, 3),
        "stats": asdict(compute_stats(run)),
        "rate_limited": {red.text(host): {"responses": n, "concurrency": run.host_caps.get(host)}
                         for host, n in sorted(run.rate_limited.items())},
        # What is down now, the circuit-open ones included (issue 14): keys as in the state database.
        "down_now": sorted({r.key or f"{r.service}/{r.name}" for r in run.results if is_down(r)}),
        # Services inside a maintenance window this run -> the window (their failures were not alerted).
        "maintenance": {red.text(svc): red.text(r.maintenance) for svc, r in
                        sorted({r.service: r for r in run.results if r.maintenance}.items())},
        "results": _RESULTS_SLOT,
    }
    if extras is not None:
        doc["certificates"] = [red.value({**c.to_dict(), "message": c.describe(run.finished_at)})
                               for c in extras.certificates]
    if coverage is not None:
        doc["coverage"] = red.value(coverage)
    head, tail = json.dumps(doc, ensure_ascii=False, indent=2).split(json.dumps(_RESULTS_SLOT), 1)
    yield head
    results = sorted(run.results, key=_sort_key)
    if not results:
        yield "[]"
    for i, r in enumerate(results):
        yield ("[\n    " if i == 0 else ",\n    ") + json.dumps(_json_record(r, red), ensure_ascii=False)
    if results:
        yield "\n  ]"
    yield tail

