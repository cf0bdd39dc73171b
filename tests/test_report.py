from __future__ import annotations

import json
from datetime import datetime

import pytest

from pytest_apimon.categories import ORDER
from pytest_apimon.redact import MASK, Redactor
from pytest_apimon.report import (
    BODY_EXCERPT_BYTES,
    compute_stats,
    excerpt,
    render_json,
    render_markdown,
    render_terminal,
)
from pytest_apimon.results import InterfaceResult, RunResult

SECRET = "PLANTED-s3cr3t-Zq9"
START = 1714528800.0
FINISH = START + 12.34


def _r(name: str, outcome: str = "passed", category: str | None = None, **kw) -> InterfaceResult:
    kw.setdefault("service", "user")
    kw.setdefault("module", "账户")
    return InterfaceResult(nodeid=f"docs/{name}", name=name, outcome=outcome, category=category,
                           method=kw.pop("method", "GET"), url=kw.pop("url", f"https://api.example.com/{name}"), **kw)


def _run(results: list[InterfaceResult]) -> RunResult:
    return RunResult(started_at=START, finished_at=FINISH, env="prod", results=results)


@pytest.fixture
def run() -> RunResult:
    return _run([
        _r("ok-1", status=200, elapsed_ms=40),
        _r("ok-2", status=200, elapsed_ms=60, service="order", module="订单"),
        _r("z-slow", "failed", "timeout", reason="timed out after 5 s", elapsed_ms=5000, attempts=3),
        _r("a-slow", "failed", "timeout", reason="timed out after 5 s", elapsed_ms=5001),
        _r("boom", "failed", "server_error", status=500, elapsed_ms=30, reason="HTTP 500 Internal Server Error"),
        _r("login", "failed", "auth", method="POST", status=401, elapsed_ms=20, reason="401 token expired",
           url=f"https://api.example.com/login?access_token={SECRET}",
           request_headers={"Authorization": f"Bearer {SECRET}", "Cookie": f"sid={SECRET}", "Accept": "*/*"},
           request_body=json.dumps({"username": "张三", "password": SECRET}),
           response_headers={"Set-Cookie": f"sid={SECRET}", "Content-Type": "application/json"},
           response_body=json.dumps({"code": 401, "msg": "令牌已过期", "data": {"token": SECRET}}, ensure_ascii=False),
           file="docs/user.yaml", line=7),
        _r("export", "skipped", reason="tag excluded: slow"),
    ])


# -- stats ---------------------------------------------------------------------------------------------
def test_stats_counts_rate_and_category_order(run: RunResult) -> None:
    s = compute_stats(run)
    assert (s.total, s.passed, s.failed, s.skipped) == (7, 2, 4, 1)
    assert s.by_category == {"auth": 1, "timeout": 2, "server_error": 1}
    assert list(s.by_category) == [c.value for c in ORDER if c.value in s.by_category]
    assert s.success_rate == pytest.approx(2 / 6)


def test_stats_nearest_rank_percentiles() -> None:
    results = [_r(f"i{v}", elapsed_ms=float(v)) for v in range(1, 21)]  # 1..20 ms
    results.append(_r("nolatency", "failed", "network"))
    s = compute_stats(_run(results))
    assert (s.p50_ms, s.p95_ms, s.max_ms) == (10.0, 19.0, 20.0)
    one = compute_stats(_run([_r("x", elapsed_ms=7.5)]))
    assert (one.p50_ms, one.p95_ms, one.max_ms) == (7.5, 7.5, 7.5)


def test_stats_zero_results() -> None:
    s = compute_stats(_run([]))
    assert (s.total, s.passed, s.failed, s.skipped, s.by_category) == (0, 0, 0, 0, {})
    assert s.success_rate is None and s.p50_ms is None and s.p95_ms is None and s.max_ms is None


def test_stats_all_skipped() -> None:
    s = compute_stats(_run([_r("a", "skipped", reason="r"), _r("b", "skipped", reason="r")]))
    assert (s.total, s.skipped, s.success_rate, s.max_ms) == (2, 2, None, None)


def test_stats_failure_without_category_counts_as_unexpected() -> None:
    assert compute_stats(_run([_r("a", "failed")])).by_category == {"unexpected": 1}


# -- terminal ------------------------------------------------------------------------------------------
def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")[:-2] + ":" + \
        datetime.fromtimestamp(ts).astimezone().strftime("%z")[-2:]


def test_terminal_zh(run: RunResult) -> None:
    out = render_terminal(run, "zh")
    lines = out.splitlines()
    assert lines[0] == f"开始 {_local(START)} · 结束 {_local(FINISH)} · 耗时 12.3 s"
    assert lines[1] == "环境 prod"
    assert lines[2] == "总数 7 · 通过 2 · 失败 4 (认证失败 1，超时 2，服务器错误 1) · 跳过 1 · 成功率 33.3%"
    assert lines[3] == "延迟 P50 40 ms · P95 5001 ms · 最大 5001 ms"
    assert not [ln for ln in lines if ln.startswith("[")]  # zh: no machine-name tags
    assert [ln for ln in lines if ln in ("认证失败 (1)", "超时 (2)", "服务器错误 (1)")] == [
        "认证失败 (1)", "超时 (2)", "服务器错误 (1)"]
    # within a category: sorted by service/module/name; attempts only when > 1
    timeout_block = lines[lines.index("超时 (2)") + 1: lines.index("超时 (2)") + 3]
    assert "a-slow" in timeout_block[0] and "尝试" not in timeout_block[0]
    assert "z-slow" in timeout_block[1] and timeout_block[1].endswith("· 尝试 3 次")
    assert any("boom" in ln and "→ 500" in ln and "HTTP 500 服务器内部错误" in ln for ln in lines)
    assert lines[-2:] == ["跳过 (1)", "  user/账户 · export — 标签被排除：slow"]
    assert "\x1b[" not in out


def test_terminal_en(run: RunResult) -> None:
    out = render_terminal(run, "en")
    assert f"Start {_local(START)} · End {_local(FINISH)} · Duration 12.3 s" in out
    assert "Total 7 · Passed 2 · Failed 4 (auth 1, timeout 2, server_error 1) · Skipped 1 · Success rate 33.3%" in out
    assert "Latency P50 40 ms · P95 5001 ms · max 5001 ms" in out
    assert "[timeout] timeout (2)" in out and "· 3 attempts" in out and "Skipped (1)" in out


def test_terminal_empty_run() -> None:
    out = render_terminal(_run([]), "zh")
    assert "总数 0 · 通过 0 · 失败 0 · 跳过 0 · 成功率 无" in out and "延迟 P50 无" in out
    assert "Success rate n/a" in render_terminal(_run([]), "en")


# -- markdown ------------------------------------------------------------------------------------------
def test_markdown_zh_sections_and_grouping(run: RunResult) -> None:
    out = render_markdown(run, "zh")
    lines = out.splitlines()
    assert lines[0] == "# 接口巡检报告 · prod"
    assert lines[1] == '**结果**：<font color="warning">4 个失败</font>'
    assert f"> 开始 {_local(START)} · 结束 {_local(FINISH)} · 耗时 12.3 s" in lines
    for section in ("## 概览", "## 问题列表", "## 跳过 (1)", "## 详情"):
        assert section in lines
    groups = [ln for ln in lines if ln.startswith("### ") and not ln[4].isdigit()]
    assert groups == ["### 认证失败 (1)", "### 超时 (2)", "### 服务器错误 (1)"]  # zh: no machine names
    assert "- 成功率 **33.3%**" in lines
    login = next(ln for ln in lines if ln.startswith("- **user/账户 · login**"))
    assert "`POST https://api.example.com/login?access_token=******`" in login and "状态 401" in login
    assert "### 4. [服务器错误] user/账户 · boom" in lines  # details follow the problem-list order


def test_markdown_en_and_custom_title(run: RunResult) -> None:
    out = render_markdown(run, "en")
    assert out.startswith("# API monitor report · prod\n**Result**: <font color=\"warning\">4 failed</font>")
    assert "## Problems" in out and "## Details" in out and "3 attempts" in out
    assert render_markdown(run, "en", title="Nightly").startswith("# Nightly\n")


def test_markdown_all_passed_and_nothing_ran() -> None:
    assert "全部通过" in render_markdown(_run([_r("a", status=200)]), "zh")
    assert "All passed" in render_markdown(_run([_r("a", status=200)]), "en")
    out = render_markdown(_run([_r("a", "skipped", reason="off")]), "zh")
    assert "全部通过" not in out and "没有执行任何接口" in out and "## 详情" not in out


def test_markdown_uses_only_wecom_subset(run: RunResult) -> None:
    out = render_markdown(run, "zh")
    assert "```" not in out and "|" not in out
    for ln in out.splitlines():
        assert not ln.startswith("####")
        assert ln.count("`") % 2 == 0, ln


def test_markdown_without_details(run: RunResult) -> None:
    out = render_markdown(run, "zh", details=False)
    assert "## 详情" not in out and "## 问题列表" in out


def test_markdown_details_show_request_and_response(run: RunResult) -> None:
    out = render_markdown(run, "en")
    assert "- Request headers: `Authorization: Bearer ******`; `Cookie: ******`" in out  # routine headers left out
    assert '- Request body: `{"username": "\\u5f20\\u4e09", "password": "******"}`' in out
    assert "- Response: status 401 · 20 ms" in out
    assert "- Location: `docs/user.yaml:7`" in out
    assert "> **Reason**: 401 token expired" in out


def test_response_excerpt_limited_on_char_boundary() -> None:
    body = "服务暂时不可用，请稍后再试。" * 50  # 3-byte characters: 300 is not always a boundary
    r = _r("down", "failed", "unavailable", status=503, response_body="x" + body)
    out = render_markdown(_run([r]), "zh")
    line = next(ln for ln in out.splitlines() if ln.startswith("- 响应体："))
    shown = line.split("`")[1]
    assert shown.endswith("…")
    assert len(shown[:-1].encode("utf-8")) <= BODY_EXCERPT_BYTES
    assert (("x" + body).startswith(shown[:-1])) and "\ufffd" not in shown
    assert excerpt("短") == "短"


# -- secrets never leak --------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_planted_secret_never_rendered(run: RunResult, lang: str) -> None:
    # The plain default Redactor knows nothing about SECRET: structural rules alone must catch it.
    outputs = [render_terminal(run, lang), render_markdown(run, lang), render_json(run)]
    for out in outputs:
        assert SECRET not in out
        assert "s3cr3t" not in out


def test_literal_secret_in_free_text_masked_with_known_secrets(run: RunResult) -> None:
    # Secret mentioned in prose: only a redactor that knows the literal can catch it.
    run.results[5].response_body = f"令牌 {SECRET} 已过期"
    run.results[5].reason = f"401 for {SECRET}"
    red = Redactor([SECRET])
    for out in (render_terminal(run, redactor=red), render_markdown(run, redactor=red), render_json(run, redactor=red)):
        assert SECRET not in out
    assert f"令牌 {MASK} 已过期" in render_markdown(run, redactor=red)


def test_secret_cut_by_excerpt_does_not_leak_prefix() -> None:
    secret = "LONGSECRET-" + "k" * 20
    body = "a" * (BODY_EXCERPT_BYTES - 15) + secret
    r = _r("x", "failed", "unexpected", status=200, response_body=body)
    out = render_markdown(_run([r]), redactor=Redactor([secret]))
    assert "LONGSECRET" not in out


# -- json ----------------------------------------------------------------------------------------------
def test_json_parses_one_record_per_interface(run: RunResult) -> None:
    doc = json.loads(render_json(run))
    assert doc["env"] == "prod"
    assert doc["started_at_epoch"] == START and doc["finished_at_epoch"] == FINISH
    assert datetime.fromisoformat(doc["started_at"]).tzinfo is not None
    assert datetime.fromisoformat(doc["finished_at"]).timestamp() == pytest.approx(int(FINISH))
    assert doc["duration_s"] == pytest.approx(12.34)
    assert doc["stats"]["total"] == 7 and doc["stats"]["by_category"]["timeout"] == 2
    assert len(doc["results"]) == 7
    assert {rec["nodeid"] for rec in doc["results"]} == {r.nodeid for r in run.results}
    login = next(rec for rec in doc["results"] if rec["name"] == "login")
    assert set(login) == set(run.results[0].to_dict()) | {"flaky", "down"} and login["flaky"] is False
    assert login["request_headers"]["Authorization"] == f"Bearer {MASK}"
    assert json.loads(login["request_body"])["password"] == MASK
    assert InterfaceResult.from_dict(login).status == 401


def test_json_lays_out_one_line_per_record_and_streams_the_same_text(run: RunResult) -> None:
    """iter_json gives render_json's text in pieces, each result record one line (report.iter_json)."""
    from pytest_apimon.report import iter_json

    pieces = list(iter_json(run))
    text = render_json(run)
    assert "".join(pieces) == text and len(pieces) == len(run.results) + 3  # head, one per record, end, tail
    lines = text.splitlines()
    records = [line for line in lines if line.startswith('    {"nodeid": ')]
    assert len(records) == len(run.results)
    assert [json.loads(line.rstrip(",")) for line in records] == json.loads(text)["results"]
    assert '  "results": [' in lines and lines[-1] == "}"
    assert '"results": []' in render_json(_run([]))


def test_json_keeps_chinese_readable(run: RunResult) -> None:
    out = render_json(run)
    assert "账户" in out and "\\u8d26" not in out
    assert out.startswith("{\n  ")


def test_json_empty_run() -> None:
    doc = json.loads(render_json(_run([])))
    assert doc["results"] == [] and doc["stats"]["success_rate"] is None


def test_markdown_summary_caps_the_problem_list() -> None:
    results = [_r(f"bad{i:03d}", "failed", "server_error", status=500) for i in range(40)]
    summary = render_markdown(_run(results), "zh", "标题", max_problems=15)
    assert summary.count("**") >= 15 and "bad014" in summary and "bad015" not in summary
    assert "…以及另外 25 个，详见完整报告" in summary and "## 详情" not in summary
    full = render_markdown(_run(results), "en", "t")
    assert "bad039" in full and "more in the full report" not in full


def test_times_carry_the_configured_zone() -> None:
    from pytest_apimon import times

    try:
        times.use_zone("Asia/Shanghai")
        assert times.stamp(START) == "2024-05-01 10:00:00 +08:00"
        assert times.short(START, START) == "10:00 +08:00"
        times.use_zone("+05:30")
        assert times.stamp(START, seconds=False) == "2024-05-01 07:30 +05:30"
        times.use_zone("UTC")
        assert times.short(START, START + 86400) == "2024-05-01 02:00 +00:00"
    finally:
        times.use_zone(None)
    with pytest.raises(ValueError, match="Asia/Shanghai"):
        times.parse_zone("Beijing")
