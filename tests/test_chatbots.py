"""DingTalk and Feishu robots against strict local fakes: signatures, errors inside HTTP 200, limits, routing."""

from __future__ import annotations

import pytest
from fake_chatbots import DINGTALK_TOKEN, FEISHU_TOKEN, SECRET, FakeDingTalk, FakeFeishu
from fake_wecom import FakeClock, cjk_lines

from pytest_apimon.config import ConfigError
from pytest_apimon.notify import Notification, build_notifiers, test_webhook
from pytest_apimon.notify.dingtalk import DingTalkNotifier
from pytest_apimon.notify.feishu import FeishuNotifier
from pytest_apimon.notify.outbox import Outbox
from pytest_apimon.notify.settings import parse_notify
from pytest_apimon.notify.wecom import format_dry_run


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def report(markdown: str = "# 【prod】接口巡检：1 个失败\n- order · 下单 <font color=\"warning\">状态 500</font>",
           failed: int = 1, services: tuple[str, ...] = ("order",), **kw: object) -> Notification:
    return Notification(title="【prod】接口巡检：1 个失败", markdown=markdown, summary=str(kw.pop("summary", "# 摘要")),
                        run_started_at=1_790_000_000.0, failed=failed, services=services, **kw)  # type: ignore[arg-type]


def dingtalk(fake: FakeDingTalk, clock: FakeClock, secret: str | None = SECRET, outbox: Outbox | None = None,
             **robot: object) -> DingTalkNotifier:
    conf = {"webhook": f"{fake.base_url}/robot/send?access_token={DINGTALK_TOKEN}", **robot}
    if secret:
        conf["secret"] = secret
    return DingTalkNotifier(parse_notify({"dingtalk": [conf]}), outbox, clock=clock.now, sleep=clock.sleep)


def feishu(fake: FakeFeishu, clock: FakeClock, secret: str | None = SECRET, outbox: Outbox | None = None,
           **robot: object) -> FeishuNotifier:
    conf = {"webhook": f"{fake.base_url}/open-apis/bot/v2/hook/{FEISHU_TOKEN}", **robot}
    if secret:
        conf["secret"] = secret
    return FeishuNotifier(parse_notify({"feishu": [conf]}), outbox, clock=clock.now, sleep=clock.sleep)


# ---------------------------------------------------------------- config


def test_config_accepts_urls_or_tokens_and_masks_secrets() -> None:
    s = parse_notify({"dingtalk": [{"webhook": f"https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_TOKEN}",
                                    "secret": SECRET}],
                      "feishu": {"webhook": FEISHU_TOKEN}})
    assert s.dingtalk[0].key == DINGTALK_TOKEN and s.dingtalk[0].base_url == "https://oapi.dingtalk.com"
    assert s.feishu[0].send_url == f"https://open.feishu.cn/open-apis/bot/v2/hook/{FEISHU_TOKEN}"
    assert set(s.secrets) == {DINGTALK_TOKEN, SECRET, FEISHU_TOKEN}
    assert SECRET not in repr(s) and DINGTALK_TOKEN not in repr(s)
    assert s.enabled


@pytest.mark.parametrize("section, webhook, expected", [
    ("dingtalk", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x", "notify.wecom"),
    ("feishu", "https://open.feishu.cn/open-apis/bot/v2/", "expected a Feishu"),
    ("dingtalk", "https://oapi.dingtalk.com/robot/send", "expected a DingTalk"),
    ("feishu", "abc", "does not look like"),
])
def test_config_errors_name_the_field(section: str, webhook: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_notify({section: [{"webhook": webhook}]})
    assert expected in str(err.value) and f"notify.{section}[0].webhook" in str(err.value)


def test_a_dingtalk_url_under_wecom_says_where_it_belongs() -> None:
    with pytest.raises(ConfigError, match=r"notify\.dingtalk"):
        parse_notify({"wecom": [{"webhook": f"https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_TOKEN}"}]})


# ---------------------------------------------------------------- DingTalk


def test_dingtalk_signed_markdown_with_mentions(clock: FakeClock) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: SECRET}, clock=clock.now) as fake:
        n = dingtalk(fake, clock, mention={"mobiles": ["13800001111"], "userids": ["zhangsan"]})
        result = n.send(report())
        assert result.delivered and result.messages_sent == 1, result.errors
        (msg,) = fake.messages
        assert msg.msgtype == "markdown" and "<font" not in msg.content
        assert msg.payload["at"] == {"atMobiles": ["13800001111"], "atUserIds": ["zhangsan"], "isAtAll": False}
        assert msg.warnings == []  # every mentioned person is also written in the text


def test_dingtalk_wrong_secret_is_reported_and_kept(clock: FakeClock, tmp_path) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: SECRET}, clock=clock.now) as fake:
        outbox = Outbox(tmp_path)
        result = dingtalk(fake, clock, secret="SECwrong", outbox=outbox).send(report())
        assert not result.delivered and fake.errors == [(310000, "sign not match")]
        assert "secret" in result.errors[0] and "SECwrong" not in result.errors[0]
        assert result.stored_in_outbox and len(outbox) == 1  # fixable: delivered once the secret is right
        again = dingtalk(fake, clock, outbox=outbox).flush()
        assert again.redelivered == 1 and len(fake.messages) == 1


def test_dingtalk_rate_limit_is_paced_not_lost(clock: FakeClock) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: None}, clock=clock.now) as fake:
        n = dingtalk(fake, clock, secret=None)
        n.settings = parse_notify({"max_wait": "10m", "dingtalk": [{"webhook": DINGTALK_TOKEN,
                                                                     "base_url": fake.base_url}]})
        for _ in range(25):
            assert n.send(report()).delivered
        assert len(fake.messages) == 25 and not fake.errors  # paced below 20/min: never refused
        assert sum(clock.slept) >= 60


def test_dingtalk_long_report_fits_and_no_upload(clock: FakeClock) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: None}, clock=clock.now) as fake:
        n = dingtalk(fake, clock, secret=None)
        big = "# 报告\n" + cjk_lines(30000)
        assert n.send(report(big)).delivered
        assert len(fake.messages) == 2 and not fake.errors
        many = "# 报告\n" + cjk_lines(200_000)
        fake.messages.clear()
        assert n.send(report(many, summary="# 摘要\n- order 1 个失败")).delivered
        assert len(fake.messages) == 1 and "完整报告见状态页" in fake.messages[0].content


def test_dingtalk_busy_is_retried(clock: FakeClock) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: None}, clock=clock.now) as fake:
        fake.fail_next(-1, 2)
        assert dingtalk(fake, clock, secret=None).send(report()).delivered
        assert len(fake.messages) == 1 and len(fake.errors) == 2


def test_dingtalk_keyword_refusal_is_explained(clock: FakeClock) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: None}, clock=clock.now) as fake:
        fake.keyword = "告警"
        result = dingtalk(fake, clock, secret=None).send(report())
        assert not result.delivered and "keyword" in result.errors[0]


# ---------------------------------------------------------------- Feishu


def test_feishu_signed_card_with_mentions(clock: FakeClock) -> None:
    with FakeFeishu({FEISHU_TOKEN: SECRET}, clock=clock.now) as fake:
        n = feishu(fake, clock, mention={"userids": ["ou_abc", "@all"]})
        assert n.send(report()).delivered
        (msg,) = fake.messages
        assert msg.msgtype == "interactive"
        assert "<at id=ou_abc></at>" in msg.content and "<at id=all></at>" in msg.content
        assert "<font color='red'>" in msg.content and "# " not in msg.content  # card markdown subset


def test_feishu_wrong_secret_and_unknown_token(clock: FakeClock) -> None:
    with FakeFeishu({FEISHU_TOKEN: SECRET}, clock=clock.now) as fake:
        result = feishu(fake, clock, secret="other").send(report())
        assert not result.delivered and fake.errors[-1][0] == 19021 and "clock" in result.errors[0]
    with FakeFeishu({"someoneelses-token-0000": None}, clock=clock.now) as fake:
        result = feishu(fake, clock, secret=None).send(report())
        assert not result.delivered and fake.errors[-1][0] == 19001


def test_feishu_paced_to_five_a_second(clock: FakeClock) -> None:
    with FakeFeishu({FEISHU_TOKEN: None}, clock=clock.now) as fake:
        n = feishu(fake, clock, secret=None)
        for _ in range(12):
            assert n.send(report()).delivered
        assert len(fake.messages) == 12 and not fake.errors


def test_feishu_frequency_limit_waits_then_delivers(clock: FakeClock) -> None:
    with FakeFeishu({FEISHU_TOKEN: None}, clock=clock.now) as fake:
        fake.fail_next(11232)
        n = feishu(fake, clock, secret=None)
        n.settings = parse_notify({"max_wait": "5m", "feishu": [{"webhook": FEISHU_TOKEN, "base_url": fake.base_url}]})
        assert n.send(report()).delivered and len(fake.messages) == 1


def test_feishu_body_stays_under_20kb(clock: FakeClock) -> None:
    with FakeFeishu({FEISHU_TOKEN: SECRET}, clock=clock.now) as fake:
        quotes = "\n".join(f'- "引号" 和 \\ 反斜杠 {i} ' + "界" * 200 for i in range(60))
        assert feishu(fake, clock).send(report("# 报告\n" + quotes)).delivered
        assert len(fake.messages) >= 2 and not fake.errors


# ---------------------------------------------------------------- shared machinery


def test_routing_outbox_and_dry_run_are_shared(clock: FakeClock, tmp_path) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: None}, clock=clock.now) as ding, \
            FakeFeishu({FEISHU_TOKEN: None}, clock=clock.now) as fei:
        s = parse_notify({"dingtalk": [{"name": "order-group", "webhook": DINGTALK_TOKEN, "base_url": ding.base_url,
                                        "services": ["order"]}],
                          "feishu": [{"name": "member-group", "webhook": FEISHU_TOKEN, "base_url": fei.base_url,
                                      "services": ["member"]}]})
        notifiers = build_notifiers(s, tmp_path / "outbox")
        assert [n.name for n in notifiers] == ["dingtalk", "feishu"]
        text = "\n\n".join(format_dry_run(n.dry_run(report())) for n in notifiers)
        assert "dingtalk robot 'order-group'" in text and "member-group" not in text
        for n in notifiers:
            n.send(report())  # only order has problems: the member group hears nothing
        assert len(ding.messages) == 1 and fei.messages == []


def test_test_webhook_covers_every_platform(clock: FakeClock) -> None:
    with FakeDingTalk({DINGTALK_TOKEN: SECRET}, clock=clock.now) as ding, \
            FakeFeishu({FEISHU_TOKEN: SECRET}, clock=clock.now) as fei:
        s = parse_notify({"dingtalk": [{"webhook": DINGTALK_TOKEN, "secret": SECRET, "base_url": ding.base_url}],
                          "feishu": [{"webhook": FEISHU_TOKEN, "secret": "bad", "base_url": fei.base_url}]})
        answer = test_webhook(s, clock=clock.now, sleep=clock.sleep, lang="en")
        assert "DingTalk robot 'default': OK" in answer
        assert "Feishu robot 'default': Feishu answered code 19021" in answer
        zh = test_webhook(s, clock=clock.now, sleep=clock.sleep)  # zh, the default: the same answers in Chinese
        assert "钉钉机器人「default」：正常" in zh and "飞书机器人「default」：飞书返回错误码 19021" in zh
        assert "签名校验失败" in zh


def test_first_screen_and_owner_mentions_on_dingtalk_and_feishu(clock: FakeClock) -> None:
    first = "**【prod】接口巡检：1 个失败**\n失败：order 1\n- **order** · 下单：服务器错误"
    n = report(first_screen=first, details="**【prod】接口巡检：1 个失败 · 详情**\n\n- 复现：`curl -sS 'x'`",
               owners=("13800001111", "zhangsan"), mention=True)
    with FakeDingTalk({DINGTALK_TOKEN: None}, clock=clock.now) as fake:
        assert dingtalk(fake, clock, secret=None).send(n).delivered
        one, two = fake.messages
        assert one.payload["at"]["atMobiles"] == ["13800001111"] and one.payload["at"]["atUserIds"] == ["zhangsan"]
        assert len(one.content.splitlines()) <= 8 and "详情见下一条消息" in one.content and "复现" in two.content
        assert one.warnings == []
    with FakeFeishu({FEISHU_TOKEN: None}, clock=clock.now) as fake:
        assert feishu(fake, clock, secret=None).send(n).delivered
        one, two = fake.messages
        assert "<at id=zhangsan></at>" in one.content and "13800001111" not in one.content  # no mobile mentions
        assert len(one.content.splitlines()) <= 8 and "复现" in two.content
