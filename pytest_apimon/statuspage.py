"""A static, self-contained HTML status page rendered from the state store after each run.

One file, inline CSS and a few lines of inline JS, no external resource (intranets are often offline),
so any web server, CI artifact store or object storage can serve it. Sized for 1000 interfaces and a year
of history (issue 18: <= 3 MB): the history bar shows the last N runs of the raw tier individually;
availability over 24 h / 7 d / 30 d / 90 d / 1 y, the 90-day daily bar and the latency sparkline come from
the rollups (state.py getters); older runs are never listed. Read-only (WAL readers do not block the writer).

The markup, CSS and JS are package resources under `templates/` (status.html.j2, status.css, status.js),
laid out by Jinja2 with autoescape; this module only prepares a view model (`_page_view`) of plain values.
Escaping and masking happen in one place, the Jinja environment (`_environment`): autoescape for HTML text
and attributes, `tojson` for the JSON in the <script> (it escapes <, >, & and '), `css_string` for the
labels in the <style>, and a finalize hook that passes every plain `str` it prints through the run's
Redactor. The daily bar is drawn server-side as inline SVG (readable without JavaScript); the run bar travels
as one short token string per interface that the inline script draws (50 000 cells would not fit the budget).
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from . import certs, times
from .categories import Category, Outcome
from .certs import CertStatus
from .messages import display_name
from .metrics import atomic_write_text
from .policy import DOWN, OPEN, InterfaceState, Verdict, interface_key
from .redact import Redactor
from .report import compute_stats, is_down, maintenance_lines, reason_text
from .results import InterfaceResult, RunResult
from .rollup import HOUR, hour_floor
from .state import DAY, Availability, ResultRow, StateStore

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
# A run that ended without checking some interfaces (InterfaceResult.unchecked): never "all operational".
_T["zh"].update(incomplete="监控不完整：{n} 个接口未检查")
_T["en"].update(incomplete="monitoring incomplete: {n} interface(s) not checked")
# Maintenance windows (maintenance.py): checked and recorded, alerts held.
_T["zh"].update(maintenance="维护中")
_T["en"].update(maintenance="maintenance")
# TLS certificates (certs.py): one table row per HTTPS origin, a pill on the interfaces of an expiring one.
_T["zh"].update(certs="TLS 证书", origin="源站", days_left="剩余天数", level="状态", not_after="到期时间",
                services="服务", ok_cert="正常", warning="即将过期", failing="低于失败阈值", cert_pill="证书 {days} 天")
_T["en"].update(certs="TLS certificates", origin="Origin", days_left="Days left", level="State",
                not_after="Expires (notAfter)", services="Services", ok_cert="ok", warning="expiring soon",
                failing="below the failure threshold", cert_pill="cert {days} d")



# -- the view model: plain values the template lays out ------------------------------------------------

class Own(str):
    """Text this module made itself from its own tokens (run-bar classes, numbers, probe sub-reasons): escaped
    like any text but not passed through the Redactor (nothing in it comes from a document or a server)."""

    __slots__ = ()


@dataclass(frozen=True)
class AvailCell:
    """One availability figure: `window` a WINDOWS name, `css` good/warn/bad/na, `checks` 'passed/checks'
    ('' without data), `pct` like '99.50%' or '-', `label` the window's caption."""
    window: str
    label: str
    css: str
    checks: str
    pct: str


@dataclass(frozen=True)
class Spark:
    """The P95 sparkline: SVG polyline `points`, its hover text, the last bucket's value in ms."""
    points: str
    hint: str
    last: str


@dataclass(frozen=True)
class DayBar:
    """The daily bar of BAR_DAYS days: `paths` (css class, SVG path data) one per level present, one horizontal
    segment per run of days at that level (x = day index, oldest first); `code` the per-day string the script
    turns into hover cells (_day_code); `summary` days per level ('100% ×80 · <95% ×2 · no data ×8'), the bar's
    hover text without JavaScript."""
    code: Own
    summary: str
    paths: list[tuple[str, Own]]


@dataclass(frozen=True)
class RowView:
    """One interface row. `failed`: category label when it failed in this run; `slow`: hover text of the
    slow pill ('' when not slow); `maintenance`: the window it failed in (its pill's hover text, '' when none);
    `run_bar`: its run-bar tokens (state.bar_tokens), space separated."""
    search: str
    method: str
    name: str
    problem: bool
    failed: str
    slow: str
    maintenance: str
    run_bar: Own
    avail: list[AvailCell]
    spark: Spark | None
    days: DayBar
    cert: str = ""  # the certificate pill ('证书 5 天') when one of its origins' certificates expires soon
    cert_title: str = ""  # its hover text: the catalogue line with the notAfter


@dataclass
class ServiceView:
    """A service: its modules (sorted) with their rows, its problem count and summed availability."""
    name: str
    modules: list[tuple[str, list[RowView]]] = field(default_factory=list)
    count: int = 0
    bad: int = 0
    open: bool = False
    avail: list[AvailCell] = field(default_factory=list)
    maintenance: str = ""  # the maintenance window it was in during the run ('' = none)


@dataclass(frozen=True)
class CertView:
    """One HTTPS origin's certificate: `days` left with one decimal, `level` ok / warning / failing (its css
    class and label), `not_after` as 'YYYY-MM-DD HH:MM UTC', `services` comma separated."""
    origin: str
    days: str
    level: str
    label: str
    not_after: str
    services: str


@dataclass(frozen=True)
class IncidentView:
    """One ongoing incident: `since` and `last` as display text, `runs` consecutive failures or '-'."""
    key: str
    kind: str  # down / flapping / recovering / pending (_incident)
    since: str
    runs: int | str
    last: str


def write_status_page(path: str | Path, page: str) -> Path:
    """Atomic replace (atomicfile.atomic_write, mode statedir.SHARED_FILE): a web server never serves half a
    page. Returns `path` as a Path; raises OSError (the old page is then unchanged)."""
    return atomic_write_text(path, page)


def render_status_page(store: StateStore, env: str, run: RunResult, verdict: Verdict | None, *, lang: str = "zh",
                       title: str | None = None, history_runs: int = 50, now: float | None = None,
                       redactor: Redactor | None = None, certificates: Sequence[CertStatus] | None = None) -> str:
    """The whole page (an HTML document as one str) for `env` after `run`, which is already recorded in `store`.

    Lists the interfaces of `run`. `verdict` (this run's policy outcome) supplies alert and breaker state, else
    `store.load_states`. `lang` 'zh' (default) or anything else for English; `history_runs` how many recent runs
    the run bar shows; `now` (Unix seconds, default `run.finished_at`) ends the availability windows and the
    daily bar; `redactor` masks every document/server text on the page (a default Redactor masks the usual
    secret shapes); `certificates` the run's HTTPS origins with their thresholds (alerts.certificate_statuses),
    else those the store recorded for this run, judged by the default thresholds (14 / 3 days). Reads only;
    raises sqlite3.Error when the store cannot be read and jinja2.TemplateError if the packaged template is broken.
    """
    page = _page_view(store, env, run, verdict, lang=lang, title=title, history_runs=history_runs,
                      now=run.finished_at if now is None else now)
    page["certs"], page["services"] = _certificates(store, env, run, certificates, page["t"], page["services"])
    # Memoized for this render: labels, classes and figures repeat thousands of times.
    token = _MASK.set(functools.lru_cache(maxsize=4096)((redactor or Redactor()).text))
    try:
        return _environment().get_template("status.html.j2").render(page)
    finally:
        _MASK.reset(token)


@dataclass(frozen=True)
class _Source:
    """What every part of the view model reads: the store, the run and its policy states, the clock, the labels."""
    store: StateStore
    env: str
    run: RunResult
    states: Mapping[str, InterfaceState]
    now: float
    t: Mapping[str, str]
    lang: str


def _page_view(store: StateStore, env: str, run: RunResult, verdict: Verdict | None, *, lang: str,
               title: str | None, history_runs: int, now: float) -> dict[str, Any]:
    """Everything the template prints, read from `store` once."""
    t = _T["zh" if lang == "zh" else "en"]
    states = verdict.states if verdict is not None else store.load_states(env)
    runs = store.recent_runs(env, history_runs)
    stats = compute_stats(run)
    failed_now = sum(is_down(r) for r in run.results)  # circuit-open ones are down too (issue 14)
    page_title = title or f"{t['title']} · {env}"
    day_starts, days = store.daily_history(env, days=BAR_DAYS, now=now)
    return {
        "t": t, "html_lang": "zh-CN" if lang == "zh" else "en", "title": page_title, "env": env,
        "cell_colors": [(cls, _CELL_COLOR[cat]) for cat, cls in _CELL_CLASS.items()],
        "windows": [(w, t["avail" + w[1:]]) for w in WINDOWS],
        "banner": _banner(run, states, verdict, t, lang),
        "maintenance": maintenance_lines(run, lang),  # (service, line) per service inside a window
        "last_run": {"started": _fmt(run.started_at), "finished": _fmt(run.finished_at),
                     "duration": f"{run.duration:.1f}", "total": len(run.results), "passed": stats.passed,
                     "failed": failed_now, "skipped": stats.skipped,
                     "rate": f"{stats.success_rate * 100:.1f}%" if stats.success_rate is not None else "-"},
        "incidents": _incidents(store, env, run, states, lang),
        "circuits": [{"key": display_name(s.key, lang), "open_since": _fmt(s.open_since),
                      "next_probe": _fmt(s.next_probe_at)}
                     for s in sorted((s for s in states.values() if s.breaker == OPEN), key=lambda s: s.key)],
        "legend": [("o", t["passed"]), ("r", t["retried"].format(n="2+")),
                   *((cls, _cat_label(cat, lang)) for cat, cls in _CELL_CLASS.items()),
                   ("s", t["skipped"]), ("", t["nodata"])],
        "history_runs": len(runs), "bar_days": BAR_DAYS,
        "services": _services(_Source(store, env, run, states, now, t, lang), runs, days),
        "footer": {"generated": _fmt(now), "tz": f"UTC{times.offset(now)}"},  # report.timezone (times.py)
        "script": {
            "days": [time.strftime("%Y-%m-%d", time.localtime(d)) for d in day_starts],
            "labels": {"nodata": t["nodata"], "skipped": t["skipped"], "passed": t["passed"],
                       "retried": t["retried"], **{cls: _cat_label(cat, lang) for cat, cls in _CELL_CLASS.items()}},
            "runs": [times.local(ts).strftime("%m-%d %H:%M") for _, ts in runs]},
        "css": _resource("status.css"), "js": _resource("status.js"),
    }


def _certificates(store: StateStore, env: str, run: RunResult, given: Sequence[CertStatus] | None,
                  t: Mapping[str, str], services: list[ServiceView]) -> tuple[list[CertView], list[ServiceView]]:
    """The certificates table, and the services with a pill on each interface that reached an origin whose
    certificate is below its warning threshold."""
    if given is None:
        given = [CertStatus(row.origin, row.not_after, certs.days_left(row.not_after, run.finished_at),
                            certs.DEFAULT_WARN_DAYS, certs.DEFAULT_FAIL_DAYS, list(row.services))
                 for row in store.certificates(env, since=run.started_at)]
    table = [CertView(c.origin, f"{c.days_left:.1f}", c.level, t["ok_cert" if c.level == "ok" else c.level],
                      certs.fmt_not_after(c.not_after), ", ".join(c.services)) for c in given]
    expiring = {c.origin: c for c in given if c.level != "ok"}
    if not expiring:
        return table, services
    by_name = {(r.service, r.module, r.name): r for r in run.results}
    for svc in services:
        for i, (module, rows) in enumerate(svc.modules):
            svc.modules[i] = (module, [_with_cert(row, by_name.get((svc.name, module, row.name)), expiring, t,
                                                  run.finished_at) for row in rows])
    return table, services


def _with_cert(row: RowView, r: InterfaceResult | None, expiring: Mapping[str, CertStatus], t: Mapping[str, str],
               now: float) -> RowView:
    soonest = min((expiring[o] for o in (r.certificates if r else {}) if o in expiring),
                  key=lambda c: c.not_after, default=None)
    if soonest is None:
        return row
    return replace(row, cert=t["cert_pill"].format(days=f"{max(soonest.days_left, 0):.0f}"),
                   cert_title=soonest.describe(now))


def _banner(run: RunResult, states: Mapping[str, InterfaceState], verdict: Verdict | None, t: Mapping[str, str],
            lang: str) -> dict[str, str]:
    """{'level': ok/warn/bad, 'headline': text}: red when something is down or a storm, amber on a failure or an
    open circuit in this run, or when the run left interfaces unchecked (said after any other headline)."""
    banner = _health(run, states, verdict, t, lang)
    unchecked = sum(r.unchecked for r in run.results)
    if unchecked:  # part of the pool is unknown: never "all operational", and said beside what is down
        incomplete = t["incomplete"].format(n=unchecked)
        if banner["level"] == "ok":
            return {"level": "warn", "headline": incomplete[:1].upper() + incomplete[1:]}
        banner["headline"] += ("；" if lang == "zh" else "; ") + incomplete
    return banner


def _health(run: RunResult, states: Mapping[str, InterfaceState], verdict: Verdict | None, t: Mapping[str, str],
            lang: str) -> dict[str, str]:
    """The banner by what is known down: the stored states, a storm, this run's failures, open circuits."""
    down = sum(s.status == DOWN for s in states.values())
    if verdict is not None and verdict.storm is not None:
        return {"level": "bad", "headline": f"{t['storm']}{'：' if lang == 'zh' else ': '}"
                                            f"{verdict.storm.describe(lang)}"}
    if down:
        return {"level": "bad", "headline": t["bad"].format(n=down)}
    if any(is_down(r) for r in run.results) or any(s.breaker == OPEN for s in states.values()):
        return {"level": "warn", "headline": t["warn"]}
    return {"level": "ok", "headline": t["ok"]}


def _incidents(store: StateStore, env: str, run: RunResult, states: Mapping[str, InterfaceState],
               lang: str) -> list[IncidentView]:
    """Ongoing incidents, worst kind first, each with its last failure: this run's, else the newest recorded
    one however long ago (not only within the bar)."""
    by_key = {interface_key(r): r for r in run.results}
    incidents = sorted((s for s in states.values() if _incident(s)), key=lambda s: (_incident_rank(s), s.key))
    older = store.last_failures(env, [s.key for s in incidents
                                      if by_key.get(s.key) is None or by_key[s.key].outcome != Outcome.FAILED])
    return [IncidentView(display_name(s.key, lang), _incident(s), _fmt(s.down_since or s.failing_since),
                         s.consecutive_failures or "-", _last_failure(by_key.get(s.key), older.get(s.key), lang))
            for s in incidents]


def _last_failure(now_r: InterfaceResult | None, row: ResultRow | None, lang: str) -> str:
    """'category · status · reason' of a failure in this run, else 'MM-DD HH:MM · category · status' of the
    newest recorded one, else ''."""
    if now_r is not None and now_r.outcome == Outcome.FAILED:
        return " · ".join(str(p) for p in (_cat_label(now_r.category or "unexpected", lang), now_r.status,
                                            reason_text(now_r, lang)) if p)  # the reason in the page's language
    if row is not None:  # skipped (open circuit) or passing now
        when = times.local(row.started_at).strftime("%m-%d %H:%M")
        return " · ".join(str(p) for p in (when, _cat_label(row.category or "unexpected", lang), row.status) if p)
    return ""


def _services(src: _Source, runs: list[tuple[int, float]], days: Mapping[str, list[Availability]]
              ) -> list[ServiceView]:
    """Services, then modules, then interfaces, sorted by name; a big pool opens only services with problems."""
    store, now, t, lang = src.store, src.now, src.t, src.lang
    bar_tokens = store.bar_tokens([rid for rid, _ in runs], _CELL_CLASS)
    avail = store.availability_windows(src.env, now=now, windows=WINDOWS)
    # On an hour boundary, ending with the current hour: hourly rollups fall into whole buckets.
    spark = store.p95_buckets(src.env, since=hour_floor(now) + HOUR - SPARK_DAYS * DAY,
                              width=SPARK_DAYS * DAY / SPARK_BUCKETS)
    services: dict[str, ServiceView] = {}
    keys: dict[str, list[str]] = {}
    modules: dict[tuple[str, str], list[RowView]] = {}
    for r in sorted(src.run.results, key=lambda r: (r.service, r.module, r.name)):
        key = interface_key(r)
        st = src.states.get(key)
        problem = is_down(r) or (st is not None and (st.status == DOWN or st.breaker == OPEN or st.flapping))
        svc = services.setdefault(r.service, ServiceView(r.service))
        if (r.service, r.module) not in modules:
            svc.modules.append((r.module, modules.setdefault((r.service, r.module), [])))
        modules[r.service, r.module].append(_row(
            r, problem, Own(" ".join(bar_tokens.get(key) or ["-"] * len(runs))),
            [_avail_cell(w, t, avail[w].get(key)) for w in WINDOWS], spark.get(key), days.get(key), t, lang))
        keys.setdefault(r.service, []).append(key)
        svc.count += 1
        svc.bad += problem
        svc.maintenance = svc.maintenance or r.maintenance
    open_all = len(src.run.results) <= 300
    for name, svc in services.items():
        svc.open = open_all or svc.bad > 0
        svc.avail = [_avail_cell(w, t, _sum_avail(avail[w].get(k) for k in keys[name])) for w in WINDOWS]
    return list(services.values())


def _row(r: InterfaceResult, problem: bool, run_bar: Own, avail: list[AvailCell],
         spark: dict[int, float] | None, per_day: list[Availability] | None, t: Mapping[str, str],
         lang: str) -> RowView:
    slow = ""
    if r.outcome == Outcome.PASSED and r.slow:
        slow = t["slow_title"].format(ms=f"{r.elapsed_ms or 0:.0f}", warn=f"{r.warn_ms or 0:g}")
    return RowView(
        search=f"{r.service}/{r.module}/{r.name}".lower(), method=r.method or "", name=r.name, problem=problem,
        failed=_cat_label(r.category or "unexpected", lang) if r.outcome == Outcome.FAILED else "", slow=slow,
        maintenance=r.maintenance if r.outcome == Outcome.FAILED else "",
        run_bar=run_bar, avail=avail, spark=_sparkline(spark or {}, lang), days=_day_bar(per_day, lang))


# -- the one place of escaping and masking ----------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """Autoescaping Jinja2 environment over the package's templates/ (importlib.resources via PackageLoader);
    StrictUndefined: a name the view model lacks is an error, never an empty string."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("pytest_apimon", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, finalize=_finalize, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=False)
    env.filters["css_string"] = _css_string
    return env


# The masking of the render in progress (a context variable: renders in other threads keep their own).
_MASK: contextvars.ContextVar[Callable[[str], str]] = contextvars.ContextVar("apimon_status_page_mask")


def _finalize(value: Any) -> Any:
    """Every `{{ }}` passes here before autoescape: plain text (names, titles, reasons from documents and
    servers) is masked with the render's Redactor; Markup (the packaged CSS/JS, tojson) and Own text are not.
    Outside render_status_page (no mask set) it raises LookupError rather than print unmasked text."""
    if isinstance(value, str) and not isinstance(value, (Markup, Own)):
        return _MASK.get()(value)
    return "" if value is None else value


def _css_string(value: str) -> Markup:
    """A CSS string literal (CSS Syntax 3, 4.3.5): quote, backslash, newline and '<' as hex escapes, so the
    text can neither end the string nor the <style> element."""
    out = "".join(f"\\{ord(c):x} " if c in '"\\\n\r<>&' else c for c in str(value))
    return Markup(f'"{out}"')  # noqa: S704 - escaped just above for its CSS context


@functools.cache
def _resource(name: str) -> Markup:
    """A packaged CSS/JS file (ours, trusted), inserted as is."""
    text = resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")
    return Markup(text)  # noqa: S704 - a file of this package, not input


# -- small formatting helpers -------------------------------------------------------------------------

def _sparkline(buckets: Mapping[int, float], lang: str) -> Spark | None:
    """Polyline points in an 84 x 20 box (higher P95 = smaller y), or None without data."""
    if not buckets:
        return None
    w, h = 84, 20
    top = max(buckets.values()) or 1.0
    step = w / max(1, SPARK_BUCKETS - 1)
    points = " ".join(f"{b * step:.0f},{h - 1 - v / top * (h - 2):.0f}" for b, v in sorted(buckets.items())
                      if 0 <= b < SPARK_BUCKETS)
    last = buckets[max(buckets)]
    hint = (f"P95 最高 {top:.0f} ms，最近 {last:.0f} ms" if lang == "zh"
            else f"P95 max {top:.0f} ms, last {last:.0f} ms")
    return Spark(points, hint, f"{last:.0f}")


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


def _avail_cell(window: str, t: Mapping[str, str], a: Availability | None) -> AvailCell:
    return AvailCell(window, t["avail" + window[1:]], _avail_cls(a), _checks(a), _pct(a))


# One character per day: no data, 100 %, >= 99 %, >= 95 %, below (CSS classes dN, dA … dD).
_DAY_LEVELS = ".ABCD"
_DAY_SUMMARY = {"zh": {"A": "100%", "B": "≥99%", "C": "≥95%", "D": "<95%", ".": "无数据"},
                "en": {"A": "100%", "B": "≥99%", "C": "≥95%", "D": "<95%", ".": "no data"}}


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


def _day_bar(per_day: list[Availability] | None, lang: str) -> DayBar:
    """The daily bar drawn server-side: per level one SVG path of `M{first day} .5h{days}` segments (a stroke 1
    high in a `BAR_DAYS x 1` viewBox; the CSS dash pattern separates the days). ~6 bytes per run of equal days
    keeps 1000 interfaces x 90 days within the page budget, where one element per day would not."""
    code = _day_code(per_day)
    levels = code.split(";", 1)[0]
    segments: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    start = 0
    for n in range(1, len(levels) + 1):
        if n == len(levels) or levels[n] != levels[start]:
            level = levels[start]
            segments.setdefault(level, []).append(f"M{start} .5h{n - start}")
            counts[level] = counts.get(level, 0) + n - start
            start = n
    names = _DAY_SUMMARY["zh" if lang == "zh" else "en"]
    summary = " · ".join(f"{names[level]} ×{counts[level]}" for level in "ABCD." if level in counts)
    return DayBar(Own(code), summary,
                  [(f"d{'N' if level == '.' else level}", Own("".join(segments[level])))
                   for level in "ABCD." if level in segments])


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
