"""The message catalogue: the core's English lines and their Chinese forms (issue 20: Chinese all the way)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_language import english_words

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
    ("certificate of https://shop.example.com:443 expires in 2 days (notAfter 2026-12-01 12:00 UTC)",
     "https://shop.example.com:443 的证书将在 2 天后过期（有效期至 2026-12-01 12:00 UTC）"),
    ("certificate of https://a:8443 expires in 5 hours (notAfter 2026-12-01 12:00 UTC)",
     "https://a:8443 的证书将在 5 小时后过期（有效期至 2026-12-01 12:00 UTC）"),
    ("TLS error: certificate of https://a:443 expired 1 day ago (notAfter 2026-12-01 12:00 UTC)",
     "TLS 错误：https://a:443 的证书已过期 1 天（有效期至 2026-12-01 12:00 UTC）"),
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
                                                      "code", "token", "UTC"}
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


# ---- issue 20 (s20): the rest of the core's lines, and the phrase table
MORE_CASES = [
    ("TLS error: wrong version number", "TLS 错误：协议版本不符（对端可能不是 HTTPS）"),
    ("TLS error: certificate verify failed: certificate has expired", "TLS 错误：证书校验失败：证书已过期"),
    ("TLS error: some new openssl reason", "TLS 错误：「some new openssl reason」"),
    ("header Content-Type: expected to contain \"json\", got \"text/html\"",
     "响应头 Content-Type：应包含 \"json\"，实际为 \"text/html\""),
    ("header X-Trace: missing", "响应头 X-Trace：缺失"),
    ("data.state: expected one of [\"ok\", \"up\"], got \"down\" (+1 more)",
     "data.state：期望为 [\"ok\", \"up\"] 之一，实际为 \"down\"（另有 1 项不符）"),
    ("data.total: expected >= 1, got 0", "data.total：期望 >= 1，实际为 0"),
    ("data.items: expected length <= 50, got length 73", "data.items：期望长度 <= 50，实际长度为 73"),
    ("data[\"a.b\"]: missing (a key contains dots: write data[\"a.b\"])", None),
    ("slow: took 900 ms, warn_ms 500 ms", "响应慢：耗时 900 ms，超过 warn_ms 500 ms"),
    ("schema: $.data.id: 'x' is not of type 'integer'; $: 'code' is a required property (+3 more)",
     "不符合 schema：$.data.id：'x' 的类型不是 整数；$：缺少必需属性 'code'（另有 3 项不符）"),
    ("DNS lookup for order.local did not answer within 5 s", "5 秒内没有完成 order.local 的域名解析"),
    ("proxy http://p:3128 failed: connection refused by p:3128", "代理 http://p:3128 出错：连接被拒绝：p:3128"),
    ("HTTP 404 Not Found (credentials withheld: host evil.example:443 is not an origin of service shop (add it "
     "to services.shop.trusted_origins if it should get them))",
     "HTTP 404 未找到（未发送凭据：主机 evil.example:443 不是服务 shop 的源（如果它应该得到凭据，请把它加入 "
     "services.shop.trusted_origins））"),
    ("URL still holds the template variable {id}: it is never sent; give it a value (apimon overrides `params` for "
     "an imported spec)",
     "URL 中仍有模板变量 {id}：不会发送；请给它一个值（导入的规范在 apimon overrides 的 `params` 中设置）"),
    ("waiting up to 300s (state.lock_timeout) for another run's lock (pid 42, started 11:35:00 +08:00)",
     "另一次运行正持有运行锁（pid 42，开始于 11:35:00 +08:00），最多等待 300 秒（state.lock_timeout）"),
    ("WeCom robot 'ops': waiting 3s to stay within the platform's rate limit",
     "企业微信机器人「ops」：等待 3 秒，以免超过平台的频率限制"),
    ("Feishu answered code 19021 (sign match fail): signature check failed: check notify.feishu[].secret and the "
     "machine's clock (the timestamp must be within an hour)",
     "飞书返回错误码 19021（「sign match fail」）：签名校验失败：请检查 notify.feishu[].secret 和本机时钟"
     "（时间戳须在一小时之内）"),
    ("WeCom robot 'ops': this run's report is undelivered (kept in the outbox for the next run): cannot reach "
     "WeCom (connection refused); gave up after 3 retries",
     "企业微信机器人「ops」：本次运行的报告未送达（已留在发件箱，下次运行补发）："
     "无法连接企业微信（「connection refused」）；重试 3 次后放弃"),
    ("x.json: cannot read shard results: [Errno 2] No such file or directory: 'x.json'",
     "x.json：无法读取分片结果：文件或目录不存在：'x.json'"),
    ("pool/nm/c.json: Postman binary file bodies are not sent (2 requests)",
     "pool/nm/c.json：Postman 二进制文件请求体不会发送（2 个请求）"),
]


@pytest.mark.parametrize("english, chinese", MORE_CASES)
def test_more_catalogue_lines(english: str, chinese: str | None) -> None:
    got = zh(english)
    if chinese is not None:
        assert got == chinese
    text = re.sub(r"https?://[^\s）]+|[\w/.-]+:\d+|[\w/-]+\.[\w.\[\]-]+|「[^」]*」|'[^']*'|\"[^\"]*\"|`[^`]*`|"
                  r"\{\w+\}|\$[\w.\[\]]*|\w+_\w+|\d+", "", got)
    words = set(re.findall(r"[A-Za-z]{2,}", text)) - {"HTTP", "TLS", "DNS", "JSON", "URL", "ms", "pid", "Content",
                                                      "Type", "Trace", "errcode", "Postman", "schema", "data",
                                                      "apimon", "overrides", "pytest", "shop", "ops", "state",
                                                      "HTTPS"}
    assert not words, (words, got)


@pytest.mark.parametrize("text, chinese", [
    ("p/a.yaml:2: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)",
     "p/a.yaml:2：YAML 格式错误：应为 ',' 或 ']'，实际遇到 文件末尾（解析 [...] 列表时）"),
    ("p/a.json:3: invalid JSON: Expecting ',' delimiter (column 5)",
     "p/a.json:3：JSON 格式错误：此处应为分隔符 ','（第 5 列）"),
    ("config.yaml:2: services.x.tiemout: unknown key 'tiemout' (did you mean 'timeout'?); allowed: base_url, timeout",
     "config.yaml:2：services.x.tiemout：未知的键 'tiemout'（是否应为 'timeout'？）；可用的有：base_url, timeout"),
    ("p/a.yaml:1: auth: auth: 'adminn' is not a service in the config (did you mean 'admin'?) (services with auth: "
     "admin)", "p/a.yaml:1：auth：'adminn' 不是配置中的服务（是否应为 'admin'？）（有认证的服务：admin）"),
])
def test_more_document_problems(text: str, chinese: str) -> None:
    assert zh_document(text) == chinese


def test_every_phrase_has_both_languages_with_the_same_values() -> None:
    from string import Formatter

    from pytest_apimon.messages import PHRASES, say

    for key, (chinese, english) in PHRASES.items():
        fields = {f for _, f, _, _ in Formatter().parse(english) if f}
        assert fields == {f for _, f, _, _ in Formatter().parse(chinese) if f}, key
        assert not re.search(r"[\u4e00-\u9fff]", english), key
        values = {f: f"<{f}>" for f in fields}
        assert say(key, "zh", **values) != say(key, "en", **values) or not re.search(r"[A-Za-z]{3}", english), key


def test_display_names_keep_identities() -> None:
    from pytest_apimon.messages import display_name

    assert display_name("admin/<invalid document> [admin/x.yaml]", "zh") == "admin/<文档错误> [admin/x.yaml]"
    assert display_name("a/b (duplicate)", "zh") == "a/b（重复）"
    assert display_name("admin/<invalid document>", "en") == "admin/<invalid document>"


@pytest.mark.parametrize("text", [
    "- name: a\n path: /x\n",  # a key indented less than its list item
    "a: b\n- c\n",  # a list item where a mapping goes on
    "a:\n  - x\n  b: 1\n",  # a key inside a list
    "interfaces: [unclosed\n",
    "---\na: 1\n--- x\n... y\n",
])
def test_yaml_errors_name_no_parser_tokens(text: str) -> None:
    """Issue 20: PyYAML's token names ('<block end>') are read as plain words in both languages; an
    indentation problem says to check the indentation."""
    from pytest_apimon.loader import ParseError, parse

    with pytest.raises(ParseError) as caught:
        parse(text, ".yaml")
    line = f"p/a.yaml:{caught.value.line}: {caught.value}"
    assert "<" not in line and "'?'" not in line, line
    chinese = zh_document(line)
    assert "<" not in chinese and not english_words(chinese, set()), chinese
    if "indented block" in line:
        assert "check the indentation" in line and "请检查这一行及上一行的缩进" in chinese


def _state_errors(tmp_path: Path) -> list[str]:
    """The StateError texts state.py gives for a state.db that is a folder, is not a database, or is damaged."""
    from pytest_apimon.state import StateError, StateStore

    texts = []
    folder = tmp_path / "a" / "state.db"
    folder.mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "state.db").write_bytes(b"not a database at all" * 100)
    for path in (folder, tmp_path / "b" / "state.db"):
        with pytest.raises(StateError) as caught:
            StateStore(path)
        texts.append(str(caught.value))
    return texts


def test_a_damaged_state_database_reads_in_chinese(tmp_path: Path) -> None:
    """A fuzz campaign found the state folder warning half English in zh outputs ("cannot use the state database
    …"): the run goes on without its memory (state.py), and the warning must say so in the report's language."""
    texts = _state_errors(tmp_path) + [
        f"cannot read the alert state from {tmp_path}/state.db: database disk image is malformed (the file is "
        "damaged: move it away to start afresh; the history and alert memory will be lost)",
        f"cannot read the run memory from {tmp_path}/state.db: Expecting value: line 1 column 1 (char 0) (the file "
        "is damaged: move it away to start afresh; the history and alert memory will be lost)",
        f"the state database {tmp_path}/state.db has schema version 9, newer than this pytest-apimon understands "
        "(3): upgrade pytest-apimon",
    ]
    for text in texts:
        line = localize(f"state folder {tmp_path} unusable ({text}): no history or alert policy", "zh")
        assert not english_words(line.replace(str(tmp_path), "¤"), {"pytest-apimon"}), line
        assert "状态" in line and str(tmp_path) in line
