from __future__ import annotations

import pytest
import yaml

from pytest_apimon.config import ConfigError
from pytest_apimon.loader import parse
from pytest_apimon.notify import Notification, should_send
from pytest_apimon.notify.settings import DEFAULT_BASE_URL, Mention, NotifySettings, parse_notify

KEY = "693a91f6-7f2e-4bc4-97a0-0ec2b1fa5aaa"

FULL = """\
notify:
  send_on: change
  language: en
  outbox_max: 10
  max_messages: 3
  max_wait: 2m
  timeout: 5s
  wecom:
    - name: default
      webhook: ${WECOM_KEY}
      mention:
        userids: [zhangsan, "@all"]
        mobiles: [13800001111, "138-0000-2222"]
    - name: nurse
      webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${NURSE_KEY}
      services: [nurse]
      message_type: markdown_v2
      mention:
        services:
          nurse: {userids: [lisi]}
"""


def load(text: str, environ: dict[str, str] | None = None) -> NotifySettings:
    parsed = parse(text, ".yaml")
    return parse_notify(parsed.data.get("notify"), file="config.yaml", environ=environ or {}, line_of=parsed.line)


def fail(raw: object, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_notify(raw, environ=environ or {})
    return info.value


def test_full_example() -> None:
    s = load(FULL, {"WECOM_KEY": KEY, "NURSE_KEY": KEY.replace("a", "b")})
    assert (s.send_on, s.language, s.outbox_max, s.max_messages, s.max_wait, s.timeout) == (
        "change", "en", 10, 3, 120.0, 5.0)
    default, nurse = s.wecom
    assert default.key == KEY and default.base_url == DEFAULT_BASE_URL and default.services == ()
    assert default.mention == Mention(("zhangsan", "@all"), ("13800001111", "13800002222"))
    assert default.send_url == f"{DEFAULT_BASE_URL}/cgi-bin/webhook/send?key={KEY}"
    assert nurse.key == KEY.replace("a", "b") and nurse.services == ("nurse",)
    assert nurse.message_type == "markdown_v2"
    assert nurse.mentions_for(("nurse",)).userids == ("lisi",)
    assert nurse.mentions_for(("users",)) == Mention()
    assert s.secrets == (KEY, KEY.replace("a", "b"))
    assert KEY not in repr(s)  # keys never reach logs through a repr


def test_defaults_and_disabled() -> None:
    s = parse_notify(None)
    assert s == NotifySettings() and not s.enabled and s.send_on == "change" and s.max_wait == 90.0
    single = parse_notify({"wecom": {"webhook": KEY}})  # one robot without the list
    assert single.enabled and single.wecom[0].name == "default" and single.wecom[0].message_type == "markdown"


def test_full_url_accepted_and_base_taken_from_it() -> None:
    robot = parse_notify({"wecom": [{"webhook": f"  https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}  "}]})
    assert robot.wecom[0].key == KEY and robot.wecom[0].base_url == DEFAULT_BASE_URL
    proxy = parse_notify({"wecom": [{"webhook": f"http://proxy.corp:8080/wx/cgi-bin/webhook/send?key={KEY}"}]})
    assert proxy.wecom[0].base_url == "http://proxy.corp:8080/wx"
    explicit = parse_notify({"wecom": [{"webhook": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}",
                                        "base_url": "http://127.0.0.1:9/"}]})
    assert explicit.wecom[0].base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(("webhook", "expected"), [
    ("", "the webhook is empty"),
    ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send", "has no 'key=' parameter"),
    ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=", "has no 'key=' parameter"),
    (f"https://qyapi.weixin.qq.com/cgi-bin/webhook/upload_media?key={KEY}", "expected '/cgi-bin/webhook/send'"),
    ("https://oapi.dingtalk.com/robot/send?access_token=abc", "DingTalk webhook"),
    ("693a91f6-7f2e-4bc4-97a0", "does not look like a WeCom robot key"),
    (KEY + "x", "does not look like a WeCom robot key"),
    (f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY[:-1]}", "does not look like a WeCom robot key"),
])
def test_webhook_shape_errors(webhook: str, expected: str) -> None:
    err = fail({"wecom": [{"name": "ops", "webhook": webhook}]})
    assert expected in err.message and "robot 'ops'" in err.message
    assert err.field == "notify.wecom[0].webhook"
    assert KEY[8:] not in str(err)  # a key is shown masked, never whole


def test_missing_env_var_names_it_and_the_field() -> None:
    text = "notify:\n  wecom:\n    - name: default\n      webhook: ${WECOM_KEY}\n"
    with pytest.raises(ConfigError) as info:
        load(text)
    assert "WECOM_KEY" in info.value.message and info.value.field == "notify.wecom[0].webhook"
    assert info.value.line == 4 and str(info.value).startswith("config.yaml:4:")


@pytest.mark.parametrize(("raw", "field", "expected"), [
    ({"send_on": "failures"}, "notify.send_on", "did you mean 'failure'"),
    ({"sendon": "always"}, "notify.sendon", "did you mean 'send_on'"),
    ({"language": "fr"}, "notify.language", "expected one of zh, en"),
    ({"outbox_max": 0}, "notify.outbox_max", ">= 1"),
    ({"max_wait": "soon"}, "notify.max_wait", "expected a number of seconds"),
    ({"timeout": 0}, "notify.timeout", "> 0"),
    ({"wecom": "abc"}, "notify.wecom", "expected a list of robots"),
    ({"wecom": [{"name": "x"}]}, "notify.wecom[0]", "missing 'webhook'"),
    ({"wecom": [{"webhook": KEY, "message_type": "Markdown"}]}, "notify.wecom[0].message_type",
     "values are lowercase"),
    ({"wecom": [{"webhook": KEY, "mention": {"mobiles": ["call me"]}}]}, "notify.wecom[0].mention.mobiles[0]",
     "not a mobile number"),
    ({"wecom": [{"webhook": KEY, "mention": {"userids": ["@zhangsan"]}}]}, "notify.wecom[0].mention.userids[0]",
     "without '@'"),
    ({"wecom": [{"webhook": KEY, "mention": {"user_ids": ["a"]}}]}, "notify.wecom[0].mention.user_ids",
     "did you mean 'userids'"),
    ({"wecom": [{"webhook": KEY}, {"name": "default", "webhook": KEY}]}, "notify.wecom[1].name", "duplicate"),
    ({"wecom": [{"webhook": KEY, "base_url": "qyapi.weixin.qq.com"}]}, "notify.wecom[0].base_url",
     "expected an http(s) URL"),
])
def test_bad_values(raw: dict, field: str, expected: str) -> None:
    err = fail(raw)
    assert err.field == field and expected in err.message, str(err)


def test_yaml_numbers_and_at_all_are_normalised() -> None:
    raw = yaml.safe_load("wecom:\n  - webhook: k\n    mention: {userids: ['@ALL', wangwu], mobiles: [13800001111]}")
    raw["wecom"][0]["webhook"] = KEY
    robot = parse_notify(raw).wecom[0]
    assert robot.mention == Mention(("@all", "wangwu"), ("13800001111",))


@pytest.mark.parametrize(("send_on", "failed", "changed", "expected"), [
    ("failure", 0, True, False), ("failure", 2, False, True),
    ("always", 0, False, True), ("change", 5, False, False), ("change", 0, True, True),
])
def test_should_send(send_on: str, failed: int, changed: bool, expected: bool) -> None:
    assert should_send(send_on, failed, changed) is expected


def test_should_send_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="send_on"):
        should_send("sometimes", 1, True)


def test_notification_routing_view() -> None:
    n = Notification("t", "md", "s", 0.0, services=("nurse",), failed=1)
    assert n.for_services(()) is n
    assert n.for_services(["nurse", "lab"]) is n  # no scope function: the full report when one of them failed
    assert n.for_services(["users"]) is None
    scoped = Notification("t", "md", "s", 0.0, services=("nurse",), scope=lambda svcs: Notification(
        "nurse only", "md2", "s2", 0.0, services=svcs))
    view = scoped.for_services(["nurse"])
    assert view is not None and view.title == "nurse only"
