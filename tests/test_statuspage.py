"""The static status page: a simulated week with incidents, structure and content, budget, a real browser."""

from __future__ import annotations

import html
import json
import os
import random
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from pytest_apimon.policy import Verdict, evaluate, skips
from pytest_apimon.policy_settings import parse_policy
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import DAY, Availability, StateStore
from pytest_apimon.statuspage import render_status_page, write_status_page

HOUR = 3600.0
NOW = 1_700_000_000.0  # the last run's end
EVIL = '<script>alert("x")</script> & "引号"'
# (service, module, name, method)
POOL = [
    ("nurse", "排班", "查询排班", "GET"),
    ("nurse", "排班", "护士列表", "GET"),
    ("user", "账户", "获取用户信息", "GET"),
    ("user", "账户", "登录", "POST"),
    ("order", "下单", "创建订单", "POST"),
    ("order", "查询", "订单详情", "GET"),
    ("pay", "回调", "支付回调", "POST"),
    ("pay", "回调", EVIL, "GET"),
    ("report", "导出", "导出报表", "GET"),
]


def outcome_at(name: str, ts: float, i: int, runs: int) -> tuple[str, str | None, int | None, float | None, int]:
    """(outcome, category, status, latency ms, attempts) of one interface in the simulated week."""
    age = NOW - ts
    if name == "查询排班":  # the nurse service gets slower through the week
        return "passed", None, 200, 80 + 320 * i / runs, 1
    if name == "登录" and 3 * DAY <= age < 3 * DAY + 4 * HOUR:  # a 4-hour outage mid-week
        return "failed", "server_error", 503, 40.0, 1
    if name == "创建订单" and age < 10 * HOUR:  # down now; the circuit opens after 5 failures
        return "failed", "timeout", None, 5000.0, 3
    if name == "订单详情" and runs - i <= 8:  # flapping over the last runs
        return ("failed", "unexpected", 200, 60.0, 1) if i % 2 else ("passed", None, 200, 55.0, 1)
    if name == "导出报表":
        return "skipped", None, None, None, 1
    if name == "支付回调" and i % 17 == 0:
        return "passed", None, 200, 120.0, 2  # flaky: passed on a retry
    return "passed", None, 200, 30.0 + (i % 7), 1


def simulate_week(store: StateStore, env: str = "prod") -> tuple[RunResult, Verdict]:
    """Hourly runs for 7 days through the real policy (breaker gates, thresholds) into the store."""
    settings = parse_policy({"failure_threshold": 2}, {"failures": 5, "cooldown": "2h"})
    runs = 7 * 24
    run = verdict = None
    for i in range(runs):
        finished = NOW - (runs - 1 - i) * HOUR
        started = finished - 20
        states = store.load_states(env)
        gated = skips(states, settings, started)
        results = []
        for service, module, name, method in POOL:
            key = f"{service}/{name}"
            outcome, category, status, latency, attempts = outcome_at(name, started, i, runs)
            reason = ""
            if key in gated:
                outcome, category, status, latency, attempts = "skipped", None, None, None, 1
                reason = gated[key]
            elif outcome == "failed":
                reason = "read timeout after 5 s; token=abcdef123456" if category == "timeout" else f"HTTP {status}"
            results.append(InterfaceResult(
                nodeid=f"Interface-pool/{service}/{module}.yaml::{name}", service=service, module=module, name=name,
                method=method, url=f"http://127.0.0.1:9/{service}", outcome=outcome, category=category,
                status=status, elapsed_ms=latency, attempts=attempts, reason=reason, started_at=started))
        run = RunResult(started_at=started, finished_at=finished, env=env, results=results)
        verdict = evaluate(states, results, settings, finished, store.load_memory(env))
        store.record_run(run, verdict.states, verdict.memory, removed=verdict.removed, now=finished)
    assert run is not None and verdict is not None
    return run, verdict


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        out = []
        for c in self.children:
            if (tag is None or c.tag == tag) and (cls is None or cls in c.attrs.get("class", "").split()):
                out.append(c)
            out.extend(c.find_all(tag, cls))
        return out

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class Tree(HTMLParser):
    VOID: ClassVar[set[str]] = {"meta", "input", "br", "img", "link", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def parse(page: str) -> Node:
    tree = Tree()
    tree.feed(page)
    tree.close()
    assert tree.stack == [tree.root], "unclosed elements"
    return tree.root


def tokens(row: Node) -> list[list[str]]:
    """The run bar's cells as the page ships them (`class:status:ms:attempts:sub`, drawn by its script)."""
    data = row.find_all("span", "bar")[0].attrs["data-b"]
    return [t.split(":") for t in data.split(" ")] if data else []


def by_id(root: Node, ident: str) -> Node:
    found = [n for n in root.find_all() if n.attrs.get("id") == ident]
    assert len(found) == 1, ident
    return found[0]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[StateStore, RunResult, Verdict]:
    store = StateStore.in_dir(tmp_path_factory.mktemp("state"))
    run, verdict = simulate_week(store)
    yield store, run, verdict
    store.close()


def test_page_structure_and_content(week: tuple[StateStore, RunResult, Verdict]) -> None:
    from pytest_apimon.redact import Redactor

    store, run, verdict = week
    page = render_status_page(store, "prod", run, verdict, redactor=Redactor(["abcdef123456"]))
    root = parse(page)
    head = root.find_all("head")[0]
    assert any(m.attrs.get("charset") == "utf-8" for m in head.find_all("meta"))
    assert any(m.attrs.get("name") == "viewport" for m in head.find_all("meta"))
    banner = by_id(root, "banner")
    assert "b-bad" in banner.attrs["class"] and "1 个接口故障" in banner.text  # 创建订单 is down
    services = root.find_all("details", "svc")
    assert [s.find_all("b")[0].text for s in services] == ["nurse", "order", "pay", "report", "user"]
    assert [m.text for m in root.find_all("h3", "mod")] == ["排班", "下单", "查询", "回调", "导出", "账户"]
    rows = [r for r in root.find_all("div", "row") if "data-k" in r.attrs]
    assert len(rows) == len(POOL)
    for row in rows:
        cells = tokens(row)
        # Hourly runs, raw tier 48 h: the bar holds the 49 runs still in it (cut at a whole hour).
        assert len(cells) == 49 and all(c[0] in ("o", "r", "s", "-") or re.fullmatch(r"c\d", c[0]) for c in cells)
    # The run times are one list for every bar (the script prefixes them to each cell's title).
    runs = json.loads(re.search(r"APIMON_RUNS=(\[.*?\]);", page).group(1))
    assert len(runs) == 49 and all(re.fullmatch(r"\d\d-\d\d \d\d:\d\d", r) for r in runs)
    row = {r.attrs["data-k"]: r for r in rows}
    # The login outage is 4 of 168 runs ago 3 days: 24 h clean, 7 d 164/168.
    login = row["user/账户/登录"]
    assert login.find_all("span", "a24")[0].text == "100%"
    assert login.find_all("span", "a7")[0].text == f"{164 / 168 * 100:.2f}%"
    assert login.find_all("span", "a7")[0].attrs["title"] == "164/168"
    # 30 d, 90 d and 1 y read the daily rollups (the week is all there is), and agree with the raw count.
    for window in ("a30", "a90", "a1y"):
        assert login.find_all("span", window)[0].attrs["title"] == "164/168"
    code = login.find_all("span", "days")[0].attrs["data-d"].split(";")
    assert len(code[0]) == 90 and code[0][:-8] == "." * 82 and "." not in code[0][-7:]
    lost = [tuple(map(int, d.split(":")[1].split("/"))) for d in code[1:]]
    assert sum(c - p for p, c in lost) == 4 and sum(c for _, c in lost) <= 48  # the 4 failed hourly checks
    user = next(s for s in services if s.find_all("b")[0].text == "user")
    assert "1年 " in user.find_all("summary")[0].all_text()
    order = row["order/下单/创建订单"]
    assert "bad" in order.attrs["class"].split()
    last = [c for c in tokens(order) if c[0] != "s"][-1]
    assert last[:4] == ["c3", "", "5000", "3"]  # timeout (category class c3), no status, 5000 ms, 3 attempts
    assert ["s"] in tokens(order), "circuit-open runs show as skipped cells"
    assert ["r", "200", "120", "2"] in tokens(row["pay/回调/支付回调"])  # flaky: passed on the 2nd attempt
    nurse = row["nurse/排班/查询排班"].find_all("svg")[0]
    points = [tuple(map(float, p.split(","))) for p in nurse.find_all("polyline")[0].attrs["points"].split()]
    assert len(points) == 28 and points[0][1] > points[-1][1]  # slower: the line rises (smaller y)
    circuits = by_id(root, "circuits").all_text()
    assert "order/创建订单" in circuits and "(1)" in circuits
    incidents = by_id(root, "incidents")
    kinds = {tr.find_all("td")[0].text: tr.attrs["class"] for tr in incidents.find_all("tr")[1:]}
    assert kinds["order/创建订单"] == "inc-down" and kinds["order/订单详情"] == "inc-flapping"
    assert "超时" in next(tr for tr in incidents.find_all("tr") if "inc-down" in tr.attrs.get("class", "")).all_text()
    last_run = by_id(root, "last-run").all_text()
    assert "总数 9" in last_run and "失败 1" in last_run and "跳过" in last_run
    # Escaping: the hostile name is text, never markup.
    assert EVIL in html.unescape(page)
    assert "<script>alert" not in page and len(root.find_all("script")) == 1
    assert any(EVIL in r.all_text() for r in rows)
    assert_self_contained(root, page)


def test_failure_reasons_are_masked(week: tuple[StateStore, RunResult, Verdict]) -> None:
    from pytest_apimon.redact import Redactor

    store, run, verdict = week
    results = [replace(r, outcome="failed", category="timeout", reason="read timeout; token=abcdef123456")
               if r.name == "创建订单" else r for r in run.results]
    page = render_status_page(store, "prod", replace(run, results=results), verdict,
                              redactor=Redactor(["abcdef123456"]))
    assert "abcdef123456" not in page
    assert "read timeout; token=******" in by_id(parse(page), "incidents").all_text()


def assert_self_contained(root: Node, page: str) -> None:
    for node in root.find_all():
        for attr in ("src", "href", "action", "poster", "data"):
            value = node.attrs.get(attr, "")
            assert not re.match(r"\s*(https?:)?//", value, re.I), f"external {attr}={value!r}"
    assert "@import" not in page and "url(" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)


def test_sparkline_buckets_are_nearest_rank_p95(tmp_path: Path) -> None:
    from pytest_apimon.rollup import hour_floor
    from pytest_apimon.state import p95

    rng = random.Random(3)
    since = hour_floor(NOW) + HOUR - 7 * DAY  # as the page does: hour-aligned, so hourly rollups fit buckets
    with StateStore.in_dir(tmp_path) as store:
        expected: dict[int, list[float]] = {}
        for j in range(120):
            started = NOW - 10 * DAY + j * HOUR * 2
            lat = round(rng.uniform(1, 500)) if j % 9 else 77.0  # ties on purpose
            store.record_run(RunResult(started, started + 1, "prod", [
                InterfaceResult("n::a", "s", "m", "a", status=200, elapsed_ms=lat)]), {}, now=started + 1)
            if started >= since:
                expected.setdefault(int((started - since) // (6 * HOUR)), []).append(lat)
        got = store.p95_buckets("prod", since=since, width=6 * HOUR)["s/a"]
    assert got == {b: p95(v) for b, v in expected.items()}


def test_english_and_empty_history(tmp_path: Path) -> None:
    with StateStore.in_dir(tmp_path) as store:
        run = RunResult(NOW - 5, NOW, "staging", [InterfaceResult("n::a", "svc", "mod", "a", outcome="passed",
                                                                  status=200, elapsed_ms=12.0)])
        page = render_status_page(store, "staging", run, None, lang="en", title="Team A")  # nothing recorded yet
        root = parse(page)
        assert by_id(root, "banner").text == "All systems operational"
        assert root.find_all("title")[0].text == "Team A" and 'lang="en"' in page
        assert root.find_all("div", "row")[1].find_all("span", "bar")[0].children == []
        assert "none" in by_id(root, "circuits").all_text()


@pytest.mark.perf
def test_thousand_interfaces_thirty_days_within_budget(tmp_path: Path) -> None:
    """1000 interfaces, hourly runs for 30 days (720 000 results): a few MB, rendered in seconds."""
    rng = random.Random(7)
    n_itf, n_runs = 1000, 30 * 24
    names = [(f"服务{i % 20:02d}", f"模块{i % 7}", f"接口-{i:04d}") for i in range(n_itf)]
    with StateStore.in_dir(tmp_path, retention_days=31) as store:
        conn = store.conn
        conn.execute("BEGIN")
        for j in range(n_runs):
            started = NOW - (n_runs - j) * HOUR
            run_id = conn.execute(
                "INSERT INTO runs (env, started_at, finished_at, total, passed, failed, skipped, selection_complete)"
                " VALUES ('prod', ?, ?, ?, ?, 0, 0, 1)", (started, started + 60, n_itf, n_itf)).lastrowid
            rows = []
            for service, _, name in names:
                bad = rng.random() < 0.02
                rows.append((run_id, f"{service}/{name}", service, name, "failed" if bad else "passed",
                             "timeout" if bad else None, None if bad else 200, rng.uniform(20, 300), 1))
            conn.executemany("INSERT INTO results (run_id, key, service, nodeid, outcome, category, status,"
                             " latency_ms, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        results = [InterfaceResult(f"{s}::{n}", s, m, n, method="GET", status=200, elapsed_ms=50.0)
                   for s, m, n in names]
        run = RunResult(NOW - 60, NOW, "prod", results)
        t0 = time.perf_counter()
        page = render_status_page(store, "prod", run, None)
        elapsed = time.perf_counter() - t0
    size = len(page.encode("utf-8"))
    print(f"\n1000 interfaces x 720 runs: {size / 1e6:.2f} MB, rendered in {elapsed:.2f} s")
    assert size <= 3_000_000  # issue 18: <= 3 MB uncompressed at 1000 interfaces
    assert elapsed < 20
    root = parse(page)
    assert len([r for r in root.find_all("div", "row") if "data-k" in r.attrs]) == n_itf
    write_status_page(tmp_path / "out" / "big.html", page)
    assert (tmp_path / "out" / "big.html").stat().st_size == size


# -- a real browser --------------------------------------------------------------------------------------

def chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False, stdin=subprocess.DEVNULL)


CHARSET = '<meta charset="utf-8">'
ERROR_PROBE = ("<script>window.addEventListener('error',function(e){var d=document.documentElement;"
               "d.setAttribute('data-errors',(d.getAttribute('data-errors')||'')+e.message+';');});</script>")


@pytest.mark.integration
def test_in_headless_chromium(week: tuple[StateStore, RunResult, Verdict], tmp_path: Path) -> None:
    binary = chromium()
    store, run, verdict = week
    artifacts = Path(os.environ.get("APIMON_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    page = write_status_page(artifacts / "statuspage.html", render_status_page(store, "prod", run, verdict))
    # The page's own script marks <body data-ready> at its end; the probe (first in <head>) records errors.
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace(CHARSET, CHARSET + ERROR_PROBE, 1), encoding="utf-8")
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout, dom.stderr[-2000:]
    html_tag = re.search(r"<html[^>]*>", dom.stdout)
    assert html_tag and "data-errors" not in html_tag.group(0), html_tag
    assert "查询排班" in dom.stdout  # UTF-8 decoded as such
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    for name, size in (("statuspage.png", "1280,2000"), ("statuspage-phone.png", "390,1600")):
        shot = artifacts / name
        done = run_chromium(binary, tmp_path / f"profile-{name}", f"--screenshot={shot}", f"--window-size={size}",
                            page.as_uri())
        assert done.returncode == 0, done.stderr[-2000:]
        assert shot.stat().st_size > 10_000, name  # a real picture, not a blank frame
        errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert not errors, errors


NODE_DOM = r"""
// The smallest DOM the page script needs: one opened service with one run bar and one daily bar.
const src = require('fs').readFileSync(process.argv[2], 'utf8');
function el(attrs, children) {
  return {attrs, children: children || [], title: attrs.title || '', innerHTML: '',
          getAttribute(k) { return this.attrs[k]; }, setAttribute(k, v) { this.attrs[k] = v; },
          classList: {contains() { return false; }}, addEventListener() {}, querySelectorAll() { return []; }};
}
const bar = el({'data-b': process.argv[3]}), days = el({'data-d': process.argv[4]});
const svc = el({}); svc.open = true;
svc.querySelectorAll = q => q === '.days' ? [days] : q === '.bar' ? [bar] : [];
global.document = {getElementById() { return el({}); }, addEventListener() {},
                   querySelectorAll(q) { return q === 'details.svc' ? [svc] : []; }, body: el({})};
(0, eval)(src);
console.log(JSON.stringify({bar: bar.innerHTML, days: days.innerHTML}));
"""


@pytest.mark.integration
def test_page_script_draws_the_bars(week: tuple[StateStore, RunResult, Verdict], tmp_path: Path) -> None:
    """The inline script (run by node against a minimal DOM): run times prefixed, the 90 daily cells drawn."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    store, run, verdict = week
    page = render_status_page(store, "prod", run, verdict)
    (tmp_path / "page.js").write_text(re.findall(r"<script>(.*?)</script>", page, re.S)[-1], encoding="utf-8")
    (tmp_path / "dom.js").write_text(NODE_DOM, encoding="utf-8")
    rows = {r.attrs.get("data-k"): r for r in parse(page).find_all("div", "row")}

    def draw(key: str) -> dict[str, str]:
        row = rows[key]
        bar, days = row.find_all("span", "bar")[0].attrs["data-b"], row.find_all("span", "days")[0].attrs["data-d"]
        done = subprocess.run([node, str(tmp_path / "dom.js"), str(tmp_path / "page.js"), bar, days],
                              capture_output=True, text=True, timeout=60, check=True)
        return json.loads(done.stdout)

    runs = json.loads(re.search(r"APIMON_RUNS=(\[.*?\]);", page).group(1))
    order = re.findall(r'<i(?: class=(\w+))? title="([^"]*)"></i>', draw("order/下单/创建订单")["bar"])
    assert [when for when in runs] == [title.split(" · ")[0] for _, title in order]
    failed = [(cls, title) for cls, title in order if cls == "c3"]
    assert failed and failed[-1][1].endswith("超时 · 5000 ms · 3 次尝试")
    assert any(cls == "s" and title.endswith("跳过") for cls, title in order)
    flaky = re.findall(r'<i class=r title="([^"]*)"></i>', draw("pay/回调/支付回调")["bar"])
    assert flaky and flaky[0].endswith("200 · 120 ms · 2 次尝试")
    drawn = draw("user/账户/登录")
    cells = re.findall(r'<i class="d(\w)" title="([^"]*)"></i>', drawn["days"])
    assert len(cells) == 90 and cells[-1][1].startswith(time.strftime("%Y-%m-%d", time.localtime(NOW)))
    bad = [title for cls, title in cells if cls in "BCD"]
    assert bad and all("%" in t and "/" in t for t in bad) and cells[0] == ("N", cells[0][1])


# -- escaping and masking in one place; the daily bar without JavaScript -------------------------------------

HOSTILE = [
    "</script><script>alert(1)</script>",
    "\"'><img src=x onerror=alert(2)>",
    "{{ 7*7 }}{% raw %}${x}",
    "服务·中文「引号」",
    "a</style><style>body{display:none}",
]


def test_hostile_names_stay_text(tmp_path: Path) -> None:
    """Every document/server text (service, module, name, method, env, title, reason) lands as text: the page
    has its one script, no attribute or element is added, template syntax in a name is not evaluated."""
    with StateStore.in_dir(tmp_path) as store:
        results = [InterfaceResult(f"n::{i}", service, HOSTILE[(i + 1) % 5], HOSTILE[(i + 2) % 5],
                                   method=HOSTILE[(i + 3) % 5], outcome="failed", category="server_error",
                                   status=500, reason=HOSTILE[(i + 4) % 5], elapsed_ms=5.0, started_at=NOW - 5)
                   for i, service in enumerate(HOSTILE)]
        run = RunResult(NOW - 5, NOW, HOSTILE[0], results)
        settings = parse_policy({"failure_threshold": 1}, {})
        verdict = evaluate({}, results, settings, NOW, store.load_memory(HOSTILE[0]))
        store.record_run(run, verdict.states, verdict.memory, now=NOW)
        page = render_status_page(store, HOSTILE[0], run, verdict, title=HOSTILE[1])
    root = parse(page)  # also: every element closes where it should
    scripts = root.find_all("script")
    assert len(scripts) == 1 and scripts[0].text.startswith("var APIMON_DAYS=")
    assert len(root.find_all("style")) == 1 and len(root.find_all("img")) == 0
    assert not [n for n in root.find_all() if any(a.startswith("on") for a in n.attrs)]
    assert "49" not in root.find_all("title")[0].text
    text = html.unescape(page)
    for hostile in HOSTILE:
        assert hostile in text
    rows = [r for r in root.find_all("div", "row") if "data-k" in r.attrs]
    names = [r.find_all("span", "nm")[0] for r in rows]
    assert sorted(nm.text.strip() for nm in names) == sorted(HOSTILE)
    assert sorted(nm.find_all("span", "m")[0].text for nm in names) == sorted(HOSTILE)
    assert [s.find_all("b")[0].text for s in root.find_all("details", "svc")] == sorted(HOSTILE)
    assert root.find_all("title")[0].text == HOSTILE[1] and root.find_all("h1")[0].text == HOSTILE[1]
    assert {tr.find_all("td")[4].text.split(" · ")[-1] for tr in by_id(root, "incidents").find_all("tr")[1:]} \
        == set(HOSTILE)


def test_script_json_and_css_strings_cannot_break_out() -> None:
    """The environment's tojson (JSON in <script>) and css_string (labels in <style>) escape what ends them."""
    from pytest_apimon.statuspage import _MASK, _environment

    env = _environment()
    token = _MASK.set(str)
    try:
        pages = [env.from_string("<script>var x={{ v|tojson }};</script><style>a::before{content:{{ v|css_string }}}"
                                 "</style>").render(v=value) for value in HOSTILE]
    finally:
        _MASK.reset(token)
    for value, out in zip(HOSTILE, pages, strict=True):
        script = out[len("<script>var x="):out.index(";</script>")]
        assert "<" not in script and ">" not in script and "&" not in script and "'" not in script
        assert json.loads(script) == value
        style = out[out.index("<style>") + 7:-len("</style>")]
        assert "<" not in style and '"' not in style[len('a::before{content:"'):-2]


def test_secrets_in_names_are_masked_once_everywhere(tmp_path: Path) -> None:
    from pytest_apimon.redact import Redactor

    secret = "s3cr3t-T0ken-abcdef"
    with StateStore.in_dir(tmp_path) as store:
        run = RunResult(NOW - 5, NOW, "prod", [InterfaceResult(
            "n::a", "svc", "mod", f"login?token={secret}", outcome="failed", category="auth", status=401,
            reason=f"Authorization: Bearer {secret}", started_at=NOW - 5)])
        verdict = evaluate({}, run.results, parse_policy({"failure_threshold": 1}, {}), NOW, store.load_memory("prod"))
        store.record_run(run, verdict.states, verdict.memory, now=NOW)
        page = render_status_page(store, "prod", run, verdict, redactor=Redactor([secret]))
    assert secret not in page and secret.lower() not in page
    assert "login?token=******" in html.unescape(page)


def expand_days(row: Node) -> list[str]:
    """The daily bar as drawn server-side: one level class per day, from the SVG paths' `M{x} .5h{n}` segments."""
    svg = row.find_all("span", "days")[0].find_all("svg")[0]
    days: dict[int, str] = {}
    for path in svg.find_all("path"):
        for x, n in re.findall(r"M(\d+) \.5h(\d+)", path.attrs["d"]):
            for day in range(int(x), int(x) + int(n)):
                assert day not in days, f"day {day} drawn twice"
                days[day] = path.attrs["class"]
    assert sorted(days) == list(range(len(days)))
    return [days[d] for d in range(len(days))]


def test_daily_bar_is_drawn_without_javascript(week: tuple[StateStore, RunResult, Verdict]) -> None:
    """Issue 18: the 90 days are markup (inline SVG), no script needed; the same levels the script enhances."""
    store, run, verdict = week
    page = render_status_page(store, "prod", run, verdict)
    root = parse(page)
    _, per_key = store.daily_history("prod", days=90, now=NOW)
    rows = {r.attrs["data-k"]: r for r in root.find_all("div", "row") if "data-k" in r.attrs}
    for r in run.results:
        row = rows[f"{r.service}/{r.module}/{r.name}".lower()]
        drawn = expand_days(row)
        assert len(drawn) == 90
        expected = []
        for a in per_key.get(f"{r.service}/{r.name}", [Availability(0, 0)] * 90):
            ratio = a.passed / a.checks if a.checks else None
            expected.append("dN" if ratio is None else "dA" if ratio == 1 else "dB" if ratio >= 0.99
                            else "dC" if ratio >= 0.95 else "dD")
        assert drawn == expected, r.name
        summary = row.find_all("span", "days")[0].find_all("title")[0].text  # the days per level, as hover text
        assert sum(int(n) for n in re.findall(r"×(\d+)", summary)) == 90
    login = expand_days(rows["user/账户/登录"])
    assert login[:82] == ["dN"] * 82 and "dN" not in login[-7:] and set(login[-7:]) - {"dA"}
