"""The message catalogue: every line the core produces in English, and its Chinese form.

The core (probe, classify, auth, policy, the watcher) writes one canonical English line per fact, because
those lines are also log lines, JUnit properties and test expectations. What a *person* reads in a report,
a robot message or a watcher line passes through `localize(text, lang)`: with `zh` each known line is
rewritten by the rules below into Chinese; values inside it (hosts, paths, numbers, JSON) are kept as they
are. `en` returns the English line unchanged. The glossary fixes the words for the alert states so that one
state has one name everywhere (docs/zh/glossary.md lists them for readers).

A rule is (compiled pattern, Chinese template or function); rules are tried in order and the first that
matches the whole text wins; a text no rule matches is returned unchanged (so a new English line shows up in
tests/test_messages.py's corpus check rather than silently half-translated).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# The words of the alert states (docs/zh/glossary.md): one name per state, used in every message.
GLOSSARY: dict[str, tuple[str, str]] = {
    "alert": ("告警", "alert"),
    "recovered": ("恢复", "recovered"),
    "ongoing": ("持续", "ongoing"),
    "circuit_open": ("熔断", "circuit open"),
    "flapping": ("抖动", "flapping"),
    "maintenance": ("维护", "maintenance"),
    "owner": ("负责人", "owner"),
}

# HTTP reason phrases (RFC 9110 §15) as a Chinese reader expects them; the server's own words are English.
HTTP_PHRASES = {
    400: "请求错误", 401: "未认证", 403: "无权限", 404: "未找到", 405: "方法不允许", 408: "请求超时",
    409: "冲突", 413: "请求体过大", 415: "不支持的媒体类型", 422: "无法处理的请求", 429: "请求过多",
    500: "服务器内部错误", 501: "未实现", 502: "网关错误", 503: "服务不可用", 504: "网关超时",
}
_JSON_TYPES = {"null": "null", "boolean": "布尔值", "number": "数字", "integer": "整数", "string": "字符串",
               "array": "数组", "object": "对象"}
_UNREACHABLE = {
    "refused the connection": "连接被拒绝",
    "has no DNS record": "域名无法解析",
    "failed the TLS handshake": "TLS 握手失败",
    "dropped the connection": "连接被断开",
    "could not be reached": "无法连接",
    "did not accept a connection in time": "连接超时",
    "did not answer in time": "响应超时",
}

Rule = tuple[re.Pattern[str], "str | Callable[[re.Match[str]], str]"]
_RULES: list[Rule] = []


def _rule(pattern: str, template: str | Callable[[re.Match[str]], str]) -> None:
    _RULES.append((re.compile(pattern, re.S), template))


def _phrase(code: int) -> str:
    phrase = HTTP_PHRASES.get(code)
    if phrase is None:
        phrase = "服务器错误" if code >= 500 else "客户端错误" if code >= 400 else ""
    return f"HTTP {code} {phrase}".rstrip()


def _http(m: re.Match[str]) -> str:
    return _phrase(int(m.group(1)))


# ---- login (auth.py)
_rule(r"service unreachable: the login endpoint (.+?) \((\S+) (\S+) → (.*)\)",
      lambda m: f"服务不可达：登录接口{_UNREACHABLE.get(m.group(1), m.group(1))}（{m.group(2)} {m.group(3)} → "
                f"{zh(m.group(4))}）")
_rule(r"service error: the login endpoint answered HTTP (\d+) \((\S+) (\S+?)(?: \((.*)\))?\)",
      lambda m: f"服务异常：登录接口返回 {_http(m)}（{m.group(2)} {m.group(3)}"
                + (f"，服务端说明：{m.group(4)}" if m.group(4) else "") + "）")
_rule(r"login to (\S+) failed: (\S+) (\S+) → (\d+), but (.*)",
      lambda m: f"登录 {m.group(1)} 失败：{m.group(2)} {m.group(3)} → {m.group(4)}，但{zh(m.group(5))}")
_rule(r"login to (\S+) failed: (\S+) (\S+) → (\d+)(?: \((.*)\))?",
      lambda m: f"登录 {m.group(1)} 失败：{m.group(2)} {m.group(3)} → {_phrase(int(m.group(4)))}"
                + (f"（服务端说明：{m.group(5)}）" if m.group(5) else ""))
_rule(r"login to (\S+) failed: (\S+) (\S+) → (.*)",
      lambda m: f"登录 {m.group(1)} 失败：{m.group(2)} {m.group(3)} → {zh(m.group(4))}")
_rule(r"login to (\S+) failed: no base_url for service '(.*)'", r"登录 \1 失败：服务「\2」没有配置 base_url")
_rule(r"service '(.*)' has no auth configured", r"服务「\1」没有配置认证（auth）")
_rule(r"no token at '(.*)' in the response( \(not JSON\))?",
      lambda m: f"响应中「{m.group(1)}」处没有令牌" + ("（响应不是 JSON）" if m.group(2) else ""))
_rule(r"no token in response header (.*)", r"响应头 \1 中没有令牌")
_rule(r"no access_token in the response", "响应中没有 access_token")
_rule(r"the token is not a JWT with an 'exp' claim \(expiry: jwt\)", "令牌不是带 exp 声明的 JWT（expiry: jwt）")
_rule(r"no lifetime in seconds at '(.*)' \(expires_in_path\)", r"「\1」处没有以秒计的有效期（expires_in_path）")
# ---- transport (probe.py)
_rule(r"DNS lookup failed for (.*)", r"域名解析失败：\1")
_rule(r"connection refused by (.*)", r"连接被拒绝：\1")
_rule(r"no connection to (.*) within (\S+) s", r"\2 秒内无法连接 \1")
_rule(r"no data from (.*) for (\S+) s \(read timeout\)", r"\1 在 \2 秒内没有返回数据（读取超时）")
_rule(r"no complete response within (\S+) s \(total deadline\)", r"\1 秒内没有完整响应（总超时）")
_rule(r"TLS error: (.*)", r"TLS 错误：\1")
_rule(r"connection reset by (.*)", r"连接被重置：\1")
_rule(r"(.*) closed the connection without a response", r"\1 未响应就关闭了连接")
_rule(r"(.*) closed the connection mid-response", r"\1 在响应中途关闭了连接")
_rule(r"connection to (\S+) broken: (.*)", r"与 \1 的连接中断：\2")
_rule(r"more than (\d+) redirects", r"重定向超过 \1 次")
_rule(r"invalid URL: (.*)", r"URL 无效：\1")
_rule(r"no response", "无响应")
# ---- classification (classify.py)
_rule(r"HTTP (\d{3}), expected (.*)", lambda m: f"{_http(m)}，期望 {m.group(2)}")
_rule(r"HTTP (\d{3})(?: .*)?", _http)
_rule(r"body truncated at (.*); checks need all of it", r"响应体在 \1 处被截断；检查需要完整的响应体")
_rule(r"response is not JSON(?: \(Content-Type (.*?)\))?(?:: (.*)| \(empty body\))",
      lambda m: "响应不是 JSON" + (f"（Content-Type {m.group(1)}）" if m.group(1) else "")
                + (f"：{m.group(2)}" if m.group(2) else "（响应体为空）"))
_rule(r"(.*) \(\+(\d+) more\)", lambda m: f"{zh(m.group(1))}（另有 {m.group(2)} 项不符）")
_rule(r"(\S+): missing", r"\1：缺失")
_rule(r"(\S+): expected absent, got (.*)", r"\1：应不存在，实际为 \2")
_rule(r"(\S+): expected type (\w+), got (\w+)",
      lambda m: f"{m.group(1)}：期望类型 {_JSON_TYPES.get(m.group(2), m.group(2))}，"
                f"实际为 {_JSON_TYPES.get(m.group(3), m.group(3))}")
_rule(r"(\S+): expected (.*), got (.*)", r"\1：期望 \2，实际为 \3")
_rule(r"took (\S+) ms, limit (\S+) ms", r"耗时 \1 ms，超过上限 \2 ms")
# ---- circuit breaker skips (policy.py)
_rule(r"circuit open since (.*), next probe at (.*)", r"熔断中（自 \1 起），下次探测 \2")
_rule(r"internal error: (.*)", r"内部错误：\1")
# ---- skip reasons (documents, importers)
_rule(r"skipped in document", "文档标记跳过")
_rule(r"data-changing operation \((\w+)\) not monitored; enable with overrides `allow_write: true`",
      r"数据变更接口（\1）不监控；在 overrides 中设置 `allow_write: true` 启用")
_rule(r"excluded by apimon overrides \(exclude: (.*)\)", r"被 apimon overrides 排除（exclude: \1）")
_rule(r"not in the apimon overrides include list", "不在 apimon overrides 的 include 列表中")
_rule(r"(\w+) parameter (\S+) has no example — set it in apimon overrides(.*)",
      r"\1 参数 \2 没有示例值，请在 apimon overrides 中设置\3")
_rule(r"request body has no example — set it in apimon overrides \(json, form or body\)",
      "请求体没有示例值，请在 apimon overrides 中设置（json、form 或 body）")
_rule(r"variable (.*) is not defined in the collection or the environment( \(maybe set by a script, which is "
      r"not run\))? — set it in apimon overrides `variables`",
      lambda m: f"变量 {m.group(1)} 在集合和环境中都没有定义"
                + ("（可能由脚本设置，而脚本不会运行）" if m.group(2) else "")
                + "，请在 apimon overrides 的 `variables` 中设置")
_rule(r"tag excluded: (.*)", r"标签被排除：\1")
_rule(r"(\w+) operations are not monitored", r"不监控 \1 操作")
_rule(r"HTTP method (\S+) is not supported by pytest-apimon", r"pytest-apimon 不支持 HTTP 方法 \1")
_rule(r"the request has no URL", "该请求没有 URL")


# ---- document and config problems (documents.py, loader.py): "<file>:<line>: <field>: <message>; …"
_DOC_RULES: list[Rule] = []


def _doc(pattern: str, template: str | Callable[[re.Match[str]], str]) -> None:
    _DOC_RULES.append((re.compile(pattern, re.S), template))


def _hint(text: str | None) -> str:
    if not text:
        return ""
    m = re.fullmatch(r" \(did you mean '(.*)'\?\)", text)
    if m:
        return f"（是否应为 '{m.group(1)}'？）"
    m = re.fullmatch(r"; expected one of (.*)", text)
    return f"；可用的有：{m.group(1)}" if m else text


_doc(r"unknown key '(.*?)'( \(did you mean '.*'\?\)|; expected one of .*)?",
     lambda m: f"未知的键 '{m.group(1)}'{_hint(m.group(2))}")
_doc(r"unknown key '(.*?)' \(did you mean '(.*)'\?\); put fields shared by all interfaces under 'defaults'",
     r"未知的键 '\1'（是否应为 '\2'？）；所有接口共用的字段请写在 defaults 下")
_doc(r"missing required field '(.*)'", r"缺少必填字段 '\1'")
_doc(r"unknown HTTP method '(.*?)'( \(did you mean '.*'\?\))?; expected one of (.*)",
     lambda m: f"未知的 HTTP 方法 '{m.group(1)}'{_hint(m.group(2))}；可用的有：{m.group(3)}")
_doc(r"duplicate interface name '(.*)' in service '(.*)' \(first defined at (.*)\)",
     r"服务 '\2' 中的接口名 '\1' 重复（首次定义于 \3）")
_doc(r"environment variable \$\{(\w+)\} is not set \(no default: write \$\{\w+:-default\}\)",
     r"环境变量 ${\1} 未设置（没有默认值：可写成 ${\1:-默认值}）")
_doc(r"invalid YAML: (.*)", r"YAML 格式错误：\1")
_doc(r"invalid JSON: (.*)", r"JSON 格式错误：\1")
_doc(r"empty document: .*", "空文档：应为一个接口（带 name 的映射）或接口列表")
_doc(r"file is not valid UTF-8 text (.*)", r"文件不是有效的 UTF-8 文本 \1")
_doc(r"status code (\d+) is out of range: expected 100-599", r"状态码 \1 超出范围：应为 100-599")
_doc(r"exactly one of 'path' or 'url' is required", "'path' 和 'url' 必须且只能有一个")
_doc(r"expected (.*), got (.*)", r"应为 \1，实际为 \2")
_DOC_WHERE = re.compile(r"(?P<where>[^\s:][^:]*?(?::\d+)?): (?P<rest>.*)", re.S)
_FIELD = re.compile(r"(?P<field>[\w$.\[\]-]+): (?P<message>.*)", re.S)


def zh_document(text: str) -> str:
    """A DocumentError line ('file:line: field: message; field: message') with its messages in Chinese."""
    m = _DOC_WHERE.fullmatch(text)
    if m is None:
        return text
    raw: list[str] = []
    for piece in m.group("rest").split("; "):  # "…; expected one of …" continues the previous problem
        if raw and (piece.startswith(("expected one of", "put fields", "use ")) or not _FIELD.fullmatch(piece)):
            raw[-1] += "; " + piece
        else:
            raw.append(piece)
    parts = []
    for part in raw:
        f = _FIELD.fullmatch(part)
        field, message = (f.group("field") + "：", f.group("message")) if f else ("", part)
        for pattern, template in _DOC_RULES:
            hit = pattern.fullmatch(message)
            if hit is not None:
                message = template(hit) if callable(template) else hit.expand(template)
                break
        parts.append(field + message)
    return f"{m.group('where')}：" + "；".join(parts)


def zh(text: str) -> str:
    """The Chinese form of one catalogue line (unchanged when no rule knows it)."""
    for pattern, template in _RULES:
        m = pattern.fullmatch(text)
        if m is not None:
            return template(m) if callable(template) else m.expand(template)
    return text


def localize(text: str, lang: str) -> str:
    """text for a reader of lang: zh rewrites catalogue lines, en keeps them."""
    return zh(text) if lang == "zh" and text else text


def term(key: str, lang: str) -> str:
    """A glossary word: term('ongoing', 'zh') == '持续'."""
    return GLOSSARY[key][0 if lang == "zh" else 1]
