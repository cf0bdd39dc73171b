"""The message catalogue: the core's English lines and their Chinese forms (issue 20: Chinese all the way)."""

from __future__ import annotations

import re

import pytest

from pytest_apimon.categories import Category
from pytest_apimon.messages import GLOSSARY, localize, term, zh, zh_document

CASES = [
    ("service unreachable: the login endpoint refused the connection (POST http://10.0.0.1:8080/login → "
     "connection refused by 10.0.0.1:8080)",
     "服务不可达：登录接口连接被拒绝（POST http://10.0.0.1:8080/login → 连接被拒绝：10.0.0.1:8080）"),
    ("service unreachable: the login endpoint has no DNS record (POST http://order.local/login → "
     "DNS lookup failed for order.local)",
     "服务不可达：登录接口域名无法解析（POST http://order.local/login → 域名解析失败：order.local）"),
    ("service unreachable: the login endpoint did not answer in time (POST http://a:1/login → "
     "no data from a:1 for 5 s (read timeout))",
     "服务不可达：登录接口响应超时（POST http://a:1/login → a:1 在 5 秒内没有返回数据（读取超时））"),
    ("login to order failed: POST http://a/login → 401 (bad password)",
     "登录 order 失败：POST http://a/login → HTTP 401 未认证（服务端说明：bad password）"),
    ("login to order failed: POST http://a/login → 200, but no token at 'data.token' in the response",
     "登录 order 失败：POST http://a/login → 200，但响应中「data.token」处没有令牌"),
    ("HTTP 401 Unauthorized", "HTTP 401 未认证"),
    ("HTTP 403 Forbidden", "HTTP 403 无权限"),
    ("HTTP 503 Service Unavailable", "HTTP 503 服务不可用"),
    ("HTTP 418, expected 2xx", "HTTP 418 客户端错误，期望 2xx"),
    ("data.code: expected 0, got 500 (+1 more)", "data.code：期望 0，实际为 500（另有 1 项不符）"),
    ("data.id: expected type integer, got string", "data.id：期望类型 整数，实际为 字符串"),
    ("took 1520 ms, limit 800 ms", "耗时 1520 ms，超过上限 800 ms"),
    ("no complete response within 10 s (total deadline)", "10 秒内没有完整响应（总超时）"),
    ("circuit open since 11:35:00 +08:00, next probe at 11:40:00 +08:00",
     "熔断中（自 11:35:00 +08:00 起），下次探测 11:40:00 +08:00"),
    ("skipped in document", "文档标记跳过"),
]


@pytest.mark.parametrize("english, chinese", CASES)
def test_catalogue(english: str, chinese: str) -> None:
    assert zh(english) == chinese
    assert localize(english, "en") == english  # en is the canonical English line


@pytest.mark.parametrize("english, _", CASES)
def test_no_english_words_left(english: str, _: str) -> None:
    # values (hosts, paths, JSON, the server's own words in 服务端说明) may be English; our words may not
    text = re.sub(r"https?://[^\s）]+|[\w.-]+:\d+|[\w-]+\.[\w.-]+|服务端说明：[^）]*|「[^」]*」|\d+", "", zh(english))
    words = set(re.findall(r"[A-Za-z]{3,}", text)) - {"HTTP", "POST", "TLS", "DNS", "JSON", "URL", "order", "data",
                                                      "code", "token"}
    assert not words, (words, zh(english))


def test_401_and_403_are_different_categories() -> None:
    assert Category.AUTH.label("zh") == "认证失败" and Category.FORBIDDEN.label("zh") == "无权限"
    assert Category.AUTH.label("en") == "authentication failed" and Category.FORBIDDEN.label("en") == "forbidden"


def test_document_errors_in_chinese() -> None:
    line = ("Interface-pool/user/profile.yaml:5: interfaces[1].method: unknown HTTP method 'PTU' (did you mean "
            "'PUT'?); expected one of GET, POST; interfaces[1].heders: unknown key 'heders' (did you mean 'headers'?)")
    assert zh_document(line) == ("Interface-pool/user/profile.yaml:5：interfaces[1].method：未知的 HTTP 方法 'PTU'"
                                 "（是否应为 'PUT'？）；可用的有：GET, POST；interfaces[1].heders：未知的键 'heders'"
                                 "（是否应为 'headers'？）")


def test_glossary_has_one_word_per_state() -> None:
    assert [term(k, "zh") for k in GLOSSARY] == ["告警", "恢复", "持续", "熔断", "抖动", "维护", "负责人"]


def test_unknown_lines_pass_through() -> None:
    assert zh("something new") == "something new"
