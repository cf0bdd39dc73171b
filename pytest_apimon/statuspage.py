"""A static, self-contained HTML status page rendered from the state store after each run.

One file, inline CSS and a few lines of inline JS, no external resource (intranets are often offline),
so any web server, CI artifact store or object storage can serve it. Sized for 1000 interfaces and a year
of history (issue 18: <= 3 MB): the history bar shows the last N runs of the raw tier individually;
availability over 24 h / 7 d / 30 d / 90 d / 1 y, the 90-day daily bar and the latency sparkline come from
the rollups (state.py getters); older runs are never listed. The daily bar travels as one short string per
interface that the inline script draws. Read-only (WAL readers do not block the writer).
"""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import times
from .categories import Category, Outcome
from .metrics import atomic_write_text
from .policy import DOWN, OPEN, InterfaceState, Verdict, interface_key
from .redact import Redactor
from .report import compute_stats, is_down
from .results import InterfaceResult, RunResult
from .rollup import HOUR, hour_floor
from .state import DAY, Availability, StateStore

SPARK_DAYS = 7
BAR_DAYS = 90
# The availability columns (issue 18): name -> window in seconds; "1y" is the SLA view.
WINDOWS = {"a24": DAY, "a7": 7 * DAY, "a30": 30 * DAY, "a90": 90 * DAY, "a1y": 365 * DAY}
SPARK_BUCKETS = 28  # 6-hour buckets over 7 days
AVAIL_WARN, AVAIL_BAD = 0.99, 0.95

# Short class names keep 50 000 bar cells small; colours follow the usual traffic-light reading.
_CELL_CLASS = {c.value: f"c{i}" for i, c in enumerate(Category)}
_CELL_COLOR = {
    "server_error": "#cf222e", "not_found": "#8c4b1f", "unavailable": "#a40e26", "rate_limited": "#9a6700",
    "timeout": "#e16f24",
    "network": "#8250df", "auth": "#bf3989", "forbidden": "#bf3989", "unexpected": "#d4a72c",
    "invalid_document": "#57606a",
}
_T = {
    "zh": dict(title="接口状态", ok="全部正常", warn="部分接口异常", bad="{n} 个接口故障", storm="网络风暴",
               last_run="最近一次巡检", window="时间窗口", duration="耗时", total="总数", passed="通过",
               failed="失败", skipped="跳过", rate="成功率", incidents="持续中的告警", circuits="熔断中的接口",
               none="无", interface="接口", state="状态", since="开始于", runs="连续次数", last="最近失败",
               open_since="熔断开始", next_probe="下次探测", history="最近 {n} 次", avail24="24小时",
               avail7="7天", avail30="30天", avail90="90天", avail1y="1年",
               days="最近 {n} 天（每日可用率）", p95="P95 延迟（7天）", search="搜索接口…", only="只看异常",
               nodata="无数据",
               retried="{n} 次尝试", down="故障", flapping="抖动", recovering="恢复中", pending="待确认",
               generated="生成于", tz="时区", interfaces="{n} 个接口", problems="{n} 个异常", legend="图例",
               env="环境"),
    "en": dict(title="API status", ok="All systems operational", warn="Some interfaces have problems",
               bad="{n} interfaces down", storm="Network storm", last_run="Last run", window="Window",
               duration="duration", total="total", passed="passed", failed="failed", skipped="skipped",
               rate="success", incidents="Ongoing incidents", circuits="Open circuits", none="none",
               interface="Interface", state="State", since="Since", runs="Runs", last="Last failure",
               open_since="Open since", next_probe="Next probe", history="last {n} runs", avail24="24 h",
               avail7="7 d", avail30="30 d", avail90="90 d", avail1y="1 y",
               days="last {n} days (daily availability)", p95="P95 latency (7 d)", search="Filter interfaces…",
               only="Problems only",
               nodata="no data", retried="{n} attempts", down="down", flapping="flapping",
               recovering="recovering", pending="pending", generated="Generated", tz="time zone",
               interfaces="{n} interfaces", problems="{n} with problems", legend="Legend", env="env"),
}
# Degraded (expect.warn_ms): passed but slow in the latest run.
_T["zh"].update(slow="响应慢", slow_title="{ms} ms，超过 warn_ms {warn} ms")
_T["en"].update(slow="slow", slow_title="{ms} ms, over warn_ms {warn} ms")


@dataclass
class _Row:
    result: InterfaceResult
    key: str
    cells: list[str] = field(default_factory=list)
    problem: bool = False


def write_status_page(path: str | Path, page: str) -> Path:
    """Atomic replace: a web server never serves half a page."""
    return atomic_write_text(path, page)


def render_status_page(store: StateStore, env: str, run: RunResult, verdict: Verdict | None, *, lang: str = "zh",
                       title: str | None = None, history_runs: int = 50, now: float | None = None,
                       redactor: Redactor | None = None) -> str:
    """The page for `env` after `run` (already recorded in `store`). Interfaces are those of `run`."""
    t = _T["zh" if lang == "zh" else "en"]
    now = run.finished_at if now is None else now
    red = (redactor or Redactor()).text
    esc = html.escape
    states = verdict.states if verdict is not None else store.load_states(env)
    runs = store.recent_runs(env, history_runs)
    bar_tokens = store.bar_tokens([rid for rid, _ in runs], _CELL_CLASS)
    keys = [interface_key(r) for r in run.results]
    avail = store.availability_windows(env, now=now, windows=WINDOWS)
    day_starts, days = store.daily_history(env, days=BAR_DAYS, now=now)
    # On an hour boundary, ending with the current hour: hourly rollups fall into whole buckets.
    spark_since = hour_floor(now) + HOUR - SPARK_DAYS * DAY
    spark = store.p95_buckets(env, since=spark_since, width=SPARK_DAYS * DAY / SPARK_BUCKETS)
    run_label = {rid: time.strftime("%m-%d %H:%M", time.localtime(ts)) for rid, ts in runs}

    payloads: list[str] = []
    nonce = secrets.token_hex(4)  # placeholders no document text can contain by chance

    def payload(text: str) -> str:
        payloads.append(esc(text))
        return f"\x00{nonce}{len(payloads) - 1}\x00"

    rows: dict[str, dict[str, list[_Row]]] = {}
    for r, key in sorted(zip(run.results, keys, strict=True),
                         key=lambda p: (p[0].service, p[0].module, p[0].name)):
        # One token per run (state.bar_tokens: `class:status:ms:attempts:sub`); the page script draws the cells
        # and their titles: 50 000 `<i title=…>` elements would make the page several MB and slow to mask.
        item = _Row(r, key, bar_tokens.get(key) or ["-"] * len(runs))
        st = states.get(key)
        item.problem = is_down(r) or (st is not None and (st.status == DOWN or st.breaker == OPEN
                                                                      or st.flapping))
        rows.setdefault(r.service, {}).setdefault(r.module, []).append(item)

    # -- banner, last run, incidents, circuits
    failed_now = [r for r in run.results if is_down(r)]  # circuit-open ones are down too (issue 14)
    down = [s for s in states.values() if s.status == DOWN]
    circuits = sorted((s for s in states.values() if s.breaker == OPEN), key=lambda s: s.key)
    if verdict is not None and verdict.storm is not None:
        level, headline = "bad", f"{t['storm']}{'：' if lang == 'zh' else ': '}{verdict.storm.describe(lang)}"
    elif down:
        level, headline = "bad", t["bad"].format(n=len(down))
    elif failed_now or circuits:
        level, headline = "warn", t["warn"]
    else:
        level, headline = "ok", t["ok"]
    page_title = title or f"{t['title']} · {env}"
    stats = compute_stats(run)
    passed = stats.passed
    rate = f"{stats.success_rate * 100:.1f}%" if stats.success_rate is not None else "-"
    out: list[str] = [
        f'<!DOCTYPE html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(page_title)}</title><style>{_CSS}{_cell_css(t)}</style></head><body><main>",
        f"<h1>{esc(page_title)}</h1>",
        f'<div class="banner b-{level}" id="banner">{esc(headline)}</div>',
        f'<section class="card" id="last-run"><h2>{t["last_run"]}</h2><p>{t["env"]} <b>{esc(env)}</b> · '
        f'{t["window"]} {_fmt(run.started_at)} – {_fmt(run.finished_at)} ({t["duration"]} {run.duration:.1f} s)</p>'
        f'<p class="totals"><span>{t["total"]} <b>{len(run.results)}</b></span>'
        f'<span class="t-ok">{t["passed"]} <b>{passed}</b></span>'
        f'<span class="t-bad">{t["failed"]} <b>{len(failed_now)}</b></span>'
        f'<span>{t["skipped"]} <b>{stats.skipped}</b></span>'
        f'<span>{t["rate"]} <b>{rate}</b></span></p></section>',
    ]
    by_key = dict(zip(keys, run.results, strict=True))
    incidents = sorted((s for s in states.values() if _incident(s)), key=lambda s: (_incident_rank(s), s.key))
    # The newest failure of every incident not failing in this run, however long ago (not only in the bar).
    older = store.last_failures(env, [s.key for s in incidents
                                      if by_key.get(s.key) is None or by_key[s.key].outcome != Outcome.FAILED])
    out.append(f'<section class="card" id="incidents"><h2>{t["incidents"]} ({len(incidents)})</h2>')
    if incidents:
        out.append(f'<div class="scroll"><table><tr><th>{t["interface"]}</th><th>{t["state"]}</th>'
                   f'<th>{t["since"]}</th><th>{t["runs"]}</th><th>{t["last"]}</th></tr>')
        for s in incidents:
            now_r = by_key.get(s.key)
            last = ""
            if now_r is not None and now_r.outcome == Outcome.FAILED:
                r = now_r
                last = _cat_label(r.category or "unexpected", lang) + (f" · {r.status}" if r.status else "")
                last += f" · {red(r.reason)}" if r.reason else ""
            elif s.key in older:  # skipped (open circuit) or passing now: its newest recorded failure
                row = older[s.key]
                when = time.strftime("%m-%d %H:%M", time.localtime(row.started_at))
                last = f"{when} · {_cat_label(row.category or 'unexpected', lang)}"
                last += f" · {row.status}" if row.status else ""
            kind = _incident(s)
            out.append(f'<tr class="inc-{kind}"><td>{esc(s.key)}</td><td>{t[kind]}</td>'
                       f'<td>{_fmt(s.down_since or s.failing_since)}</td><td>{s.consecutive_failures or "-"}</td>'
                       f'<td>{esc(last)}</td></tr>')
        out.append("</table></div>")
    else:
        out.append(f'<p class="muted">{t["none"]}</p>')
    out.append(f'</section><section class="card" id="circuits"><h2>{t["circuits"]} ({len(circuits)})</h2>')
    if circuits:
        out.append(f'<div class="scroll"><table><tr><th>{t["interface"]}</th><th>{t["open_since"]}</th>'
                   f'<th>{t["next_probe"]}</th></tr>')
        out.extend(f"<tr><td>{esc(s.key)}</td><td>{_fmt(s.open_since)}</td><td>{_fmt(s.next_probe_at)}</td></tr>"
                   for s in circuits)
        out.append("</table></div>")
    else:
        out.append(f'<p class="muted">{t["none"]}</p>')
    out.append("</section>")

    # -- services and modules
    legend = "".join(f'<span><i class={cls}></i>{_cat_label(cat, lang)}</span>' for cat, cls in _CELL_CLASS.items())
    out.append(f'<div class="tools"><input id="q" type="search" placeholder="{t["search"]}" aria-label="search">'
               f'<label><input id="p" type="checkbox"> {t["only"]}</label></div>'
               f'<div class="legend" aria-label="{t["legend"]}"><span><i class=o></i>{t["passed"]}</span>'
               f'<span><i class=r></i>{t["retried"].format(n="2+")}</span>{legend}'
               f'<span><i class=s></i>{t["skipped"]}</span><span><i></i>{t["nodata"]}</span></div>')
    head = (f'<div class="row hdr"><span class="nm">{t["interface"]}</span><span class="bar-h">'
            f'{t["history"].format(n=len(runs))}</span>'
            + "".join(f'<span class="{w}">{t["avail" + w[1:]]}</span>' for w in WINDOWS)
            + f'<span class="sp">{t["p95"]}</span><span class="days-h">{t["days"].format(n=BAR_DAYS)}</span></div>')
    open_all = len(run.results) <= 300  # a big pool opens only the services with problems
    for service, modules in rows.items():
        items = [i for m in modules.values() for i in m]
        bad = sum(i.problem for i in items)
        svc_avail = {w: _sum_avail(avail[w].get(i.key) for i in items) for w in WINDOWS}
        is_open = " open" if open_all or bad else ""
        out.append(f'<details class="svc" id="svc-{esc(service)}"{is_open}><summary><b>{esc(service)}</b> '
                   f'<span class="muted">{t["interfaces"].format(n=len(items))}</span>'
                   + (f' <span class="pill bad">{t["problems"].format(n=bad)}</span>' if bad else "")
                   + "".join(f' <span class="pct {_avail_cls(a)}" title="{_checks(a)}">{t["avail" + w[1:]]} '
                             f'{_pct(a)}</span>' for w, a in svc_avail.items())
                   + f"</summary>{head}")
        for module, module_rows in modules.items():
            out.append(f'<h3 class="mod">{esc(module)}</h3>')
            for i in module_rows:
                r = i.result
                search = f"{service}/{module}/{r.name}".lower()
                method = f'<span class="m">{esc(r.method)}</span> ' if r.method else ""
                status = (f' <span class="pill bad">{_cat_label(r.category or "unexpected", lang)}</span>'
                          if r.outcome == Outcome.FAILED else "")
                if r.outcome == Outcome.PASSED and r.slow:
                    tip = t["slow_title"].format(ms=f"{r.elapsed_ms or 0:.0f}", warn=f"{r.warn_ms or 0:g}")
                    status += f' <span class="pill slow" title="{esc(tip)}">{t["slow"]}</span>'
                out.append(f'<div class="row{" bad" if i.problem else ""}" data-k="{esc(search)}">'
                           f'<span class="nm">{method}{esc(r.name)}{status}</span>'
                           f'<span class="bar" data-b="{payload(" ".join(i.cells))}"></span>'
                           + "".join(_avail_cell(w, avail[w].get(i.key)) for w in WINDOWS)
                           + f'<span class="sp">{_sparkline(spark.get(i.key, {}), lang)}</span>'
                           f'<span class="days" data-d="{payload(_day_code(days.get(i.key)))}"></span></div>')
        out.append("</details>")
    offset = time.strftime("%z", time.localtime(now))
    labels = [time.strftime("%Y-%m-%d", time.localtime(d)) for d in day_starts]
    cell_labels = {"nodata": t["nodata"], "skipped": t["skipped"], "passed": t["passed"], "retried": t["retried"],
                   **{cls: _cat_label(cat, lang) for cat, cls in _CELL_CLASS.items()}}
    out.append(f'<footer class="muted">{t["generated"]} {_fmt(now)} · {t["tz"]} UTC{offset[:3]}:{offset[3:]} · '
               f'pytest-apimon</footer></main><div id="tip" hidden></div>'
               f'<script>var APIMON_DAYS={json.dumps(labels)},APIMON_LABELS={json.dumps(cell_labels)},'
               f'APIMON_RUNS={json.dumps([run_label[rid] for rid, _ in runs])};{_JS}</script></body></html>')
    # Names, titles and reasons come from documents and servers: one masking pass over the whole page. The bar
    # payloads are our own tokens (classes, numbers, probe sub-reasons): put back after it, unmasked and unscanned.
    return re.sub(f"\x00{nonce}(\\d+)\x00", lambda m: payloads[int(m.group(1))], red("\n".join(out)))


# -- small formatting helpers -------------------------------------------------------------------------

def _sparkline(buckets: dict[int, float], lang: str) -> str:
    if not buckets:
        return '<span class="muted">-</span>'
    w, h = 84, 20
    top = max(buckets.values()) or 1.0
    step = w / max(1, SPARK_BUCKETS - 1)
    points = " ".join(f"{b * step:.0f},{h - 1 - v / top * (h - 2):.0f}" for b, v in sorted(buckets.items())
                      if 0 <= b < SPARK_BUCKETS)
    last = buckets[max(buckets)]
    hint = (f"P95 最高 {top:.0f} ms，最近 {last:.0f} ms" if lang == "zh"
            else f"P95 max {top:.0f} ms, last {last:.0f} ms")
    return (f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"><title>{hint}</title>'
            f'<polyline points="{points}"/></svg><small>{last:.0f}</small>')


def _incident(s: InterfaceState) -> str:
    if s.flapping:
        return "flapping"
    if s.status == DOWN:
        return "down" if s.consecutive_failures else "recovering"
    return "pending" if s.consecutive_failures else ""


def _incident_rank(s: InterfaceState) -> int:
    return ["down", "flapping", "recovering", "pending"].index(_incident(s))


def _cat_label(category: str, lang: str) -> str:
    try:
        return Category(category).label(lang)
    except ValueError:
        return category


def _fmt(ts: float | None) -> str:
    return times.stamp(ts) if ts is not None else "-"


def _sum_avail(items: Iterable[Availability | None]) -> Availability | None:
    got = [a for a in items if a is not None]
    return Availability(sum(a.checks for a in got), sum(a.passed for a in got)) if got else None


def _avail_cell(window: str, a: Availability | None) -> str:
    return f'<span class="{window} pct {_avail_cls(a)}" title="{_checks(a)}">{_pct(a)}</span>'


# One character per day for the daily bar (drawn by _JS): no data, 100 %, >= 99 %, >= 95 %, below.
_DAY_LEVELS = ".ABCD"


def _day_code(per_day: list[Availability] | None) -> str:
    """'A…' per day, then for each day below 100 % ';index:passed/checks' so the tooltip can say how much."""
    if not per_day:
        return "." * BAR_DAYS
    code, detail = [], []
    for n, a in enumerate(per_day):
        if a.passed == a.checks:
            code.append("A" if a.checks else ".")
            continue
        ratio = a.passed / a.checks
        code.append("B" if ratio >= AVAIL_WARN else "C" if ratio >= AVAIL_BAD else "D")
        detail.append(f";{n}:{a.passed}/{a.checks}")
    return "".join(code) + "".join(detail)


def _pct(a: Availability | None) -> str:
    if a is None or a.ratio is None:
        return "-"
    return "100%" if a.passed == a.checks else f"{min(a.ratio * 100, 99.99):.2f}%"


def _avail_cls(a: Availability | None) -> str:
    if a is None or a.ratio is None:
        return "na"
    return "good" if a.ratio >= AVAIL_WARN else "warn" if a.ratio >= AVAIL_BAD else "bad"


def _checks(a: Availability | None) -> str:
    return f"{a.passed}/{a.checks}" if a is not None else ""


def _cell_css(t: dict[str, str]) -> str:
    colors = "".join(f".{cls}{{background:{_CELL_COLOR[cat]}!important}}" for cat, cls in _CELL_CLASS.items())
    # On a phone the column header is hidden: each number carries its label instead.
    phone = "".join(f'.row .{cls}::before{{content:"{t[label]} ";color:#656d76;font-weight:400}}'
                    for cls, label in ((w, "avail" + w[1:]) for w in WINDOWS))
    return f"{colors}@media (max-width:640px){{{phone}}}"


_CSS = """
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;background:#f6f8fa;color:#1f2328;font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",
"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",
Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:12px}h1{font-size:22px;margin:4px 0 10px}h2{font-size:16px;margin:0 0 6px}
.banner{padding:14px 18px;border-radius:8px;color:#fff;font-size:18px;font-weight:600}
.b-ok{background:#1a7f37}.b-warn{background:#9a6700}.b-bad{background:#cf222e}
.card,details.svc{background:#fff;border:1px solid #d0d7de;border-radius:8px;margin:12px 0;padding:10px 14px}
.card p{margin:4px 0}.totals span{margin-right:14px;white-space:nowrap}.t-ok b{color:#1a7f37}.t-bad b{color:#cf222e}
.muted{color:#656d76}.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}
th,td{padding:4px 8px;text-align:left;border-bottom:1px solid #eaeef2;vertical-align:top}
th,td:nth-child(2){white-space:nowrap}th{font-weight:600}td:first-child{overflow-wrap:anywhere}
.inc-down td:nth-child(2){color:#cf222e;font-weight:600}.inc-flapping td:nth-child(2){color:#9a6700}
summary{cursor:pointer;font-size:15px;padding:2px 0}h3.mod{font-size:13px;color:#57606a;margin:10px 0 2px}
.pill{display:inline-block;padding:0 6px;border-radius:9px;font-size:12px;background:#eaeef2}
.pill.slow{background:#fff8c5;color:#9a6700}
.pill.bad{background:#ffebe9;color:#cf222e}.m{font:11px monospace;color:#57606a}
.row{display:grid;grid-template-columns:minmax(150px,1.2fr) minmax(180px,2.4fr) repeat(5,58px) 118px;gap:2px 8px;
align-items:center;padding:3px 0;border-bottom:1px solid #f3f4f6}.row.hdr{font-size:12px;color:#656d76}
.days,.days-h{grid-column:2/-1}.days{display:flex;gap:1px;height:8px}
.days i{flex:1 1 0;min-width:1px;border-radius:1px;background:#e6e9ec}.dA{background:#2da44e}
.dB{background:#d4a72c}.dC{background:#e16f24}.dD{background:#cf222e}
.nm{overflow-wrap:anywhere}.bar{display:flex;gap:1px;height:18px}
.bar i,.legend i{flex:1 1 0;min-width:2px;border-radius:1px;background:#e6e9ec}.bar i:hover{outline:1px solid #1f2328}
.o{background:#2da44e!important}.r{background:#8fd19e!important}.s{background:#afb8c1!important}
.pct{text-align:right;font-variant-numeric:tabular-nums}.good{color:#1a7f37}.warn{color:#9a6700}
.bad.pct{color:#cf222e;font-weight:600}.na{color:#8c959f}
.sp{display:flex;align-items:center;gap:4px}.sp svg{flex:none}.sp small{color:#656d76}
polyline{fill:none;stroke:#0969da;stroke-width:1.5}
.tools{display:flex;gap:12px;align-items:center;margin:14px 0 6px;flex-wrap:wrap}
#q{flex:1 1 220px;padding:6px 8px;border:1px solid #d0d7de;border-radius:6px;font:inherit}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;color:#57606a}
.legend span{display:flex;align-items:center;gap:4px}.legend i{display:inline-block;width:10px;height:12px;flex:none}
#tip{position:fixed;left:8px;right:8px;bottom:8px;background:#1f2328;color:#fff;padding:8px 10px;border-radius:6px}
footer{margin:18px 0;font-size:12px}
@media (max-width:640px){main{padding:8px}h1{font-size:18px}.banner{font-size:16px}
.row{grid-template-columns:1fr 1fr 1fr;gap:2px 8px}.row .nm,.row .bar,.row .bar-h,.row .days{grid-column:1/-1}
.row .pct{text-align:left}.row.hdr{display:none}th,td{padding:3px 4px}}
"""

_JS = """
(function(){
var q=document.getElementById('q'),p=document.getElementById('p'),tip=document.getElementById('tip');
function filter(){
  var text=q.value.trim().toLowerCase(),only=p.checked;
  document.querySelectorAll('details.svc').forEach(function(d){
    var shown=0;
    d.querySelectorAll('.row[data-k]').forEach(function(r){
      var ok=(!text||r.getAttribute('data-k').indexOf(text)>=0)&&(!only||r.classList.contains('bad'));
      r.hidden=!ok;if(ok)shown++;});
    d.hidden=shown===0;if((text||only)&&shown)d.open=true;});
}
function days(d){
  if(d.getAttribute('data-done'))return;d.setAttribute('data-done','1');
  var parts=d.getAttribute('data-d').split(';'),code=parts[0],x={},h='',n,kv,t,c;
  for(n=1;n<parts.length;n++){kv=parts[n].split(':');x[kv[0]]=kv[1];}
  for(n=0;n<code.length;n++){
    c=code.charAt(n);t=APIMON_DAYS[n]||'';
    if(c==='.')t+=' \u00b7 -';
    else if(x[n]){kv=x[n].split('/');t+=' \u00b7 '+(kv[0]/kv[1]*100).toFixed(2)+'% ('+x[n]+')';}
    else t+=' \u00b7 100%';
    h+='<i class="d'+(c==='.'?'N':c)+'" title="'+t+'"></i>';}
  d.innerHTML=h;}
function esc(t){return t.replace(/&/g,'&amp;').replace(/"/g,'&quot;').replace(/</g,'&lt;');}
function bar(b){
  var data=b.getAttribute('data-b');
  if(!data||b.getAttribute('data-done'))return;b.setAttribute('data-done','1');
  var L=APIMON_LABELS,toks=data.split(' '),h='',n,f,c,p;
  for(n=0;n<toks.length;n++){
    f=toks[n].split(':');c=f[0];p=[APIMON_RUNS[n]||''];
    if(c==='-'){p.push(L.nodata);c='';}
    else if(c==='s')p.push(L.skipped);
    else{
      if(c==='o'||c==='r')p.push(f[1]||L.passed);
      else{p.push((L[c]||c)+(f[4]?' '+f[4]:''));if(f[1])p.push(f[1]);}
      if(f[2])p.push(f[2]+' ms');
      if(f[3])p.push(L.retried.replace('{n}',f[3]));}
    h+='<i'+(c?' class='+c:'')+' title="'+esc(p.join(' \u00b7 '))+'"></i>';}
  b.innerHTML=h;}
document.querySelectorAll('details.svc').forEach(function(s){
  function draw(){if(!s.open)return;s.querySelectorAll('.days').forEach(days);
    s.querySelectorAll('.bar').forEach(bar);}
  s.addEventListener('toggle',draw);draw();});
q.addEventListener('input',filter);p.addEventListener('change',filter);
document.addEventListener('click',function(e){
  var c=e.target;if(c.tagName!=='I'||!c.title)return;var r=c.closest('.row');
  tip.textContent=(r?r.querySelector('.nm').textContent+' \\u00b7 ':'')+c.title;tip.hidden=false;});
tip.addEventListener('click',function(){tip.hidden=true;});
document.body.setAttribute('data-ready','1');
})();
"""
