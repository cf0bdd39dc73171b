"""Report rendering: RunResult -> terminal text, Markdown, JSON. Pure functions; output is masked.

Every renderer masks field by field (headers with header rules, bodies as text) and the text renderers
also run a final pass over the whole output, so a secret planted anywhere in a result never leaves.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .categories import ORDER, Category, Outcome
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
    "by_service": ("按服务", "By service"),
}


@dataclass
class Extras:
    """What the run's memory adds to a report (alert policy, storms, login failures), kept generic here."""

    lead: list[str] = field(default_factory=list)  # lines right after the overview (diagnoses, root causes)
    notes: dict[str, str] = field(default_factory=dict)  # nodeid -> note on its problem line (NEW, ONGOING …)
    collapsed: dict[str, str] = field(default_factory=dict)  # nodeid -> group line: counted, not listed
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (heading, lines) at the end
    trigger: str = ""  # why a message is sent (alerts.trigger_line), right under the result line


def _t(key: str, lang: str, **kw: Any) -> str:
    s = _T[key][0 if lang == "zh" else 1]
    return s.format(**kw) if kw else s


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


def is_down(r: InterfaceResult) -> bool:
    """Failed now, or skipped behind an open circuit (its last checks failed): down in every count (issue 14)."""
    return r.outcome == Outcome.FAILED or (r.outcome == Outcome.SKIPPED and r.circuit_open)


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
    passed = sum(1 for r in run.results if r.outcome == Outcome.PASSED)
    failed_results = [r for r in run.results if is_down(r)]
    skipped = sum(1 for r in run.results if r.outcome == Outcome.SKIPPED and not r.circuit_open)
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
        circuit_open=sum(1 for r in failed_results if r.outcome == Outcome.SKIPPED),
        slow=len(_slow(run)),
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
    """One line per collapsed group with the number of interfaces it stands for."""
    if not extras or not extras.collapsed:
        return []
    counts: dict[str, int] = {}
    for r in run.results:
        label = extras.collapsed.get(r.nodeid)
        if label and is_down(r):
            counts[label] = counts.get(label, 0) + 1
    unit = "个接口" if lang == "zh" else "interfaces"
    return [f"{label} ({n} {unit})" for label, n in sorted(counts.items())]


def _slow(run: RunResult) -> list[InterfaceResult]:
    return sorted((r for r in run.results if r.outcome == Outcome.PASSED and r.slow), key=_sort_key)


def _slow_line(r: InterfaceResult, lang: str) -> str:
    where = f"{r.service}/{r.module} · {r.name}"
    if r.elapsed_ms is None or r.warn_ms is None:
        return where
    return f"{where} · {_t('slow_line', lang, ms=f'{r.elapsed_ms:.0f}', warn=f'{r.warn_ms:g}')}"


def _skipped(run: RunResult) -> list[InterfaceResult]:
    return sorted((r for r in run.results if r.outcome == Outcome.SKIPPED and not r.circuit_open), key=_sort_key)


def _label(category: str, lang: str) -> str:
    try:
        return Category(category).label(lang)
    except ValueError:
        return category


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _ms(v: float | None, lang: str) -> str:
    return f"{v:.0f} ms" if v is not None else _t("none", lang)


def _rate(v: float | None, lang: str) -> str:
    return f"{v * 100:.1f}%" if v is not None else _t("none", lang)


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _breakdown(stats: Stats) -> str:
    return ", ".join(f"{c} {n}" for c, n in stats.by_category.items())


def _window(run: RunResult, lang: str) -> str:
    return (f"{_t('start', lang)} {_local(run.started_at)} · {_t('end', lang)} {_local(run.finished_at)}"
            f" · {_t('duration', lang)} {run.duration:.1f} s")


def _latency(stats: Stats, lang: str) -> str:
    return (f"{_t('latency', lang)} P50 {_ms(stats.p50_ms, lang)} · P95 {_ms(stats.p95_ms, lang)}"
            f" · {_t('max', lang)} {_ms(stats.max_ms, lang)}")


def excerpt(text: str, limit: int = BODY_EXCERPT_BYTES) -> str:
    """At most `limit` UTF-8 bytes of text, never splitting a character; '…' marks a cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore") + "…"


# -- terminal ------------------------------------------------------------------------------------------
def render_terminal(run: RunResult, lang: str = "zh", *, redactor: Redactor | None = None,
                    extras: Extras | None = None) -> str:
    red = redactor or Redactor()
    stats = compute_stats(run)
    failed = f"{_t('failed', lang)} {stats.failed}"
    if stats.by_category:
        failed += f" ({_breakdown(stats)})"
    if stats.circuit_open:
        failed += f" [{_t('circuit_open', lang, n=stats.circuit_open)}]"
    lines = [
        _window(run, lang),
        f"{_t('env', lang)} {run.env}" + (f" · {_t('proxy', lang)} {red.text(run.proxy)}" if run.proxy else ""),
        " · ".join([f"{_t('total', lang)} {stats.total}", f"{_t('passed', lang)} {stats.passed}", failed,
                    f"{_t('skipped', lang)} {stats.skipped}",
                    f"{_t('rate', lang)} {_rate(stats.success_rate, lang)}"]),
        _latency(stats, lang),
    ]
    if extras and extras.lead:
        lines += ["", *extras.lead]
    throttled = _rate_limit_lines(run, lang)
    if throttled:
        lines += ["", *throttled]
    grouped = _collapsed_lines(run, extras, lang)
    if grouped:
        lines += [""] + [f"  {line}" for line in grouped]
    for category, results in _grouped_failures(run, extras):
        lines += ["", f"[{category}] {_label(category, lang)} ({len(results)})"]
        for r in results:
            line = _one_line(r.headline(lang))
            if extras and r.nodeid in extras.notes:
                line = f"{extras.notes[r.nodeid]} {line}"
            # headline() only shows the reason when there is no status; the reason is what tells a 200
            # "unexpected" apart, so append it.
            if r.status is not None and r.reason and _one_line(r.reason) not in line:
                line += f" — {_one_line(r.reason)}"
            if r.attempts > 1:
                line += f" · {_t('attempts', lang, n=r.attempts)}"
            lines.append(f"  {line}")
    flaky = _flaky(run)
    if flaky:
        lines += ["", f"[flaky] {_t('flaky', lang)} ({len(flaky)})"]
        lines += [f"  {_one_line(r.headline(lang))} · {_t('attempts', lang, n=r.attempts)}" for r in flaky]
    slow = _slow(run)
    if slow:
        lines += ["", f"[slow] {_t('slow', lang)} ({len(slow)})"]
        lines += [f"  {_slow_line(r, lang)}" for r in slow]
    skipped = _skipped(run)
    if skipped:
        lines += ["", f"{_t('skipped', lang)} ({len(skipped)})"]
        for r in skipped:
            line = f"{r.service}/{r.module} · {r.name}"
            if r.reason:
                line += f" — {_one_line(r.reason)}"
            lines.append(f"  {line}")
    for heading, body in extras.sections if extras else []:
        lines += ["", heading] + [f"  {line}" for line in body]
    return red.text("\n".join(lines) + "\n")


# -- markdown ------------------------------------------------------------------------------------------
def _code(s: str) -> str:
    """Inline code that survives any content: one line, no backticks (WeCom has no escaping)."""
    return "`" + _one_line(s).replace("`", "'") + "`"


def _font(color: str, s: str) -> str:
    return f'<font color="{color}">{s}</font>'


def _md_problem(r: InterfaceResult, lang: str, red: Redactor, note: str = "") -> str:
    parts = [f"**{r.service}/{r.module} · {r.name}**"]
    if note:
        parts.insert(0, _font("warning", note))
    target = f"{r.method} {red.text(r.url)}".strip()
    if target:
        parts.append(_code(target))
    if r.circuit_open:
        status = _t("circuit_note", lang)
    else:
        status = f"{_t('status', lang)} {r.status}" if r.status is not None else _t("no_response", lang)
    parts.append(_font("warning", status))
    if r.elapsed_ms is not None:
        parts.append(_ms(r.elapsed_ms, lang))
    if r.attempts > 1:
        parts.append(_t("attempts", lang, n=r.attempts))
    line = "- " + " · ".join(parts)
    if r.reason:
        line += f" — {_one_line(red.text(r.reason))}"
    return line


# Headers every exchange has; listing them in a chat message only hides the ones that matter.
_ROUTINE_HEADERS = frozenset({"user-agent", "accept-encoding", "accept", "connection", "keep-alive", "date",
                              "server", "content-length", "transfer-encoding"})


def _md_headers(headers: dict[str, str], red: Redactor, received: bool = False) -> str:
    shown = {k: v for k, v in red.headers(headers, received).items() if k.lower() not in _ROUTINE_HEADERS}
    return "; ".join(_code(f"{k}: {v}") for k, v in shown.items())


def _md_details(index: int, r: InterfaceResult, lang: str, red: Redactor) -> list[str]:
    sep = _t("sep", lang)
    out = ["", f"### {index}. [{_category_of(r)}] {r.service}/{r.module} · {r.name}"]
    if r.reason:
        out.append(f"> **{_t('reason', lang)}**{sep}{_one_line(red.text(r.reason))}")
    out.append(f"- {_t('category', lang)}{sep}{_label(_category_of(r), lang)} {_code(_category_of(r))}")
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
    if r.circuit_open:
        resp = [_t("circuit_note", lang)]
    else:
        resp = [f"{_t('status', lang)} {r.status}" if r.status is not None else _t("no_response", lang)]
    if r.elapsed_ms is not None:
        resp.append(_ms(r.elapsed_ms, lang))
    if r.attempts > 1:
        resp.append(_t("attempts", lang, n=r.attempts))
    out.append(f"- {_t('response', lang)}{sep}" + " · ".join(resp))
    if r.response_headers and _md_headers(r.response_headers, red, True):
        out.append(f"- {_t('resp_headers', lang)}{sep}{_md_headers(r.response_headers, red, True)}")
    if r.response_body:
        out.append(f"- {_t('resp_body', lang)}{sep}{_code(excerpt(red.text(r.response_body)))}")
    if r.reproduce:
        # A cut command would run a different request: a long one is left to the JSON report and the terminal.
        line = red.text(r.reproduce)
        if len(line) <= _REPRODUCE_MAX:
            out.append(f"- {_t('reproduce', lang)}{sep}{_code(line)}")
    return out


_REPRODUCE_MAX = 1000  # characters of a curl line shown in Markdown (WeCom messages are at most 4096 bytes)


def render_markdown(run: RunResult, lang: str = "zh", title: str | None = None, *,
                    redactor: Redactor | None = None, details: bool = True, extras: Extras | None = None,
                    max_problems: int | None = None) -> str:
    """Markdown limited to what WeCom renders. `details=False` drops the per-problem section (message size);
    `max_problems` makes the short summary sent beside a long report: that many problem lines, no details."""
    red = redactor or Redactor()
    stats = compute_stats(run)
    sep = _t("sep", lang)
    if stats.failed:
        overall = _font("warning", _t("n_failed", lang, n=stats.failed))
    elif stats.passed:
        overall = _font("info", _t("all_passed", lang))
    else:
        overall = _font("comment", _t("nothing_ran", lang))
    failed = f"- {_t('failed', lang)} {_font('warning' if stats.failed else 'comment', str(stats.failed))}"
    if stats.by_category:
        failed += f" ({_breakdown(stats)})"
    if stats.circuit_open:
        failed += f" · {_t('circuit_open', lang, n=stats.circuit_open)}"
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
        + (f" · {_t('flaky', lang)} {stats.flaky}" if stats.flaky else "")
        + (f" · {_t('slow', lang)} {stats.slow}" if stats.slow else ""),
        f"- {_t('rate', lang)} **{_rate(stats.success_rate, lang)}**",
        f"- {_latency(stats, lang)}",
    ]
    if extras and extras.lead:
        lines += [""] + [f"> {line}" for line in extras.lead]
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
            lines += ["", f"### {_label(category, lang)} {_code(category)} ({len(results)})"]
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
        lines += ["", f"## {_t('flaky', lang)} `flaky` ({len(flaky)})"]
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
                         + (f" — {_one_line(red.text(r.reason))}" if r.reason else "") for r in skipped])
    for heading, body in extras.sections if extras else []:
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
    # Header dicts need header rules (Authorization is not a key word), the rest generic value masking.
    data["request_headers"] = red.headers(r.request_headers)
    data["response_headers"] = red.headers(r.response_headers, received=True)
    return red.value(data)


def render_json(run: RunResult, *, redactor: Redactor | None = None) -> str:
    """Records hold the InterfaceResult fields (plus `flaky`), so InterfaceResult.from_dict reads them back."""
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
        "results": [_json_record(r, red) for r in sorted(run.results, key=_sort_key)],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)

