from __future__ import annotations

import json
import logging
import re

import pytest
from fake_wecom import KEY, FakeClock, FakeWeCom, cjk_lines, robot_config
from test_language import english_words

from pytest_apimon.notify import Notification, test_webhook
from pytest_apimon.notify.settings import NotifySettings, parse_notify
from pytest_apimon.notify.split import split_markdown, utf8_len, wrap_line
from pytest_apimon.notify.wecom import WeComNotifier, format_dry_run

MARKER = re.compile(r"\((\d+)/(\d+)\)")




def settings(fake: FakeWeCom, robots: list[dict] | None = None, **notify: object) -> NotifySettings:
    return parse_notify({**notify, "wecom": robots or [robot_config(fake)]})


def notifier(s: NotifySettings, clock: FakeClock, **kw: object) -> WeComNotifier:
    return WeComNotifier(s, kw.pop("outbox", None), clock=clock.now, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


def report(markdown: str, failed: int = 1, **kw: object) -> Notification:
    return Notification(title=str(kw.pop("title", "【prod】接口监控：失败")), markdown=markdown,
                        summary=str(kw.pop("summary", "# 摘要\n失败")), run_started_at=1_790_000_000.0,
                        failed=failed, **kw)  # type: ignore[arg-type]


def failing_report(count: int) -> str:
    lines = ["# 【prod】接口监控报告：<font color=\"warning\">失败</font>", "",
             f"> 运行时间 2026-11-28 04:00:00 ~ 04:01:10，共 {count + 12} 个接口，失败 {count} 个", ""]
    for i in range(count):
        lines += [f"### {i + 1}. 护士站 查询排班 `GET /nurse/api/schedules/{i}`",
                  f"状态 <font color=\"warning\">500</font> 耗时 1234ms 重试 3 次 "
                  f"[打开](https://nurse.example.com/api/schedules/{i}?ward=A&date=2026-11-28)",
                  "> 响应：`{\"code\":500,\"msg\":\"数据库连接超时\"}`", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- splitting


def body_lines(parts: list[str]) -> list[str]:
    """The parts' lines without the page markers, for comparing with the input."""
    out = []
    for i, part in enumerate(parts):
        lines = part.split("\n")
        if i > 0 or lines[0].startswith("("):
            lines = lines[1:] if i > 0 or MARKER.fullmatch(lines[0]) else lines
        out += [MARKER.sub("", line).rstrip() for line in lines]
    return [line for line in out if line]


@pytest.mark.parametrize("size", [4094, 4095, 4096])
def test_chinese_at_the_limit_is_one_unmarked_message(size: int) -> None:
    text = cjk_lines(size)
    assert split_markdown(text, 4096) == [text]


@pytest.mark.parametrize("size", [4097, 4098, 4200, 8192, 8193, 20000])
def test_chinese_over_the_limit_is_split_marked_and_complete(size: int) -> None:
    text = cjk_lines(size)
    parts = split_markdown(text, 4096, title="【prod】接口监控")
    assert len(parts) >= 2
    for i, part in enumerate(parts, 1):
        assert utf8_len(part) <= 4096
        assert f"({i}/{len(parts)})" in part.split("\n")[0]
    assert body_lines(parts) == [line for line in text.split("\n") if line]


def test_marker_goes_on_the_heading_and_continuations_name_the_title() -> None:
    parts = split_markdown(failing_report(40), 4096, title="【prod】接口监控")
    assert parts[0].startswith("# 【prod】接口监控报告：<font color=\"warning\">失败</font> (1/")
    assert all(p.startswith(f"**【prod】接口监控 ({i}/{len(parts)})**\n") for i, p in enumerate(parts[1:], 2))
    # cuts prefer a problem boundary: every continuation starts with a problem heading
    assert all(p.split("\n")[1].startswith("### ") for p in parts[1:])


def test_constructs_are_never_cut() -> None:
    text = failing_report(60)
    for part in split_markdown(text, 4096):
        assert part.count("<font") == part.count("</font>")
        for line in part.split("\n"):
            assert line.count("`") % 2 == 0 and line.count("[") == line.count("](")


def test_over_long_line_is_wrapped_between_constructs() -> None:
    atoms = [f"服务{i} <font color=\"warning\">超时</font> [详情](https://x.example/{i}) `GET /a/{i}` "
             for i in range(200)]
    line = "".join(atoms)
    assert utf8_len(line) > 3 * 4096
    pieces = wrap_line(line, 1000)
    assert all(utf8_len(p) <= 1000 for p in pieces)
    assert "".join(pieces).replace(" ", "") == line.replace(" ", "")
    for p in pieces:
        assert p.count("<font") == p.count("</font>") and p.count("`") % 2 == 0 and p.count("[") == p.count("](")


def test_giant_construct_is_reopened_per_piece_and_chars_stay_whole() -> None:
    line = "> <font color=\"warning\">" + "数据库连接超时👩‍💻" * 400 + "</font>"
    pieces = wrap_line(line, 500)
    assert all(utf8_len(p) <= 500 and p.startswith("> ") for p in pieces)
    assert all(p.count("<font") == 1 and p.endswith("</font>") for p in pieces[1:])
    assert "".join(re.sub(r"^> |</?font[^>]*>", "", p) for p in pieces).count("👩‍💻") == 400  # no emoji broken


def test_multi_line_font_span_stays_in_one_part() -> None:
    block = "<font color=\"comment\">第一行\n" + "很长的说明" * 100 + "\n最后一行</font>"
    text = cjk_lines(3000) + "\n" + block + "\n" + cjk_lines(3000)
    parts = split_markdown(text, 4096)
    assert any(block in p for p in parts)


# ---------------------------------------------------------------- delivery against the fake


@pytest.mark.parametrize("size", [4095, 4096, 4097, 4098])
def test_sizes_around_the_limit_are_accepted(size: int, fake: FakeWeCom, clock: FakeClock) -> None:
    text = cjk_lines(size)
    result = notifier(settings(fake), clock).send(report(text, failed=0))
    assert result.delivered and not result.errors
    assert [a.errcode for a in fake.attempts] == [0] * len(fake.messages)
    assert len(fake.messages) == (1 if size <= 4096 else 2)
    if size == 4096:
        assert fake.messages[0].content == text and utf8_len(fake.messages[0].content) == 4096


def test_300_failures_send_a_summary_and_the_file(fake: FakeWeCom, clock: FakeClock) -> None:
    text = failing_report(300)
    n = report(text, failed=300, summary="# 【prod】接口监控：300 个失败\n> 成功率 3.8%\n**失败最多：护士站**")
    result = notifier(settings(fake), clock).send(n)
    assert result.delivered and result.messages_sent == 2
    summary, file_msg = fake.messages
    assert summary.msgtype == "markdown" and "300 个失败" in summary.content
    assert "apimon-report-" in summary.content and "已作为文件" in summary.content
    assert file_msg.msgtype == "file"
    upload = fake.uploads[file_msg.payload["file"]["media_id"]]
    assert upload.data == text.encode("utf-8") and upload.filename.endswith(".md")
    assert upload.filelength == str(len(upload.data))


def test_max_messages_is_configurable(fake: FakeWeCom, clock: FakeClock) -> None:
    text = failing_report(60)
    result = notifier(settings(fake, max_messages=10), clock).send(report(text))
    assert result.delivered and 2 < len(fake.messages) <= 10 and not fake.uploads


def test_mentions_markdown(fake: FakeWeCom, clock: FakeClock) -> None:
    robot = robot_config(fake, mention={"userids": ["zhangsan", "lisi", "@all"], "mobiles": ["13800001111"]})
    result = notifier(settings(fake, [robot]), clock).send(report(failing_report(30)))
    assert result.delivered
    *parts, follow = fake.messages
    assert parts[0].content.rstrip().endswith("<@zhangsan> <@lisi>")  # inline, on the first part
    assert all("<@" not in p.content for p in parts[1:]) and "<@@all>" not in parts[0].content
    assert follow.msgtype == "text" and follow.content.strip()
    assert follow.payload["text"]["mentioned_list"] == ["@all"]
    assert follow.payload["text"]["mentioned_mobile_list"] == ["13800001111"]
    assert all(utf8_len(p.content) <= 4096 for p in parts)
    assert not [w for m in fake.messages for w in m.warnings]  # nothing the real server would silently ignore


def test_mentions_markdown_v2_use_the_text_message(fake: FakeWeCom, clock: FakeClock) -> None:
    robot = robot_config(fake, message_type="markdown_v2", mention={"userids": ["zhangsan"]})
    notifier(settings(fake, [robot]), clock).send(report(failing_report(3)))
    report_msg, follow = fake.messages
    assert report_msg.msgtype == "markdown_v2" and "<font" not in report_msg.content and "500" in report_msg.content
    assert follow.payload["text"]["mentioned_list"] == ["zhangsan"]
    assert not [w for m in fake.messages for w in m.warnings]


def test_no_mentions_without_problems_and_per_service_mentions(fake: FakeWeCom, clock: FakeClock) -> None:
    robot = robot_config(fake, mention={"userids": ["ops"], "services": {"nurse": {"mobiles": ["13800002222"]}}})
    n = notifier(settings(fake, [robot]), clock)
    n.send(report("# 全部通过", failed=0))
    assert [m.msgtype for m in fake.messages] == ["markdown"] and "<@" not in fake.messages[0].content
    n.send(report("# 失败", failed=1, services=("nurse",)))
    assert fake.messages[-1].payload["text"]["mentioned_mobile_list"] == ["13800002222"]
    assert "<@ops>" in fake.messages[-2].content


def test_routing_by_service(fake: FakeWeCom, clock: FakeClock) -> None:
    nurse_key = KEY.replace("a", "c")
    fake.keys.add(nurse_key)
    robots = [robot_config(fake), robot_config(fake, name="nurse", webhook=nurse_key, services=["nurse"])]
    n = notifier(settings(fake, robots), clock)

    def scope(svcs: tuple[str, ...]) -> Notification:
        return report("# 护士站问题", services=svcs)

    n.send(report("# 全部问题", services=("nurse", "users"), scope=scope))
    assert [m.content for m in fake.for_key(KEY)] == ["# 全部问题"]
    assert [m.content for m in fake.for_key(nurse_key)] == ["# 护士站问题"]
    n.send(report("# 只有用户服务", services=("users",), scope=lambda s: None))
    assert len(fake.for_key(nurse_key)) == 1


@pytest.mark.parametrize(("code", "words"), [
    (40058, "longer than WeCom accepts"), (44004, "empty content"), (40008, "msgtype must be lowercase"),
])
def test_permanent_content_errors_are_not_retried(code: int, words: str, fake: FakeWeCom, clock: FakeClock) -> None:
    fake.fail_next(code)
    result = notifier(settings(fake), clock).send(report("# 报告"))
    assert not result.delivered and len(fake.attempts) == 1 and clock.slept == []
    assert f"errcode {code}" in result.errors[0] and words in result.errors[0]


def test_wrong_key_is_explained_without_leaking_it(fake: FakeWeCom, clock: FakeClock,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    fake.keys = {KEY.replace("a", "d")}
    with caplog.at_level(logging.INFO):
        result = notifier(settings(fake), clock).send(report("# 报告"))
    assert not result.delivered and len(fake.attempts) == 1
    assert "93000" in result.errors[0] and "copy the key again" in result.errors[0]
    assert KEY not in caplog.text and KEY not in " ".join(result.errors)


def test_busy_is_retried_with_exponential_backoff(fake: FakeWeCom, clock: FakeClock) -> None:
    fake.fail_next(-1, 2)
    result = notifier(settings(fake), clock).send(report("# 报告"))
    assert result.delivered and clock.slept == [1.0, 2.0] and len(fake.messages) == 1


@pytest.mark.parametrize("mode", ["busy", "reset", "http500", "refuse"])
def test_gives_up_after_three_retries(mode: str, fake: FakeWeCom, clock: FakeClock) -> None:
    fake.go_down(mode)
    result = notifier(settings(fake), clock).send(report("# 报告"))
    assert not result.delivered and clock.slept == [1.0, 2.0, 4.0]
    assert "gave up after 3 retries" in result.errors[0] and KEY not in result.errors[0]
    if mode != "refuse":
        assert len(fake.attempts) == 4


def test_pacing_keeps_under_20_a_minute(fake: FakeWeCom, clock: FakeClock) -> None:
    text = cjk_lines(25 * 4000, line_chars=60)
    result = notifier(settings(fake, max_messages=40), clock).send(report(text, failed=0))
    assert result.delivered and len(fake.messages) == 26
    assert all(a.errcode == 0 for a in fake.attempts)  # never hit 45009
    assert 59 <= sum(clock.slept) <= 90


def test_45009_waits_and_retries_within_the_bound(fake: FakeWeCom, clock: FakeClock) -> None:
    fake.fill_window()  # someone else used this robot's quota
    result = notifier(settings(fake), clock).send(report("# 报告"))
    assert result.delivered and clock.slept == [61.0]
    assert [a.errcode for a in fake.attempts] == [45009, 0]


def test_45009_burst_beyond_the_bound_gives_up(fake: FakeWeCom, clock: FakeClock) -> None:
    fake.rate_limit_next(5)
    result = notifier(settings(fake, max_wait=150), clock).send(report("# 报告"))
    assert not result.delivered and "45009" in result.errors[0] and "max_wait" in result.errors[0]
    assert sum(clock.slept) <= 150 and len(fake.attempts) == 3


def test_dry_run_matches_what_is_sent(fake: FakeWeCom, clock: FakeClock) -> None:
    robot = robot_config(fake, mention={"userids": ["zhangsan"], "mobiles": ["13800001111"]})
    n = notifier(settings(fake, [robot]), clock)
    items = n.dry_run(report(failing_report(20)))
    assert fake.attempts == []
    n.send(report(failing_report(20)))
    assert [i["payload"] for i in items] == [m.payload for m in fake.messages]
    text = format_dry_run(items)
    assert "robot 'default': markdown" in text and "mentioned_mobile_list" in text and KEY not in text


def test_dry_run_shows_the_file_upload(fake: FakeWeCom, clock: FakeClock) -> None:
    items = notifier(settings(fake), clock).dry_run(report(failing_report(300)))
    assert [i["endpoint"] for i in items] == ["send", "upload_media", "send"]
    assert "upload_media type=file apimon-report-" in format_dry_run(items)


def test_test_webhook(fake: FakeWeCom, clock: FakeClock) -> None:
    s = settings(fake)
    assert test_webhook(s, clock=clock.now, sleep=clock.sleep, lang="en") == (
        "WeCom robot 'default': OK: the test message was accepted (errcode 0, ok)")
    assert "测试消息" not in fake.messages[0].content  # the test message speaks the language asked for
    assert test_webhook(s, clock=clock.now, sleep=clock.sleep) == (
        "企业微信机器人「default」：正常：测试消息已被接受（errcode 0）")
    assert "测试消息" in fake.messages[1].content
    fake.keys = set()
    answer = test_webhook(s, clock=clock.now, sleep=clock.sleep, lang="en")
    assert "93000" in answer and "invalid webhook url" in answer and KEY not in answer
    answer = test_webhook(s, clock=clock.now, sleep=clock.sleep)
    assert "企业微信返回错误码 93000" in answer and "Webhook 地址中的密钥无效" in answer and KEY not in answer
    assert not english_words(answer, {"default"})  # no English inside the Chinese advice (issue 20)


def test_dry_run_preview_masks_mobile_mentions(fake: FakeWeCom, clock: FakeClock) -> None:
    """Issue 20: what a person reads shows a phone owner as 138****1111; the payload keeps the number."""
    robot = robot_config(fake, mention={"userids": ["zhangsan"], "mobiles": ["13800001111"]})
    items = notifier(settings(fake, [robot]), clock).dry_run(report(failing_report(2)))
    assert any("13800001111" in json.dumps(i["payload"]) for i in items)  # the API needs the number
    for lang in ("zh", "en"):
        text = format_dry_run(items, lang)
        assert "13800001111" not in text and "138****1111" in text
    assert "提醒：138****1111" in format_dry_run(items, "zh")
