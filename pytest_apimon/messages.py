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
    "did not read the request in time": "未及时读取请求（发送超时）",
    "did not answer in time": "响应超时",
}



class LazyPattern:
    """A regular expression compiled on its first use, with `re.compile`'s pattern and flags.

    The catalogue holds a few hundred patterns and a run localizes a handful of lines (a healthy run none):
    compiling them all when this module is imported cost every run ~20 ms of start-up (issue 15). Two threads
    compiling the same pattern at once is harmless: both get an equal pattern (re's own cache)."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern (compiled now if it was not yet). Raises re.error for a bad pattern."""
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self.pattern, self.flags)
        return compiled

    def fullmatch(self, text: str) -> re.Match[str] | None:
        """re.Pattern.fullmatch."""
        return self.compiled().fullmatch(text)

    def sub(self, repl: Callable[[re.Match[str]], str], text: str) -> str:
        """re.Pattern.sub."""
        return self.compiled().sub(repl, text)


Rule = tuple[LazyPattern, "str | Callable[[re.Match[str]], str]"]
_RULES: list[Rule] = []


def _rule(pattern: str, template: str | Callable[[re.Match[str]], str]) -> None:
    _RULES.append((LazyPattern(pattern, re.S), template))


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
_rule(r"TLS handshake with (.*) not completed within (\S+) s", r"\2 秒内未能与 \1 完成 TLS 握手")
_rule(r"could not send the request to (.*) within (\S+) s \(write timeout\)", r"\2 秒内未能把请求发送给 \1（发送超时）")
_rule(r"no data from (.*) for (\S+) s \(read timeout\)", r"\1 在 \2 秒内没有返回数据（读取超时）")
_rule(r"no complete response within (\S+) s \(total deadline\)", r"\1 秒内没有完整响应（总超时）")
_rule(r"TLS error: (.*)", lambda m: f"TLS 错误：{zh(m.group(1))}")
# ---- certificate expiry (certs.py)
_SPAN = {"day": "天", "days": "天", "hour": "小时", "hours": "小时"}
_rule(r"certificate of (\S+) expires in (\d+) (days?|hours?) \(notAfter (.*)\)",
      lambda m: f"{m.group(1)} 的证书将在 {m.group(2)} {_SPAN[m.group(3)]}后过期（有效期至 {m.group(4)}）")
_rule(r"certificate of (\S+) expired (\d+) (days?|hours?) ago \(notAfter (.*)\)",
      lambda m: f"{m.group(1)} 的证书已过期 {m.group(2)} {_SPAN[m.group(3)]}（有效期至 {m.group(4)}）")
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
_rule(r"body truncated at (.*?)( \(defaults\.max_body_bytes\))?; checks need all of it",
      r"响应体在 \1 处被截断\2；检查需要完整的响应体")
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
_rule(r"regex /(.*)/ took longer than (\S+) ms: catastrophic backtracking\? \(limits\.regex_timeout_ms\)",
      r"正则 /\1/ 匹配超过 \2 ms：可能是灾难性回溯（limits.regex_timeout_ms）")
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
    _DOC_RULES.append((LazyPattern(pattern, re.S), template))


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
# checks and expect.schema (_document_fields.py, patterns.py, response_schema.py)
_doc(r"invalid regular expression '(.*)': (.*)", r"无效的正则表达式 '\1'：\2")
_doc(r"header name '(.*)' can never be in a response: .*",
     r"响应头名 '\1' 不可能出现在响应中：字段名只能由字母、数字和 !#$%&'*+-.^_`|~ 组成，不能有空格、冒号或非 ASCII "
     r"字符（RFC 9110 §5.1）")
_doc(r"header '(.*)' is checked twice \(also as '(.*)'\): .*",
     r"响应头 '\1' 被检查了两次（另一处写作 '\2'）：响应头名不区分大小写（RFC 9110 §5.1），每个响应头只写一个检查")
_doc(r"HEAD responses have no body \(RFC 9110 §9\.3\.2\), so expect\.(\w+) can never pass: .*",
     r"HEAD 请求的响应没有响应体（RFC 9110 §9.3.2），expect.\1 永远不会通过："
     r"要检查响应体请用 GET，否则只检查状态码和响应头")
_doc(r"schema file '(.*)' is outside the pool \((.*)\): .*",
     r"schema 文件 '\1' 在接口池（\2）之外：schema 文件必须放在接口池目录内")
_doc(r"schema '(.*)' is a URL: .*",
     r"schema '\1' 是 URL：监控从不通过网络获取 schema（那样的请求会绕过服务的源、凭据和超时设置），请把它存进接口池，"
     r"写相对于本文档的路径")
_doc(r"cannot read schema file '(.*)': (.*)", r"无法读取 schema 文件 '\1'：\2")
_doc(r"schema file '(.*)' does not hold a JSON Schema \(a mapping\)", r"schema 文件 '\1' 里不是 JSON Schema（映射）")
_doc(r"it names (\S+), and a schema is never fetched over the network .*",
     r"它指向 \1，而监控从不通过网络获取 schema（那样的请求会绕过服务的源、凭据和超时设置），请把它存进接口池，"
     r"用相对于该 schema 的路径引用")
_doc(r"a schema is never fetched over the network .*",
     r"监控从不通过网络获取 schema（那样的请求会绕过服务的源、凭据和超时设置），请把它存进接口池，"
     r"用相对于该 schema 的路径引用")
_doc(r"'(.*)' does not exist in that schema", r"该 schema 中不存在 '\1'")
_doc(r"no anchor '(.*)' in that schema", r"该 schema 中没有锚点 '\1'")
_doc(r"it cannot be resolved", "无法解析")
_doc(r"more than (\d+) schema files reached through \$refs", r"通过 $ref 引用的 schema 文件超过 \1 个")


def _ref_problem(m: re.Match[str]) -> str:
    where = f"（位于 {m.group(2)} 的 {m.group(3)}）" if m.group(2) else ""
    why = m.group(4)
    for pattern, template in _DOC_RULES:
        hit = pattern.fullmatch(why)
        if hit is not None and pattern.pattern != _REF_PATTERN:
            why = template(hit) if callable(template) else hit.expand(template)
            break
    return f"$ref '{m.group(1)}'{where}：{why}"


_REF_PATTERN = r"\$ref '(.*?)'(?: in (.*) at (\S+))?: (.*)"
_doc(_REF_PATTERN, _ref_problem)
_doc(r"expected (.*), got (.*)", r"应为 \1，实际为 \2")
_DOC_WHERE = LazyPattern(r"(?P<where>[^\s:][^:]*?(?::\d+)?): (?P<rest>.*)", re.S)
_FIELD = LazyPattern(r"(?P<field>[\w$.\[\]#/~-]+): (?P<message>.*)", re.S)  # a field path or a JSON pointer


def zh_document(text: str) -> str:
    """A DocumentError line ('file:line: field: message; field: message') with its messages in Chinese."""
    m = _DOC_WHERE.fullmatch(text)
    if m is None:
        return text
    raw: list[str] = []
    for piece in m.group("rest").split("; "):  # "…; expected one of …" continues the previous problem
        if raw and (piece.startswith(("expected one of", "put fields", "use ", "allowed: "))
                    or not _FIELD.fullmatch(piece)) and not re.fullmatch(r"and \d+ more problem\(s\)", piece):
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
        else:  # not a document rule: maybe a core line (a schema that cannot be applied, an internal error)
            message = zh(message)
        parts.append(field + message)
    return f"{m.group('where')}：" + "；".join(parts)


def zh(text: str) -> str:
    """The Chinese form of one catalogue line (unchanged when no rule knows it)."""
    for rules in (_FIRST, _RULES):
        for pattern, template in rules:
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


# ======================================================================================================
# Issue 20 (s20): phrases of the pytest shell, the delivery lines and the command-line tools, in both
# languages. `say(key, lang, **values)` formats one; values (paths, names, numbers) are inserted as given.
# ======================================================================================================
PHRASES: dict[str, tuple[str, str]] = {
    # failure text below the headline (items.py, runstate.details)
    "fail.reason": ("原因：{text}", "reason: {text}"),
    "fail.request": ("请求：{method} {url}", "request: {method} {url}"),
    "fail.request_body": ("  请求体：{text}", "  body: {text}"),
    "fail.response": ("响应：{status}，耗时 {ms} ms", "response: {status} in {ms} ms"),
    "fail.response_body": ("  响应体：{text}", "  body: {text}"),
    "fail.reproduce": ("复现命令：{text}", "reproduce with: {text}"),
    "fail.internal": ("{error}（pytest-apimon 内部错误，日志中有调用栈）",
                      "{error} (an internal error of pytest-apimon; the log has the traceback)"),
    # terminal summary (collector.py)
    "term.warning": ("警告：{text}", "WARNING: {text}"),
    "term.dry_run": ("pytest-apimon：通知预览（试运行，未发送）", "pytest-apimon: notification (dry run)"),
    "term.coverage": ("pytest-apimon：监控覆盖", "pytest-apimon: coverage"),
    "term.notify_reason": ("通知：{text}", "WeCom: {text}"),
    # delivery outcome (notify/base.py DeliveryResult.describe)
    "deliver.delivered": ("已送达", "delivered"),
    "deliver.not_delivered": ("未送达", "NOT delivered"),
    "deliver.backlog_not": ("积压消息未送达", "backlog NOT delivered"),
    "deliver.backlog": ("积压消息已送达", "backlog delivered"),
    "deliver.nothing": ("没有需要送达的消息", "nothing to deliver"),
    "deliver.accepted": ("已接受 {n} 条消息", "{n} message(s) accepted"),
    "deliver.redelivered": ("补发了之前运行的 {n} 份报告", "{n} report(s) from earlier runs delivered"),
    "deliver.pending": ("{n} 份报告留在发件箱，下次运行补发", "{n} report(s) kept in the outbox for the next run"),
    "deliver.rejected": ("{n} 份报告被机器人拒收，保存在发件箱的 rejected/ 目录",
                         "{n} report(s) refused by WeCom, kept in the outbox's rejected/ folder"),
    # why nothing was sent (alerts.finish)
    "reason.no_notifier": ("没有配置机器人", "no notifier configured"),
    "reason.none_dry": ("试运行：不会发送任何消息（send_on: {send_on}；{why}）",
                        "nothing would be sent (send_on: {send_on}; {why})"),
    "reason.none": ("未发送（send_on: {send_on}；{why}）", "not sent (send_on: {send_on}; {why})"),
    "reason.nothing_new": ("与上次报告相比没有变化", "nothing new since the last report"),
    "reason.no_failure": ("没有失败", "no failure"),
    "reason.held": ("未发送（维护中，告警暂停：{services}）", "not sent (in maintenance, alerts held: {services})"),
    "reason.held_dry": ("试运行：不会发送任何消息（维护中，告警暂停：{services}）",
                        "nothing would be sent (in maintenance, alerts held: {services})"),
    "reason.maintenance_held": ("；维护中，告警暂停：{services}", "; in maintenance, alerts held: {services}"),
    "reason.no_robot_dry": ("（没有配置机器人：不会发送任何消息）",
                            "(no WeCom robot configured: nothing would be sent)"),
    # dry-run listing (notify/wecom.py format_dry_run)
    "dry.upload": ("--- {i}. {platform}机器人「{robot}」{origin}：上传文件 {filename}（{size} 字节）",
                   "--- {i}. {platform}robot '{robot}'{origin}: upload_media type=file {filename} ({size} bytes)"),
    "dry.message": ("--- {i}. {platform}机器人「{robot}」{origin}：{kind}{size}",
                    "--- {i}. {platform}robot '{robot}'{origin}: {kind}{size}"),
    "dry.size": ("，{n} 字节", ", {n} bytes"),
    "dry.from_outbox": ("（来自发件箱）", " (from outbox)"),
    "dry.mentions": ("提醒：{names}", "mentions: {names}"),
    # --apimon-test-webhook (plugin.py, notify.check_webhooks)
    "hook.line": ("{platform}机器人「{robot}」：{answer}", "{platform} robot '{robot}': {answer}"),
    "hook.ok": ("正常：测试消息已被接受（errcode 0）", "OK: the test message was accepted (errcode 0, ok)"),
    "hook.none": ("pytest-apimon：没有配置机器人（配置中的 notify.wecom、notify.dingtalk 或 notify.feishu）",
                  "pytest-apimon: no robot configured (notify.wecom, notify.dingtalk or notify.feishu in the config)"),
    # usage errors (plugin.py)
    "usage.config": ("pytest-apimon：配置错误：{text}", "pytest-apimon: invalid config: {text}"),
    "usage.config_unreadable": ("pytest-apimon：配置错误：{path}：无法读取（{error}）",
                                "pytest-apimon: invalid config: {path}: cannot be read ({error})"),
    "usage.path": ("--apimon：路径不存在：{path}", "--apimon: path not found: {path}"),
    # command-line tools (__main__.py)
    "cli.invalid_config": ("apimon {cmd}：配置错误：{text}", "apimon {cmd}: invalid config: {text}"),
    "cli.error": ("apimon {cmd}：{text}", "apimon {cmd}: {text}"),
    "cli.no_history": ("apimon export：{path} 没有历史记录", "apimon export: no history at {path}"),
    "cli.no_checks": ("apimon export：该时间段内没有环境「{env}」的检查记录（历史中的环境：{envs}；用 --env 选择）",
                      "apimon export: no checks of env '{env}' in that period (envs in the history: {envs}; "
                      "choose one with --env)"),
    "cli.none": ("无", "none"),
    # apimon merge (merge.py)
    "merge.state_unusable": ("状态目录 {path} 不可用（{error}）：没有历史和告警策略",
                             "state folder {path} unusable ({error}): no history or alert policy"),
    "merge.finish_failed": ("错误：记录或通知本次运行失败：{error}",
                            "ERROR: remembering or notifying the run failed: {error}"),
    "merge.wrote": ("已写入 {path}", "wrote {path}"),
    # a merge with missing shards (policy.shard_step, alerts.title / build_extras): the verdict of line 1
    "shards.missing": ("监控不完整：分片 {shards} 未上报结果，{n} 个接口未检查",
                       "monitoring incomplete: shard {shards} reported no results, {n} interface(s) not checked"),
    "shards.missing_n": ("监控不完整：分片 {shards} 未上报结果",
                         "monitoring incomplete: shard {shards} reported no results"),
    "shards.none": ("监控失效：{total} 个分片都没有上报结果，{n} 个接口未检查",
                    "monitoring failed: none of the {total} shards reported results, {n} interface(s) not checked"),
    "shards.none_n": ("监控失效：{total} 个分片都没有上报结果",
                      "monitoring failed: none of the {total} shards reported results"),
    "shards.none_unknown": ("监控失效：没有任何分片上报结果", "monitoring failed: no shard reported results"),
    "shards.failed": ("；{n} 个失败", "; {n} failed"),
    "shards.back": ("分片已恢复", "all shards report again"),
    "shards.back_failed": ("分片已恢复；{n} 个失败", "all shards report again; {n} failed"),
    "shards.sep": ("、", ", "),
    "shards.lead": ("分片 {shards} 自 {since} 起未上报结果；未检查的接口保持原有告警状态{services}",
                    "shard {shards} reported no results since {since}; the interfaces not checked keep their "
                    "alert state{services}"),
    "shards.lead_services": ("（{counts}）", " ({counts})"),
    "shards.reminder": ("（提醒）", " (reminder)"),
    "shards.lead_back": ("每个分片都已上报结果（缺失自 {since} 起）",
                         "every shard reported results again (missing since {since})"),
    "shards.held": ("；分片 {shards} 仍未上报（已通知过）", "; shard {shards} still missing (already announced)"),
    # a -k/-m/--lf subset run: announced-down interfaces it did not select (alerts.down_elsewhere, alerts.title)
    "subset.verdict": ("所选 {n} 个接口通过，另有 {down} 个故障未恢复（本次未检查）",
                       "{n} selected passed, {down} still down (not checked this run)"),
    "subset.note": ("故障未恢复（本次未选中，未检查）：{names}", "still down, not selected this run: {names}"),
    # a run that ended without checking some collected interfaces (a lost xdist worker; collector.py, alerts.title)
    "incomplete.verdict": ("监控不完整：{n} 个接口未检查", "monitoring incomplete: {n} interface(s) not checked"),
    "incomplete.lead": ("{n} 个接口未检查：{why}；未检查的接口保持原有告警状态",
                        "{n} interface(s) not checked: {why}; the interfaces not checked keep their alert state"),
    "incomplete.since": ("（自 {since} 起监控不完整）", " (monitoring incomplete since {since})"),
    "incomplete.back": ("监控已恢复完整", "monitoring complete again"),
    "incomplete.lead_back": ("所有接口都已重新检查（自 {since} 起监控不完整）",
                             "every interface was checked again (monitoring incomplete since {since})"),
    "incomplete.held": ("；{n} 个接口仍未检查（已通知过）", "; {n} interface(s) still not checked (already announced)"),
    "trigger.incomplete": ("监控不完整", "monitoring incomplete"),
    "trigger.incomplete_reminder": ("提醒：监控仍不完整", "reminder: monitoring still incomplete"),
    "trigger.incomplete_ongoing": ("监控仍不完整", "monitoring still incomplete"),
    "trigger.incomplete_recovered": ("监控已恢复完整", "monitoring complete again"),
    # why a message was sent (alerts.TRIGGER_WORDS)
    "trigger.shards": ("分片未上报", "shard missing"),
    "trigger.shards_reminder": ("提醒：分片仍未上报", "reminder: shard still missing"),
    "trigger.shards_ongoing": ("分片仍未上报", "shard still missing"),
    "trigger.shards_recovered": ("分片已恢复", "shards report again"),
    # apimon watch: the watcher's own log lines on stderr (watch.py)
    "watch.signal": ("收到 {signal}：等待当前一轮结束后退出",
                     "received {signal}: letting the current cycle finish, then exiting"),
    "watch.signal2": ("再次收到信号：停止当前一轮（pid {pid}）",
                      "second signal: stopping the current cycle (pid {pid})"),
    "watch.start": ("每 {every} 秒运行一次：{command}；首次运行于 {first}",
                    "watching every {every}s: {command}; first run at {first}"),
    "watch.overrun": ("本轮运行用了 {took} 秒，超过 {every} 秒的间隔：下一轮立即开始，晚了 {late} 秒{skipped}",
                      "the run took {took}s, longer than the {every}s interval: next run starts now, "
                      "{late}s late{skipped}"),
    "watch.skipped": ("（跳过 {n} 个时间点）", " ({n} slot(s) skipped)"),
    "watch.stopped": ("监控调度已停止", "watcher stopped"),
    "watch.waiting": ("本轮在等待：{text}", "cycle waiting: {text}"),
    "watch.finished": ("本轮结束：{what}，用时 {took} 秒", "cycle finished: {what} in {took}s"),
    "watch.repaired": ("监控已恢复运行（故障自 {since} 起）", "the monitor works again (broken since {since})"),
    "watch.broken": ("监控本身出错：{what}", "monitor broken: {what}"),
    "watch.hook_failed": ("发送监控自身的消息失败", "sending the watcher's message failed"),
    "watch.old_config": ("配置无法加载（{error}）：本条消息使用上一次可用的配置",
                         "config does not load ({error}): using the last good one for this message"),
    "watch.no_notifier": ("没有配置机器人：{title}", "no notifier configured: {title}"),
    "watch.exit_healthy0": ("正常：全部接口通过", "healthy: every interface passed"),
    "watch.exit_healthy1": ("正常：监控本身工作正常，有接口失败或故障",
                            "healthy: the monitor worked; some interfaces failed or are down"),
}

# The level names of log lines a person reads on the terminal (apimon watch), by language.
LEVELS = {"DEBUG": "调试", "INFO": "信息", "WARNING": "警告", "ERROR": "错误", "CRITICAL": "严重"}

PLATFORMS = {"WeCom": "企业微信", "DingTalk": "钉钉", "Feishu": "飞书"}
MSGTYPES = {"markdown": "Markdown 消息", "text": "文本消息", "file": "文件消息", "interactive": "卡片消息",
            "post": "富文本消息", "actionCard": "卡片消息"}


def say(key: str, lang: str, **values: object) -> str:
    """One phrase of PHRASES in lang (zh, else English) with its values filled in."""
    return PHRASES[key][0 if lang == "zh" else 1].format(**values)


def platform(name: str, lang: str) -> str:
    """A robot platform's name for a reader: 'WeCom' -> '企业微信' in zh."""
    return PLATFORMS.get(name, name) if lang == "zh" else name


def localize_problem(text: str, lang: str) -> str:
    """A 'file:line: field: message; …' problem line (DocumentError, ConfigError) for a reader of lang."""
    return zh_document(text) if lang == "zh" and text else text


# ---- issue 20 (s20): the rest of the core's lines (classify.py, probe.py, response_schema.py, items.py,
# policy.py). Tried before _RULES: they are more specific than its generic "x: expected …, got …" forms.
_FIRST: list[Rule] = []


def _first(pattern: str, template: str | Callable[[re.Match[str]], str]) -> None:
    _FIRST.append((LazyPattern(pattern, re.S), template))


def _got(text: str | None) -> str:
    """'missing' / 'got X' (the header checks' second half) in Chinese."""
    if not text or text == "missing":
        return "缺失"
    return "实际为 " + text.removeprefix("got ")


# OpenSSL's reasons (ssl.SSLError, as probe._tls_text shortens them) as an engineer reads them.
TLS_REASONS = {
    "wrong version number": "协议版本不符（对端可能不是 HTTPS）",
    "certificate has expired": "证书已过期",
    "self-signed certificate": "自签名证书",
    "self signed certificate": "自签名证书",
    "self-signed certificate in certificate chain": "证书链中有自签名证书",
    "self signed certificate in certificate chain": "证书链中有自签名证书",
    "unable to get local issuer certificate": "找不到签发该证书的受信任机构",
    "certificate is not yet valid": "证书尚未生效",
    "tlsv1 alert protocol version": "对端不支持该 TLS 版本",
    "sslv3 alert handshake failure": "握手失败",
    "tlsv1 alert internal error": "对端内部错误",
    "unexpected eof while reading": "读取时连接意外结束",
    "EOF occurred in violation of protocol": "连接意外结束（违反协议）",
    "record layer failure": "记录层错误",
    "tlsv1 unrecognized name": "对端不认识该主机名（SNI）",
    "unsupported protocol": "不支持的协议版本",
}


def _tls(text: str) -> str:
    m = re.fullmatch(r"certificate verify failed: (.*)", text)
    if m:
        return "证书校验失败：" + _tls(m.group(1))
    if text.startswith("certificate of "):  # certs.py: an expired certificate with its notAfter
        return zh(text)
    m = re.fullmatch(r"Hostname mismatch, certificate is not valid for '(.*)'\.?", text)
    if m:
        return f"主机名不匹配，证书对「{m.group(1)}」无效"
    # An OpenSSL reason this table does not know is quoted as OpenSSL wrote it.
    return TLS_REASONS.get(text, TLS_REASONS.get(text.lower(), f"「{text}」"))


# jsonschema's messages (response_schema.violations: "$.data.id: 'x' is not of type 'integer'")
_SCHEMA_RULES: list[Rule] = []


def _schema_rule(pattern: str, template: str | Callable[[re.Match[str]], str]) -> None:
    _SCHEMA_RULES.append((LazyPattern(pattern, re.S), template))


def _type_name(text: str) -> str:
    return ", ".join(_JSON_TYPES.get(t.strip(" '"), t.strip()) for t in text.split(","))


_schema_rule(r"(.*) is not of type (.*)", lambda m: f"{m.group(1)} 的类型不是 {_type_name(m.group(2))}")
_schema_rule(r"'(.*)' is a required property", r"缺少必需属性 '\1'")
_schema_rule(r"(.*) is not one of (.*)", r"\1 不在允许的取值 \2 中")
_schema_rule(r"(.*) is not valid under any of the given schemas", r"\1 不符合任何一个给定的 schema")
_schema_rule(r"(.*) is too long", r"\1 过长")
_schema_rule(r"(.*) is too short", r"\1 过短")
_schema_rule(r"(.*) should be non-empty", r"\1 不应为空")
_schema_rule(r"(.*) is less than the minimum of (.*)", r"\1 小于最小值 \2")
_schema_rule(r"(.*) is greater than the maximum of (.*)", r"\1 大于最大值 \2")
_schema_rule(r"(.*) is less than or equal to the minimum of (.*)", r"\1 不大于下限 \2")
_schema_rule(r"(.*) is greater than or equal to the maximum of (.*)", r"\1 不小于上限 \2")
_schema_rule(r"(.*) does not match (.*)", r"\1 不匹配 \2")
_schema_rule(r"(.*) was expected", r"应为 \1")
_schema_rule(r"Additional properties are not allowed \((.*) (?:was|were) unexpected\)", r"不允许额外的属性（\1）")
_schema_rule(r"(.*) is not a (.*)", r"\1 不是合法的 \2")


def _reason_first(m: re.Match[str]) -> str:
    """response_schema._reason's turned-round form: "is too long (maxItems 2), got [...]"."""
    said = _schema_violation(f"{m.group(4)} {m.group(1)}")
    return said + (f"（{m.group(2)} {m.group(3)}）" if m.group(2) else "")


_schema_rule(r"((?:is|does|should) .*?)(?: \((\w+) ([^()]*)\))?, got (.*)", _reason_first)


def _schema_violation(text: str) -> str:
    m = re.fullmatch(r"(\$\S*): (.*)", text, re.S)
    where, message = (m.group(1) + "：", m.group(2)) if m else ("", text)
    for pattern, template in _SCHEMA_RULES:
        hit = pattern.fullmatch(message)
        if hit is not None:
            return where + (template(hit) if callable(template) else hit.expand(template))
    return where + message


_first(r"(.*) \(\+(\d+\+?) more\)", lambda m: f"{zh(m.group(1))}（另有 {m.group(2)} 项不符）")
# ---- classification (classify.MESSAGES and the body/schema lines)
_first(r"header (\S+): missing", r"响应头 \1：缺失")
_first(r"header (\S+): expected absent, got (.*)", r"响应头 \1：应不存在，实际为 \2")
_first(r"header (\S+): expected to contain (.*), (missing|got .*)",
       lambda m: f"响应头 {m.group(1)}：应包含 {m.group(2)}，{_got(m.group(3))}")
_first(r"header (\S+): expected to match /(.*)/, (missing|got .*)",
       lambda m: f"响应头 {m.group(1)}：应匹配 /{m.group(2)}/，{_got(m.group(3))}")
_first(r"header (\S+): expected (.*), (missing|got .*)",
       lambda m: f"响应头 {m.group(1)}：期望 {m.group(2)}，{_got(m.group(3))}")
_first(r"(\S+): missing \(a key contains dots: write (.*)\)", r"\1：缺失（键名中含有点号：请写成 \2）")
_first(r"(\S+): expected anything but (.*)", r"\1：不应为 \2")
_first(r"(\S+): expected one of (.*), got (.*)", r"\1：期望为 \2 之一，实际为 \3")
_first(r"(\S+): expected to contain (.*), got (.*)", r"\1：应包含 \2，实际为 \3")
_first(r"(\S+): expected to match /(.*)/, got (.*)", r"\1：应匹配 /\2/，实际为 \3")
_first(r"(\S+): expected a string, got (.*)", r"\1：期望字符串，实际为 \2")
_first(r"(\S+): expected a number, got (.*)", r"\1：期望数字，实际为 \2")
_first(r"(\S+): expected (>=|<=|>|<|==|!=) (.*), got (.*)", r"\1：期望 \2 \3，实际为 \4")
_first(r"(\S+): expected an array, string or object to measure, got (.*)",
       r"\1：期望可计算长度的数组、字符串或对象，实际为 \2")
_first(r"(\S+): expected length (\S+) (.*), got length (.*)", r"\1：期望长度 \2 \3，实际长度为 \4")
_first(r"body: expected to contain (.*)", r"响应体：应包含 \1")
_first(r"body: expected to match /(.*)/", r"响应体：应匹配 /\1/")
_first(r"body: unknown check (.*)", r"响应体：未知的检查 \1")
_first(r"slow: took (\S+) ms, warn_ms (\S+) ms", r"响应慢：耗时 \1 ms，超过 warn_ms \2 ms")
_first(r"schema: (.*)", lambda m: "不符合 schema：" + "；".join(_schema_violation(v) for v in m.group(1).split("; ")))
_first(r"body truncated at (.*); the schema needs all of it", r"响应体在 \1 处被截断；schema 校验需要完整的响应体")
_first(r"schema cannot be applied: (.*)", r"schema 无法应用：\1")
# ---- transport (probe.py)
_first(r"TLS error: (.*)", lambda m: "TLS 错误：" + _tls(m.group(1)))
_first(r"DNS lookup for (\S+) did not answer within (\S+) s", r"\2 秒内没有完成 \1 的域名解析")
_first(r"broken chunked encoding from (\S+): (.*)", r"\1 的分块传输编码损坏：\2")
_first(r"malformed HTTP status line from (\S+): (.*)", r"\1 返回的 HTTP 状态行格式错误：\2")
_first(r"oversized response from (\S+): got more than (\d+) bytes when reading (?:a )?header line",
       r"\1 的响应过大：读取响应头的一行时超过 \2 字节")
_first(r"oversized response from (\S+): (.*)", r"\1 的响应过大：\2")
_first(r"proxy (\S+) failed: (.*)", lambda m: f"代理 {m.group(1)} 出错：{zh(m.group(2))}")
_first(r"request cannot be sent as written: (.*)", r"请求无法按原样发送：\1")
_first(r"response body cannot be decoded: (.*)", r"响应体无法解码：\1")
_first(r"response from (\S+) cannot be read: (.*)", r"无法读取 \1 的响应：\2")
_first(r"response from (\S+) has invalid headers: (.*)", r"\1 的响应头无效：\2")
_first(r"the response from (\S+) cannot be processed: (.*)", r"无法处理 \1 的响应：\2")
_first(r"the request to (\S+) cannot be processed: (.*)", r"无法处理发往 \1 的请求：\2")
# ---- pytest shell (items.py, plugin.py)
_first(r"(.*) \(an internal error of pytest-apimon; the log has the traceback\)",
       r"\1（pytest-apimon 内部错误，日志中有调用栈）")
_first(r"could not be read: (.*)", lambda m: "无法读取：" + zh(m.group(1)))
_first(r"could not be collected: (.*)", lambda m: "无法收集：" + zh(m.group(1)))
_doc(r"(?:auth: )?'(.*)' is not a service in the config(?: \(did you mean '(.*)'\?\))? \(services with auth: (.*)\)",
     lambda m: f"'{m.group(1)}' 不是配置中的服务" + (f"（是否应为 '{m.group(2)}'？）" if m.group(2) else "")
               + f"（有认证的服务：{'无' if m.group(3) == 'none' else m.group(3)}）")
_doc(r"(?:auth: )?service '(.*)' has no auth configured \((.*) in the config\)",
     r"服务 '\1' 没有配置认证（配置中的 \2）")


# ---- issue 20 (s20): parser messages of PyYAML and json inside "invalid YAML: …" / "invalid JSON: …"
_YAML_PROBLEMS: list[tuple[str, str]] = [
    (r"expected (.*), but (?:got|found) (.*)", r"应为 \1，实际遇到 \2"),
    (r"mapping values are not allowed here", "此处不允许出现冒号映射（值中的冒号后有空格时请加引号）"),
    (r"found character (.*) that cannot start any token", r"遇到不能开始任何记号的字符 \1"),
    (r"could not find expected (.*)", r"找不到应有的 \1"),
    (r"found undefined alias (.*)", r"使用了未定义的别名 \1"),
    (r"found unexpected end of stream", "文件意外结束"),
    (r"found unknown escape character (.*)", r"未知的转义字符 \1"),
    (r"found a tab character (?:that violates indentation|where an indentation space is expected)",
     "缩进中出现了制表符（请用空格缩进）"),
    (r"found duplicate anchor (.*); first occurrence", r"锚点 \1 重复"),
    (r"found unhashable key", "键不能是列表或映射"),
    (r"while parsing a flow sequence", "解析 [...] 列表时"),
    (r"while parsing a flow mapping", "解析 {...} 映射时"),
    (r"while parsing a block mapping", "解析映射时"),
    (r"while parsing a block collection", "解析列表时"),
    (r"while parsing a (?:block|flow) node", "解析节点时"),
    (r"while scanning a simple key", "扫描键名时"),
    (r"while scanning a (?:quoted|plain|block) scalar", "扫描字符串时"),
    (r"while scanning an? (?:alias|anchor)", "扫描锚点或别名时"),
    (r"while constructing a mapping", "构造映射时"),
]
_JSON_PROBLEMS: list[tuple[str, str]] = [
    (r"Expecting value", "此处应为一个值"),
    (r"Expecting (.*) delimiter", r"此处应为分隔符 \1"),
    (r"Expecting property name enclosed in double quotes", "此处应为双引号括起的属性名"),
    (r"Extra data", "多余的数据"),
    (r"Unterminated string starting at", "字符串没有结束"),
    (r"Invalid control character at", "非法的控制字符"),
    (r"Invalid \\\\escape", "非法的转义"),
]


def _parser_problem(text: str, table: list[tuple[str, str]]) -> str:
    for pattern, template in table:
        m = re.fullmatch(pattern, text, re.S)
        if m is not None:
            return m.expand(template).replace("' or '", "' 或 '")
    return f"「{text}」"  # a parser message this table does not know: quoted as the parser wrote it


# What loader.YAML_TOKENS says for PyYAML's token names, and the raw names themselves, in Chinese.
_YAML_THINGS = {
    "the end of the indented block": "缩进层级结束", "<block end>": "缩进层级结束",
    "a new mapping (key: value)": "新的映射（键: 值）", "<block mapping start>": "新的映射（键: 值）",
    "a list (- item)": "列表（- 列表项）", "<block sequence start>": "列表（- 列表项）",
    "the start of a document (---)": "文档开始（---）", "<document start>": "文档开始（---）",
    "the end of a document (...)": "文档结束（...）", "<document end>": "文档结束（...）",
    "the start of the file": "文件开头", "<stream start>": "文件开头",
    "the end of the file": "文件末尾", "<stream end>": "文件末尾",
    "a list item (-)": "列表项（-）", "<block entry>": "列表项（-）",
    "a key": "键", "<key>": "键", "a value": "值", "<value>": "值", "<scalar>": "值",
    "an alias (*name)": "别名（*名称）", "<alias>": "别名（*名称）",
    "an anchor (&name)": "锚点（&名称）", "<anchor>": "锚点（&名称）",
    "a tag (!name)": "标签（!名称）", "<tag>": "标签（!名称）",
    "a directive (%...)": "指令（%...）", "<directive>": "指令（%...）",
    "<flow mapping start>": "'{'", "<flow mapping end>": "'}'", "<flow sequence start>": "'['",
    "<flow sequence end>": "']'", "<flow entry>": "','",
}
_YAML_THING = LazyPattern("|".join(re.escape(k) for k in sorted(_YAML_THINGS, key=len, reverse=True)))


def _yaml_problem(m: re.Match[str]) -> str:
    text = _parser_problem(m.group(1), _YAML_PROBLEMS)
    text = _YAML_THING.sub(lambda t: _YAML_THINGS[t.group(0)], text.replace("'<", "<").replace(">'", ">"))
    if m.group(2):
        text += f"（{_parser_problem(m.group(2), _YAML_PROBLEMS)}）"
    if m.group(3):
        text += "；请检查这一行及上一行的缩进"
    if m.group(4):
        text += f"；在 {{...}} 或 [...] 中，含有 [ ] {{ }} 或逗号的值要加引号，例如 {m.group(4)}"
    return "YAML 格式错误：" + text


_DOC_RULES[0:0] = [
    (LazyPattern(r"invalid YAML: (.*?)(?: \((while .*)\))?(; check the indentation of this line and the line above)?"
                r"(?:; inside \{\.\.\.\} or \[\.\.\.\] quote values that "
                r"contain \[ \] \{ \} or commas, e\.g\. (.*))?", re.S), _yaml_problem),
    (LazyPattern(r"invalid JSON: (.*?)(?: \(column (\d+)\))?", re.S),
     lambda m: "JSON 格式错误：" + _parser_problem(m.group(1), _JSON_PROBLEMS)
               + (f"（第 {m.group(2)} 列）" if m.group(2) else "")),
    (LazyPattern(r"missing check: expected exactly one of (.*)", re.S), r"缺少检查：必须且只能有以下之一：\1"),
    (LazyPattern(r"unknown key '(.*?)'( \(did you mean '.*'\?\))?; allowed: (.*)", re.S),
     lambda m: f"未知的键 '{m.group(1)}'{_hint(m.group(2))}；可用的有：{m.group(3)}"),
]


# The placeholders items.py puts in item names and keys (keys and node ids keep them: they are identities).
_PLACEHOLDERS = (("<invalid document>", "<文档错误>"), (" (duplicate)", "（重复）"), (" (error)", "（出错）"))


def display_name(text: str, lang: str) -> str:
    """An item name or interface key as a reader of lang sees it: '<invalid document>' -> '<文档错误>' in zh."""
    if lang != "zh":
        return text
    for english, chinese in _PLACEHOLDERS:
        text = text.replace(english, chinese)
    return text


# ---- issue 20 (s20): `apimon merge` (merge.MergeError) and operating-system errors inside messages
_OS_ERRORS = {"No such file or directory": "文件或目录不存在", "Permission denied": "没有权限",
              "Is a directory": "是一个目录", "Not a directory": "不是目录", "File exists": "文件已存在",
              "No space left on device": "磁盘空间不足", "Read-only file system": "文件系统只读"}


def _os_error(text: str) -> str:
    """'[Errno 2] No such file or directory: 'x'' -> '文件或目录不存在：'x''; other texts through zh()."""
    m = re.fullmatch(r"\[Errno \d+\] ([^:]+)(?:: (.*))?", text, re.S)
    if m and m.group(1) in _OS_ERRORS:
        return _OS_ERRORS[m.group(1)] + (f"：{m.group(2)}" if m.group(2) else "")
    m = re.fullmatch(r"Expecting .*|Extra data.*|Unterminated string.*", text)
    if m:
        return "JSON 格式错误：" + _parser_problem(re.sub(r": line \d+ column \d+ \(char \d+\)$", "", text),
                                                  _JSON_PROBLEMS)
    return zh(text)


_first(r"no shard results files given", "没有给出分片结果文件")
_first(r"(.*): cannot read shard results: (.*)", lambda m: f"{m.group(1)}：无法读取分片结果：{_os_error(m.group(2))}")
_first(r"(.*): not a shard results file \(expected the JSON a run with --apimon-shard K/N writes, with the fields "
       r"'shard' and 'results'\)",
       r"\1：不是分片结果文件（应为 --apimon-shard K/N 的运行写出的 JSON，含 'shard' 和 'results' 字段）")
_first(r"(.*): field 'shard': (.*)", lambda m: f"{m.group(1)}：字段 'shard'：{zh(m.group(2))}")
_first(r"(.*): results\[(\d+)\]: expected an object with 'nodeid'", r"\1：results[\2]：应为含 'nodeid' 的对象")
_SHARD_EXPECTED = {  # results.record_problem's and merge._read's "expected …" phrases
    "a string": "字符串", "an integer": "整数", "a finite number": "有限的数", "true or false": "true 或 false",
    "a list of strings": "字符串列表", "an object of strings": "值为字符串的对象",
    "an object of finite numbers": "值为有限数的对象",
}


def _shard_expected(text: str) -> str:
    """results.record_problem's "expected …" in Chinese (e.g. 'an integer or null' → '整数或 null')."""
    nullable = text.endswith(" or null")
    text = text.removesuffix(" or null")
    if text.startswith("one of "):
        text = "以下之一：" + text.removeprefix("one of ")
    elif m := re.fullmatch(r"epoch seconds between (\d+) and (\d+)", text):
        text = f"{m.group(1)} 到 {m.group(2)} 之间的 Unix 时间（秒）"
    elif m := re.fullmatch(r"\[node id, service, module, name, shard index 1\.\.(\d+)\]", text):
        text = f"[节点 id, 服务, 模块, 名称, 分片序号 1..{m.group(1)}]"
    elif text.startswith("a list of [node id"):
        text = "由 [节点 id, 服务, 模块, 名称, 分片序号] 组成的列表"
    else:
        text = _SHARD_EXPECTED.get(text, text)
    return text + ("或 null" if nullable else "")


_first(r"(.*): (results\[\d+\]\.\w+|field '\w+'|plan\[\d+\]): missing \(expected a string\)",
       lambda m: f"{m.group(1)}：{m.group(2).replace('field ', '字段 ')}：缺失（应为字符串）")
_first(r"(.*): (results\[\d+\]\.\w+|field '\w+'|plan\[\d+\]|results\[\d+\]): expected (.*)",
       lambda m: f"{m.group(1)}：{m.group(2).replace('field ', '字段 ')}：应为{_shard_expected(m.group(3))}")
_first(r"(.*): shard (\S+) of environment '(.*)' does not belong with the other files \(shards of (\d+) of "
       r"environment '(.*)'\): not used",
       r"\1：分片 \2（环境 '\3'）与其他文件不属于同一次拆分（其他文件为 \4 个分片、环境 '\5'）：未使用")
_first(r"(.*): holds (\d+) interface\(s\) of shard (\S+), whose own results file is used for them",
       r"\1：含有分片 \3 的 \2 个接口，这些接口以该分片自己的结果文件为准")
_first(r"expected K/N with 1 ≤ K ≤ N \(e\.g\. 2/3\), got (.*)", r"应为 K/N，且 1 ≤ K ≤ N（例如 2/3），实际为 \1")
_first(r"shard (\S+) given twice \((.*)\): its later file wins", r"分片 \1 给出了两次（\2）：以后一个文件为准")
_first(r"shard (\S+): its results file lacks (\d+) interface\(s\) of its plan \(listed as not checked\)",
       r"分片 \1：结果文件缺少其计划中的 \2 个接口（列为未检查）")
_first(r"not checked: shard (\S+)'s results file has no record of it", r"未检查：分片 \1 的结果文件中没有它的记录")
_first(r"missing shard\(s\) (.*): their interfaces were not checked \(listed as skipped\)",
       r"缺少分片 \1：其中的接口未检查（列为跳过）")
_first(r"not checked: shard (\S+) reported no results", r"未检查：分片 \1 没有报告结果")
_first(r"not checked: its retry never ran: xdist worker (.*) died and was not replaced \(--max-worker-restart\)",
       r"未检查：重试未能执行：xdist 工作进程 \1 崩溃且未被替换（--max-worker-restart）")
_first(r"not checked: xdist worker (.*) died and was not replaced \(--max-worker-restart\)",
       r"未检查：xdist 工作进程 \1 崩溃且未被替换（--max-worker-restart）")
_first(r"not checked: the run ended without a result for it", "未检查：本次运行结束时没有它的结果")
_MORE = re.compile(r" and (\d+) more$")


def _suspects_zh(m: re.Match[str]) -> str:
    also = _MORE.sub(r" 等另外 \1 个", m.group(3))
    return (f"未检查：xdist 工作进程 {m.group(1)} 在同时检查 {m.group(2)} 个接口时崩溃（另有 {also}）；"
            "不知是哪个检查导致，因此不归咎于本接口")


_first(r"not checked: xdist worker (\S+) died while it was checking (\d+) interfaces at once \(also (.*?)\); which "
       r"check killed it is not known, so it is not blamed on this one", _suspects_zh)
_first(r"(.*): no such file \(no results arrived there\)", r"\1：文件不存在（没有结果送达）")
_first(r"(.*): no file matches this pattern \(no shard results arrived\)", r"\1：没有匹配的文件（没有分片结果送达）")


# ---- issue 20 (s20): terminal warnings (plugin.py, auth.py, importers) and what a run waits on
def _platform_zh(name: str) -> str:
    return PLATFORMS.get(name, name)


_NOTES = {
    "Postman scripts (tests, pre-request) are JavaScript and are not run; the status is checked":
        "Postman 脚本（tests、pre-request）是 JavaScript，不会运行；只检查状态码",
    "Postman form-data file uploads are not sent": "Postman form-data 中的文件上传不会发送",
    "Postman form-data bodies are sent URL-encoded, not as multipart/form-data":
        "Postman form-data 请求体按 URL 编码发送，而不是 multipart/form-data",
    "Postman binary file bodies are not sent": "Postman 二进制文件请求体不会发送",
}


def _note(m: re.Match[str]) -> str:
    feature = m.group(2)
    text = _NOTES.get(feature)
    if text is None:
        hit = re.fullmatch(r"Postman protocolProfileBehavior '(.*)' is not supported", feature)
        text = f"不支持 Postman protocolProfileBehavior '{hit.group(1)}'" if hit else None
    if text is None:
        hit = re.fullmatch(r"Postman auth type '(.*)' is not mapped: configure the service's auth in config\.yaml",
                           feature)
        text = f"Postman 认证类型 '{hit.group(1)}' 无法对应：请在 config.yaml 中配置该服务的 auth" if hit else feature
    unit = "个请求" if m.group(4).startswith("request") else "个操作"
    return f"{m.group(1)}：{text}（{m.group(3)} {unit}）"


_first(r"(.+?): (.+) \((\d+) (requests?|operations?)\)", _note)
_first(r"state folder (.*) unusable \((.*)\)(: no history or alert policy)?",
       lambda m: f"状态目录 {m.group(1)} 不可用（{_os_error(m.group(2))}）"
                 + ("：没有历史和告警策略" if m.group(3) else ""))
# state.py's StateError texts (the state database is damaged, unreadable or newer), inside the line above.
_SQLITE_ERRORS = {  # sqlite3's own messages for a damaged or unusable file
    "database disk image is malformed": "数据库文件已损坏", "file is not a database": "不是数据库文件",
    "unable to open database file": "无法打开数据库文件", "database is locked": "数据库被锁定",
    "attempt to write a readonly database": "数据库只读，无法写入", "disk I/O error": "磁盘读写错误",
}
_STATE_LOST = "把它移走即可重新开始；历史和告警记忆将丢失"


def _state_problem(text: str) -> str:
    """sqlite3's message, or the run memory's JSON error, in Chinese where known (else as the library wrote it)."""
    return _SQLITE_ERRORS.get(text) or _os_error(text)


_first(r"cannot use the state database (.*?): (.*) \(move it away to start afresh; the history and alert memory will "
       r"be lost\)",
       lambda m: f"无法使用状态数据库 {m.group(1)}：{_state_problem(m.group(2))}（{_STATE_LOST}）")
_first(r"cannot read the (alert state|run memory) from (.*?): (.*) \(the file is damaged: move it away to start "
       r"afresh; the history and alert memory will be lost\)",
       lambda m: f"无法从 {m.group(2)} 读取{'告警状态' if m.group(1) == 'alert state' else '运行记忆'}："
                 f"{_state_problem(m.group(3))}（文件已损坏：{_STATE_LOST}）")
_first(r"the state database (.*) has schema version (\d+), newer than this pytest-apimon understands \((\d+)\): "
       r"upgrade pytest-apimon",
       r"状态数据库 \1 的结构版本为 \2，比本版 pytest-apimon 支持的（\3）更新：请升级 pytest-apimon")
_first(r"log file (.*) unusable \((.*)\): logging to the terminal only",
       lambda m: f"日志文件 {m.group(1)} 不可用（{_os_error(m.group(2))}）：日志只输出到终端")
_first(r"service '(.*)': the login returned a token that lives (\S+) s, not more than refresh_before \((\S+) s\); "
       r"it is reused for (\S+) s instead of logging in for every request \(check the server's expires_in or set ttl\)",
       r"服务 '\1'：登录返回的令牌有效期只有 \2 秒，不超过 refresh_before（\3 秒）；该令牌将复用 \4 秒，"
       r"而不是每个请求都重新登录（请检查服务端的 expires_in，或设置 ttl）")
_first(r"waiting up to (\S+)s \(state\.lock_timeout\) for another run's lock \(pid (\S+), started (.*)\)",
       r"另一次运行正持有运行锁（pid \2，开始于 \3），最多等待 \1 秒（state.lock_timeout）")
_first(r"got the run lock after (\S+)s", r"等待 \1 秒后获得了运行锁")
_first(r"(\S+) robot '(.*)': waiting (\S+)s to stay within the platform's rate limit",
       lambda m: f"{_platform_zh(m.group(1))}机器人「{m.group(2)}」：等待 {m.group(3)} 秒，以免超过平台的频率限制")
_first(r"(\S+) robot '(.*)': rate limit \((.*)\): waiting (\S+)s, then resending",
       lambda m: f"{_platform_zh(m.group(1))}机器人「{m.group(2)}」：触发频率限制（{m.group(3)}），"
                 f"等待 {m.group(4)} 秒后重发")
_first(r"another pytest-apimon run \(pid (\S+)(?: on (\S+))?, started (.*?)\) holds the state lock (.*); waited (\S+)s "
       r"\(state\.lock_timeout\)\. This run stops without checking or sending anything; if runs overlap regularly, "
       r"lengthen the schedule interval or shorten the run",
       lambda m: f"另一次 pytest-apimon 运行（pid {m.group(1)}" + (f"，主机 {m.group(2)}" if m.group(2) else "")
                 + f"，开始于 {m.group(3)}）持有状态锁 {m.group(4)}；已等待 {m.group(5)} 秒（state.lock_timeout）。"
                   "本次运行不检查也不发送任何消息；如果经常重叠，请加长调度间隔或缩短运行时间")


# ---- issue 20 (s20): delivery problems (notify/wecom.py, dingtalk.py, feishu.py): DeliveryError texts and the
# lines DeliveryResult.errors holds. The platform's own errmsg is quoted as it answered.
ADVICE = {
    "the webhook key is invalid or the robot was removed from the group; copy the key again from the group's robot "
    "settings (the part after 'key=' in …/cgi-bin/webhook/send?key=…) into notify.wecom[].webhook":
        "Webhook 地址中的密钥无效，或机器人已被移出群：请从群机器人设置中重新复制 Webhook 地址中的密钥"
        "（…/cgi-bin/webhook/send?key=… 中 'key=' 之后的部分）"
        "填入 notify.wecom[].webhook",
    "WeCom does not accept this message type (msgtype must be lowercase: markdown, markdown_v2, text, file); check "
    "notify.wecom[].message_type": "企业微信不接受该消息类型（msgtype 须为小写：markdown、markdown_v2、text、file）；"
                                   "请检查 notify.wecom[].message_type",
    "a message is longer than WeCom accepts (it was re-split smaller once already); please report this with the "
    "--apimon-dry-run output": "消息超过企业微信的长度上限（已经重新拆分过一次）；"
                               "请附上 --apimon-dry-run 的输出报告此问题",
    "WeCom received empty content or JSON it could not parse (it was cleaned and resent once already)":
        "企业微信收到的内容为空或 JSON 无法解析（已经清理后重发过一次）",
    "WeCom refused the uploaded file's media_id (it expires after 3 days and works only for the robot that uploaded "
    "it)": "企业微信拒绝了上传文件的 media_id（3 天后过期，且只对上传它的机器人有效）",
    "WeCom refused the upload's media type": "企业微信拒绝了上传文件的媒体类型",
    "WeCom refused the upload type (must be file or voice)": "企业微信拒绝了上传类型（必须是 file 或 voice）",
    "the access_token is invalid or the robot was removed; copy the webhook URL again from the group's robot settings "
    "into notify.dingtalk[].webhook": "access_token 无效或机器人已被删除：请从群机器人设置中重新复制 webhook 地址"
                                     "填入 notify.dingtalk[].webhook",
    "the robot's security settings refused the message (signature mismatch: check notify.dingtalk[].secret and the "
    "machine's clock; or a required keyword is missing; or this machine's IP is not in the robot's allow-list)":
        "机器人的安全设置拒绝了消息（签名不符：请检查 notify.dingtalk[].secret 和本机时钟；或缺少自定义关键词；"
        "或本机 IP 不在机器人的白名单中）",
    "a message is longer than DingTalk accepts; this is a pytest-apimon splitting bug, please report it with the "
    "--apimon-dry-run output": "消息超过钉钉的长度上限；这是 pytest-apimon 拆分消息的缺陷，"
                               "请附上 --apimon-dry-run 的输出报告",
    "DingTalk says a required parameter is missing or invalid": "钉钉提示缺少必需参数或参数无效",
    "DingTalk refused the request's content type": "钉钉拒绝了请求的内容类型",
    "the hook token is invalid or the bot was removed; copy the webhook URL again from the group's bot settings into "
    "notify.feishu[].webhook": "Webhook 地址中的令牌无效，或机器人已被删除：请从群机器人设置中重新复制 webhook 地址"
                               "填入 notify.feishu[].webhook",
    "signature check failed: check notify.feishu[].secret and the machine's clock (the timestamp must be within an "
    "hour)": "签名校验失败：请检查 notify.feishu[].secret 和本机时钟（时间戳须在一小时之内）",
    "this machine's IP is not in the bot's allow-list": "本机 IP 不在机器人的白名单中",
    "the bot's keyword setting refused the message: add the keyword to the report title (report.title) or remove the "
    "keyword check": "机器人的关键词设置拒绝了消息：请把关键词加入报告标题（report.title），或取消关键词校验",
    "Feishu refused the request as malformed or too large (20 KB body limit); this is a pytest-apimon bug, please "
    "report it with the --apimon-dry-run output":
        "飞书认为请求格式错误或过大（请求体上限 20 KB）；这是 pytest-apimon 的缺陷，请附上 --apimon-dry-run 的输出报告",
    "not retried; see DingTalk's custom-robot error codes": "不重试；请查阅钉钉自定义机器人的错误码说明",
    "not retried; see Feishu's custom-bot error codes": "不重试；请查阅飞书自定义机器人的错误码说明",
}


def _advice(text: str) -> str:
    found = ADVICE.get(text)
    if found is not None:
        return found
    m = re.fullmatch(r"not retried; see (https?://\S+)(.*)", text, re.S)
    return f"不重试；请查阅 {m.group(1)}" if m else zh(text)


_first(r"(WeCom|DingTalk|Feishu) answered (?:errcode|code) (-?\d+) \((.*)\): (.*)",
       lambda m: f"{_platform_zh(m.group(1))}返回错误码 {m.group(2)}（「{m.group(3)}」）：{_advice(m.group(4))}")
_first(r"(WeCom|DingTalk|Feishu) robot '(.*?)': (WeCom|DingTalk|Feishu) refused (this run's report|the stored report "
       r"from .*?): (.*); (kept in (.*), not resent automatically|it could not be kept \(no outbox\))",
       lambda m: f"{_platform_zh(m.group(1))}机器人「{m.group(2)}」：{_platform_zh(m.group(3))}拒收了"
                 f"{_which(m.group(4))}：{zh(m.group(5))}；"
                 + (f"已保存在 {m.group(7)}，不会自动重发" if m.group(7) else "无法保存（没有发件箱）"))
_first(r"(WeCom|DingTalk|Feishu) robot '(.*?)': (this run's report|the stored report from .*?) is undelivered "
       r"\((kept in the outbox for the next run|NOT kept \(no outbox\): it is lost)\): (.*)",
       lambda m: f"{_platform_zh(m.group(1))}机器人「{m.group(2)}」：{_which(m.group(3))}未送达（"
                 + ("已留在发件箱，下次运行补发" if m.group(4).startswith("kept") else "没有发件箱，已丢失")
                 + f"）：{zh(m.group(5))}")
_first(r"(WeCom|DingTalk|Feishu) robot '(.*?)': could not write the report to the outbox before sending \((.*)\); "
       r"if this run is interrupted it is lost",
       lambda m: f"{_platform_zh(m.group(1))}机器人「{m.group(2)}」：发送前无法把报告写入发件箱"
                 f"（{_os_error(m.group(3))}）；如果本次运行被中断，这份报告会丢失")
_first(r"the outbox holds (\d+) report\(s\) for (WeCom|DingTalk|Feishu) robots that are no longer configured \((.*)\); "
       r"they stay in (.*)",
       lambda m: f"发件箱中有 {m.group(1)} 份报告属于已不再配置的{_platform_zh(m.group(2))}机器人（{m.group(3)}）；"
                 f"它们留在 {m.group(4)}")
_first(r"(.*); gave up after (\d+) retries", lambda m: f"{zh(m.group(1))}；重试 {m.group(2)} 次后放弃")
_first(r"(.*); no time left to retry within notify\.max_wait",
       lambda m: f"{zh(m.group(1))}；notify.max_wait 之内没有时间再重试")
_first(r"cannot reach (WeCom|DingTalk|Feishu) \((.*)\)",
       lambda m: f"无法连接{_platform_zh(m.group(1))}（「{m.group(2)}」）")
_first(r"(WeCom|DingTalk|Feishu) is busy \(errcode (-?\d+): (.*)\)",
       lambda m: f"{_platform_zh(m.group(1))}繁忙（错误码 {m.group(2)}：「{m.group(3)}」）")
_first(r"(WeCom|DingTalk|Feishu) rate limit \((.*)\) persisted past the (\S+)s wait bound \(notify\.max_wait\)",
       lambda m: f"{_platform_zh(m.group(1))}的频率限制（「{m.group(2)}」）持续超过了 {m.group(3)} 秒的等待上限"
                 "（notify.max_wait）")
_first(r"pacing to (.*) would exceed the (\S+)s wait bound \(notify\.max_wait\)",
       lambda m: "按 " + m.group(1).replace(" messages per ", " 条/").replace("s and ", " 秒、").removesuffix("s")
                 + f" 秒的速率发送会超过 {m.group(2)} 秒的等待上限（notify.max_wait）")
_first(r"upload_media answered without a media_id", "上传文件的应答中没有 media_id")
_first(r"a message is (\d+) bytes, over Feishu's 20 KB limit; this is a pytest-apimon (.*)",
       r"一条消息有 \1 字节，超过了飞书 20 KB 的上限；这是 pytest-apimon 的缺陷，请附上 --apimon-dry-run 的输出报告")


def _which(text: str) -> str:
    if text == "this run's report":
        return "本次运行的报告"
    return "之前保存的报告（" + text.removeprefix("the stored report from ") + "）"


# ---- issue 20 (s20): request building (engine.py)
_first(r"URL still holds the template variable (\S+): it is never sent; give it a value "
       r"\(apimon overrides `params` for an imported spec\)",
       r"URL 中仍有模板变量 \1：不会发送；请给它一个值（导入的规范在 apimon overrides 的 `params` 中设置）")
_first(r"interface uses path '(.*)' but service '(.*)' has no base_url for environment '(.*)' in (.*)",
       r"接口使用路径 '\1'，但服务 '\2' 在环境 '\3' 下没有 base_url（\4）")
_first(r"(.+?) \((credentials withheld: .*)\)", lambda m: f"{zh(m.group(1))}（{zh(m.group(2))}）")
_first(r"credentials withheld: host (\S+) is not an origin of service (.*) "
       r"\(add it to services\.(\S+)\.trusted_origins if it should get them\)",
       lambda m: f"未发送凭据：主机 {m.group(1)} 不是服务 {m.group(2).replace(' or ', ' 或 ')} 的源"
                 f"（如果它应该得到凭据，请把它加入 services.{m.group(3)}.trusted_origins）")


# ---- issue 20 (zfixB): the config's problems (config.py, _config_reader.py, policy_settings.py,
# notify/settings.py, maintenance.py, times.py) and the rest of the documents' (documents.py,
# _document_fields.py, bodypath.py). The user's values stay as written, quoted.
_UNITS = {"seconds": "秒", "milliseconds": "毫秒", "days": "天", "s": " 秒", "ms": " 毫秒"}
_PRODUCTS = {"WeCom": "企业微信", "DingTalk": "钉钉", "Feishu": "飞书", "Lark": "Lark", "Slack": "Slack"}
_TYPE_NAMES = {"int": "整数", "float": "数字", "str": "字符串", "dict": "映射", "list": "列表", "bool": "布尔值",
               "NoneType": "null"}


def _quoted_list(text: str) -> str:
    """'test, prod' -> "'test'、'prod'": names the user wrote, as values."""
    return "、".join(f"'{name}'" for name in text.split(", "))


def _product(text: str) -> str:
    """'DingTalk (钉钉)' / 'WeCom' -> '钉钉' / '企业微信'."""
    name = text.split(" (", 1)[0]
    return _PRODUCTS.get(name, name)


def _value(text: str) -> str:
    """A value as describe() (documents or config) shows it, in Chinese: 'integer 5' -> '整数 5'."""
    text = text.strip()
    if text in ("true", "false", "null"):
        return f"'{text}'"
    if text in ("a list", "a mapping"):
        return "列表" if text == "a list" else "映射"
    if text in _TYPE_NAMES:
        return _TYPE_NAMES[text]
    m = re.fullmatch(r"(boolean|integer|number|string) (.*)", text, re.S)
    if m:
        kind = {"boolean": "布尔值", "integer": "整数", "number": "数字", "string": "字符串"}[m.group(1)]
        value = m.group(2)
        return f"{kind} " + (f"'{value}'" if m.group(1) == "boolean" else value)
    m = re.fullmatch(r"date (\S+) \(quote it to keep it a string\)", text)
    if m:
        return f"日期 {m.group(1)}（加引号才是字符串）"
    m = re.fullmatch(r"'(.*)' and '(.*)'", text)
    if m:
        return f"'{m.group(1)}' 和 '{m.group(2)}'"
    return text


# What an "expected …" names, in Chinese; the first pattern that matches the whole phrase wins.
_WHAT: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"a mapping", "映射"), (r"a list", "列表"), (r"a string", "字符串"), (r"a non-empty string", "非空字符串"),
    (r"a number", "数字"), (r"a number > 0", "大于 0 的数字"), (r"a value > 0", "大于 0 的值"),
    (r"a number >= (\S+)( \(the 7-day windows read the hourly rollups\))?",
     lambda m: f"不小于 {m.group(1)} 的数字" + ("（7 天窗口读取的是按小时汇总的数据）" if m.group(2) else "")),
    (r"a whole number >= (\S+)", r"不小于 \1 的整数"),
    (r"a duration >= 0", "不小于 0 的时长"), (r"a duration > 0", "大于 0 的时长"),
    (r"a duration > 0 like 2h or 30m", "大于 0 的时长，例如 '2h' 或 '30m'"),
    (r"a number of seconds", "秒数"), (r"a size >= 0", "不小于 0 的大小"),
    (r"a size in bytes \(a whole number, or (.*)\)", lambda m: "以字节计的大小（整数，或 "
     + m.group(1).replace(", ", "、") + "）"),
    (r"at most (\d[\d.e+]*) ?(\w+)", lambda m: f"不超过 {m.group(1)} {_UNITS.get(m.group(2), m.group(2))}"),
    (r"a positive number of (\w+)", lambda m: f"以{_UNITS.get(m.group(1), m.group(1))}计的正数"),
    (r"true or false", "'true' 或 'false'"),
    (r"a fraction (?:between 0 and 1|> 0 and <= 1) \(e\.g\. 0\.5 or '50%'\)",
     "大于 0、不超过 1 的比例（例如 0.5 或 '50%'）"),
    (r"a non-empty path", "非空路径"),
    (r"a number of days > 0", "大于 0 的天数"), (r"a number of days from 0 to 36500", "0 到 36500 之间的天数"),
    (r"(a severity|a report language|a logging level|an HTTP method|an expiry source|a client auth) \((.*)\)",
     lambda m: {"a severity": "严重级别", "a report language": "报告语言", "a logging level": "日志级别",
                "an HTTP method": "HTTP 方法", "an expiry source": "过期时间的来源",
                "a client auth": "客户端认证方式"}[m.group(1)] + f"（可用的有：{m.group(2)}）"),
    (r"one of (.*)", r"以下之一（可用的有：\1）"),
    (r"a time of day like (\"[^\"]*\") \(quoted\)", r"一天中的时刻，例如 \1（加引号）"),
    (r"a time of day like (\"[^\"]*\") or (\"[^\"]*\")", r"一天中的时刻，例如 \1 或 \2"),
    (r"a date and time like (\"[^\"]*\") \(quoted\) or a weekly window with 'days'",
     r"日期和时间，例如 \1（加引号），或带 'days' 的每周窗口"),
    (r"a date and time like (\"[^\"]*\") or (\"[^\"]*\")", r"日期和时间，例如 \1 或 \2"),
    (r"a list of weekdays like \[sat, sun\] or \[mon-fri\], or daily",
     "星期列表，例如 '[sat, sun]' 或 '[mon-fri]'，或 'daily'"),
    (r"a weekday name \(mon … sun\)", "星期名称（'mon' … 'sun'）"),
    (r"at least one weekday, e\.g\. \[sat\]", "至少一个星期，例如 '[sat]'"),
    (r"a list of windows \(each with start and end\)", "时间窗口列表（每个都有 'start' 和 'end'）"),
    (r"an absolute http\(s\) URL", "绝对的 HTTP(S) URL"),
    (r"an absolute http\(s\) URL with a host", "带主机名的绝对 HTTP(S) URL"),
    (r"an http\(s\) URL like (\S+)", r"形如 \1 的 HTTP(S) URL"), (r"an http\(s\) URL", "HTTP(S) URL"),
    (r"a list of origins like (\S+)", r"源列表，例如 \1"),
    (r"an origin \(scheme://host\[:port\]\) without path, query or userinfo",
     "不带路径、查询参数或用户信息的源（scheme://host[:port]）"),
    (r"an? (.+?) robot URL like (\S+)", lambda m: f"形如 {m.group(2)} 的{_product(m.group(1))}机器人地址"),
    (r"a string or number header value", "字符串或数字形式的请求头值"),
    (r"a mapping of query parameters", "查询参数的映射"),
    (r"a mapping of header names to values", "请求头名到值的映射"),
    (r"a mapping of form fields", "表单字段的映射"),
    (r"a mapping of response header names to checks", "响应头名到检查的映射"),
    (r"a mapping with status, body, headers and/or max_ms \(also warn_ms, schema, cert_days\)",
     "含 'status'、'body'、'headers' 和/或 'max_ms' 的映射（也可有 'warn_ms'、'schema'、'cert_days'）"),
    (r"a string, number, boolean or a list of those", "字符串、数字、布尔值或它们的列表"),
    (r"a string or number", "字符串或数字"), (r"a string, number or boolean", "字符串、数字或布尔值"),
    (r"a JSON value", "JSON 值"),
    (r"true, false or the name of the service whose token to use", "'true'、'false' 或要使用其令牌的服务名"),
    (r"a status code \(100-599\) or a pattern like '2xx'", "状态码（100-599）或 '2xx' 这样的模式"),
    (r"a list of status codes or a single code \(100-599 or a pattern like '2xx'\)",
     "状态码列表或单个状态码（100-599，或 '2xx' 这样的模式）"),
    (r"a length \(an integer >= 0\)", "长度（不小于 0 的整数）"),
    (r"exactly one check per mapping", "每个映射只写一个检查"),
    (r"exactly one check per header", "每个响应头只写一个检查"),
    (r"exactly one comparison", "只写一个比较"),
    (r"a non-empty list of allowed values", "非空的允许值列表"),
    (r"a body check \(a mapping with 'path' and one of (.*)\)",
     r"响应体检查（含 'path' 和一个检查的映射，可用的有：\1）"),
    (r"a list of body checks \(each with 'path' and one of (.*)\)",
     r"响应体检查的列表（每个含 'path' 和一个检查，可用的有：\1）"),
    (r"text to find in the raw body", "要在原始响应体中查找的文本"),
    (r"the exact header value, true/false for present/absent, or a mapping with one of (.*)",
     r"响应头的确切值、'true'/'false'（存在/不存在），或含一个检查的映射（可用的有：\1）"),
    (r"a JSON Schema \(a mapping\), the path of a schema file relative to this document, or false",
     "JSON schema（映射）、相对于本文档的 schema 文件路径，或 'false'"),
    (r"a tag or a list of tags", "标签或标签列表"),
    (r"a reason \(string\) or true", "原因（字符串）或 'true'"),
    (r"an interface \(a mapping with 'name' and 'path' or 'url'\)", "接口（含 'name' 以及 'path' 或 'url' 的映射）"),
    (r"a list of interfaces", "接口列表"),
    (r"the interface name as a string", "字符串形式的接口名"),
    (r"the robot's key or webhook URL as a string", "字符串形式的机器人密钥或 Webhook 地址"),
    (r"the robot's webhook URL or token as a string", "字符串形式的机器人 Webhook 地址或令牌"),
    (r"the signing secret as a non-empty string \(or leave it out when the robot does not use signing\)",
     "非空字符串形式的签名密钥（机器人未启用签名时请省略）"),
    (r"a list of robots \(each with name and webhook\)", "机器人列表（每个都有 'name' 和 'webhook'）"),
    (r"an absolute URL starting with http:// or https://", "以 http:// 或 https:// 开头的绝对 URL"),
    # importers (openapi.py, postman.py, overrides.py)
    (r"a \$ref string like (.*)", r"$ref 字符串，例如 \1"), (r"a list of parameters", "参数列表"),
    (r"a parameter with 'name' and 'in'", "含 'name' 和 'in' 的参数"), (r"a request body object", "请求体对象"),
    (r"a mapping of paths to path items", "路径到路径项的映射"),
    (r"a path item \(a mapping of methods to operations\)", "路径项（方法到操作的映射）"),
    (r"an operation \(a mapping\)", "操作（映射）"),
    (r"'item': a list of requests and folders", "'item'：请求和文件夹的列表"),
    (r"a request \(with 'request'\) or a folder \(with 'item'\)", "请求（含 'request'）或文件夹（含 'item'）"),
    (r"a request \(a URL or a mapping with 'url'\)", "请求（URL 或含 'url' 的映射）"),
    (r"a mapping with keys such as allow_write, operations", "映射，可用的键如 'allow_write'、'operations'"),
    (r"a mapping of operationId or 'METHOD /path' to overrides", "从 'operationId' 或 'METHOD /path' 到覆盖设置的映射"),
    (r"a mapping of overrides \((.*)\)", r"覆盖设置的映射（可用的有：\1）"),
    (r"a tag or operation \(operationId or 'METHOD /path'\), or a list of those",
     "标签或操作（'operationId' 或 'METHOD /path'），或它们的列表"),
    (r"a path such as (\S+) \(prepended to every operation path\)", r"路径，例如 \1（加在每个操作路径之前）"),
    (r"a mapping of variable names to values", "变量名到值的映射"),
    (r"the path of a Postman environment file \(e\.g\. (\S+)\), relative to this file",
     r"Postman 环境文件的路径（例如 \1），相对于本文件"),
    (r"a key after '\.'", "'.' 之后应有键名"), (r"'\.' or '\['", "'.' 或 '['"),
    (r"'\]' after the quoted key", "带引号的键之后应有 ']'"),
    (r"\[number\] or a quoted key like \[\"a\.b\"\]", "'[数字]' 或带引号的键，例如 '[\"a.b\"]'"),
]
_WHAT_RULES = [(LazyPattern(p, re.S), t) for p, t in _WHAT]


def _what(text: str) -> str:
    for pattern, template in _WHAT_RULES:
        m = pattern.fullmatch(text)
        if m is not None:
            return template(m) if callable(template) else m.expand(template)
    return text


def _tail(text: str | None) -> str:
    """What follows 'got X' in a problem: a hint, a further reason."""
    if not text:
        return ""
    m = re.fullmatch(r" \(durations like (.*) also work\)", text)
    if m:
        return "（也可写成 " + m.group(1).replace(", ", "、") + " 这样的时长）"
    if text == " (write two checks)":
        return "（请写成两个检查）"
    if text.startswith(" (did you mean"):
        return _hint(text)
    if text.startswith(": "):
        return "：" + _url_problem(text[2:])
    return text


def _expected(m: re.Match[str]) -> str:
    if _what(m.group(1)) == m.group(1) and zh(m.group(0)) != m.group(0):
        return zh(m.group(0))  # a core line (classify.py, response_schema.py) the catalogue knows whole
    got = f"，实际为 {_value(m.group(2))}" if m.group(2) is not None else ""
    return f"应为{_what(m.group(1))}{got}{_tail(m.group(3))}"


_RE_ERRORS = [
    (r"missing \), unterminated subpattern", "缺少 ')'，子模式没有结束"),
    (r"unterminated character set", "字符集 '[...]' 没有结束"), (r"nothing to repeat", "前面没有可重复的内容"),
    (r"multiple repeat", "重复限定符连用"), (r"unbalanced parenthesis", "括号不配对"),
    (r"bad escape (.*)", r"错误的转义 \1"), (r"unknown extension (.*)", r"未知的扩展语法 \1"),
    (r"bad character range (.*)", r"错误的字符范围 \1"),
    (r"look-behind requires fixed-width pattern", "后顾断言必须是定长的"),
]


def _re_error(text: str) -> str:
    """Python's re.error text ('nothing to repeat at position 0') in Chinese; unknown ones quoted."""
    m = re.fullmatch(r"(.*?)(?: at position (\d+))?(?: \(line \d+, column \d+\))?", text, re.S)
    assert m is not None  # the pattern matches any text
    for pattern, template in _RE_ERRORS:
        hit = re.fullmatch(pattern, m.group(1), re.S)
        if hit is not None:
            return hit.expand(template) + (f"（位置 {m.group(2)}）" if m.group(2) else "")
    return f"「{text}」"


def _url_problem(text: str) -> str:
    """_document_fields.url_problem's reasons in Chinese."""
    rules: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
        (r"it is empty", "为空"),
        (r"it contains whitespace \(encode spaces as %20\)", "含有空白字符（空格请编码为 %20）"),
        (r"it contains a control character", "含有控制字符"),
        (r"expected an absolute URL starting with http:// or https://(; for a path relative to the service base URL "
         r"use 'path')?", lambda m: "应为以 http:// 或 https:// 开头的绝对 URL"
                                    + ("；相对于服务 base_url 的路径请用 'path'" if m.group(1) else "")),
        (r"(.*) \(an IPv6 host is written in brackets: (.*)\)", r"「\1」（IPv6 主机要写在方括号中：\2）"),
        (r"scheme '(.*?)' is not http or https( \(did you mean '.*'\?\))?",
         lambda m: f"协议 '{m.group(1)}' 不是 'http' 或 'https'{_hint(m.group(2))}"),
        (r"missing host after '(.*)'", r"'\1' 之后缺少主机名"),
        (r"host name '(.*)' has an empty label or one longer than 63 characters \(RFC 1035\)",
         r"主机名 '\1' 中有空的标签或超过 63 个字符的标签（RFC 1035）"),
        (r"the port is not a number between 1 and 65535 \(got (.*)\)", r"端口不是 1 到 65535 之间的数字（实际为 \1）"),
    ]
    for pattern, template in rules:
        m = re.fullmatch(pattern, text, re.S)
        if m is not None:
            return template(m) if callable(template) else m.expand(template)
    return zh_document_message(text)


def _robot_problem(text: str) -> str:
    """notify/settings.py's webhook problems (inside "robot 'x': …") in Chinese."""
    rules: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
        (r"the webhook is empty: set it to the robot's key or its webhook URL \(e\.g\. webhook: (\$\{\w+\}) with "
         r"(\w+) exported\)",
         r"Webhook 为空：请设为机器人的密钥或 Webhook 地址（例如 'webhook: \1'，并导出环境变量 \2）"),
        (r"this is a (\S+) webhook \((.*?)\), not a WeCom \(企业微信\) group robot(?: \(put it under (.*)\))?; "
         r"copy the URL from the WeCom group's robot settings \((.*)\)",
         lambda m: f"这是{_product(m.group(1))}的 Webhook（{m.group(2)}），不是企业微信群机器人"
                   + (f"（请写在 {m.group(3)} 下）" if m.group(3) else "")
                   + f"；请从企业微信群的机器人设置中复制地址（{m.group(4)}）"),
        (r"the webhook URL \((.*)\) has no 'key=' parameter; paste the whole robot URL \((.*)\) or just the key",
         r"Webhook 地址（\1）中没有 'key=' 参数；请粘贴完整的机器人地址（\2），或只粘贴密钥"),
        (r"the webhook URL path is (.*), expected (.*); paste the robot's webhook URL as shown in the group robot "
         r"settings, or just its key",
         r"Webhook 地址的路径是 \1，应为 \2；请粘贴群机器人设置中显示的 Webhook 地址，或只粘贴密钥"),
        (r"the webhook key (.*) does not look like a WeCom robot key \(36 characters like (\S+), the part after "
         r"'key=' in the robot's webhook URL\); check for a truncated copy or stray characters",
         r"Webhook 密钥 \1 不像企业微信机器人的密钥（应为 36 个字符，例如 '\2'，"
         r"即机器人 Webhook 地址中 'key=' 之后的部分）；"
         r"请检查是否复制不全或混入了多余字符"),
        (r"the webhook is empty: set it to the (.*) robot's webhook URL \((.*)\) or token",
         lambda m: f"Webhook 为空：请设为{_product(m.group(1))}机器人的 Webhook 地址（{m.group(2)}）或令牌"),
        (r"this is a WeCom \(企业微信\) webhook \((.*)\); put it under notify\.wecom",
         r"这是企业微信的 Webhook（\1）；请写在 notify.wecom 下"),
        (r"expected an? (.*) robot URL like (\S+), got (\S+)",
         lambda m: f"应为形如 {m.group(2)} 的{_product(m.group(1))}机器人地址，实际为 {m.group(3)}"),
        (r"the webhook token (.*) does not look like an? (.*) robot token; check for a truncated copy or stray "
         r"characters", lambda m: f"Webhook 令牌 {m.group(1)} 不像{_product(m.group(2))}机器人的令牌；"
                                  "请检查是否复制不全或混入了多余字符"),
    ]
    for pattern, template in rules:
        m = re.fullmatch(pattern, text, re.S)
        if m is not None:
            return template(m) if callable(template) else m.expand(template)
    return zh_document_message(text)


def zh_document_message(message: str) -> str:
    """One problem message (no file or field in front) in Chinese, by the document rules; unchanged if unknown."""
    for pattern, template in _DOC_RULES:
        hit = pattern.fullmatch(message)
        if hit is not None:
            return template(hit) if callable(template) else hit.expand(template)
    return zh(message)


def _header_problem(text: str) -> str:
    rules: list[tuple[str, str]] = [
        (r"header name '(.*)' cannot be sent: a name is letters, digits and (\S+) only \(no spaces, colons or "
         r"non-ASCII\)", r"请求头名 '\1' 无法发送：只能由字母、数字和 \2 组成（不能有空格、冒号或非 ASCII 字符）"),
        (r"header value cannot be sent: it contains a line break or NUL", "请求头的值无法发送：含有换行符或空字符"),
        (r"header value cannot be sent: it starts with whitespace", "请求头的值无法发送：以空白字符开头"),
        (r"header value contains (.*), which HTTP/1\.1 headers cannot carry \(only ISO-8859-1\); if the service "
         r"expects UTF-8 percent-encoding, write (.*)",
         r"请求头的值含有 \1，HTTP/1.1 请求头无法携带（只支持 ISO-8859-1 字符）；"
         r"如果服务接受 UTF-8 百分号编码，请写成 \2"),
    ]
    for pattern, template in rules:
        m = re.fullmatch(pattern, text, re.S)
        if m is not None:
            return m.expand(template)
    return text


_NEW_DOC_RULES: list[Rule] = []


def _doc2(pattern: str, template: str | Callable[[re.Match[str]], str]) -> None:
    _NEW_DOC_RULES.append((LazyPattern(pattern, re.S), template))


# maintenance.py
_doc2(r"unknown weekday '(.*?)'( \(did you mean '.*'\?\))?; expected one of (.*?) \(or monday … sunday, "
      r"(?:周一 … 周日, )?a range like mon-fri, daily\)",
      lambda m: f"未知的星期 '{m.group(1)}'{_hint(m.group(2))}；可用的有：{m.group(3)}"
                "（也可写 monday … sunday、周一 … 周日、mon-fri 这样的范围，或 daily）")
_doc2(r"not a time of day: (.*?) \(00:00 … 23:59(, or 24:00 as an end)?\)",
      lambda m: f"不是有效的时刻：{m.group(1)}（00:00 … 23:59"
                + ("，结束时刻也可写 24:00" if m.group(2) else "") + "）")
_doc2(r"'(.*)' is a time of day: a weekly window needs 'days' \(e\.g\. days: \[sat\]\); a one-off window needs a "
      r"date, e\.g\. (\"[^\"]*\")",
      r"'\1' 只是一天中的时刻：每周窗口需要 'days'（例如 'days: [sat]'）；一次性窗口需要日期，例如 \2")
_doc2(r"a maintenance window needs 'start' and 'end' \(or 'duration'\)",
      "维护窗口需要 'start' 和 'end'（或 'duration'）")
_doc2(r"a maintenance window needs 'end' or 'duration'", "维护窗口需要 'end' 或 'duration'")
_doc2(r"the window is empty: end equals start \((.*)\); for a whole day write start: \"00:00\", end: \"24:00\"",
      r"窗口为空：结束时刻等于开始时刻（\1）；全天请写 'start: \"00:00\", end: \"24:00\"'")
_doc2(r"a weekly window lasts at most a week, got (.*)", r"每周窗口最长一周，实际为 \1")
_doc2(r"the window ends before it starts: end (.*) is not after start (.*)",
      r"窗口在开始之前就结束了：结束时刻 \1 不晚于开始时刻 \2")
# times.py
_doc2(r"'(.*)' is not a UTC offset \(expected -12:00 … \+14:00\)",
      r"'\1' 不是有效的 UTC 偏移（应在 -12:00 … +14:00 之间）")
_doc2(r"unknown time zone '(.*)': use an IANA name like Asia/Shanghai or an offset like \+08:00",
      r"未知的时区 '\1'：请使用 IANA 时区名（例如 Asia/Shanghai）或 UTC 偏移（例如 +08:00）")
# config.py, _config_reader.py, policy_settings.py
_doc2(r"service '(.*)' has no base_url for environment '(.*)' \(it has: (.*)\); add '(.*)' or a 'default:' fallback",
      lambda m: f"服务 '{m.group(1)}' 没有环境 '{m.group(2)}' 的 base_url（已有："
                f"{'无' if m.group(3) == 'none' else _quoted_list(m.group(3))}）；"
                f"请添加 '{m.group(4)}'，或添加 'default:' 作为兜底")
_doc2(r"missing 'type' \(one of: (.*)\)", r"缺少 'type'（可用的有：\1）")
_doc2(r"unknown auth type '(.*?)'( \(did you mean '.*'\?\))? \(one of: (.*)\)",
      lambda m: f"未知的认证类型 '{m.group(1)}'{_hint(m.group(2))}（可用的有：{m.group(3)}）")
_doc2(r"'refresh_before' has no effect for type (\w+): its credentials are sent as they are, never fetched",
      r"'refresh_before' 对 '\1' 类型无效：它的凭据按原样发送，从不获取")
_doc2(r"login needs 'path' \(joined to base_url\) or an absolute 'url'",
      "登录需要 'path'（拼接在 base_url 之后）或绝对地址 'url'")
_doc2(r"'path' needs the service's base_url; set base_url or use an absolute 'url'",
      "'path' 需要服务的 base_url：请设置 base_url，或使用绝对地址 'url'")
_doc2(r"static auth needs 'token', e\.g\. (.*)", r"'static' 认证需要 'token'，例如 '\1'")
_doc2(r"oauth2 needs 'token_url', 'client_id' and 'client_secret' \(missing '(.*)'\)",
      r"'oauth2' 认证需要 'token_url'、'client_id' 和 'client_secret'（缺少 '\1'）")
_doc2(r"basic auth needs 'username' and 'password', e\.g\. (.*)",
      r"'basic' 认证需要 'username' 和 'password'，例如 '\1'")
_doc2(r"CA bundle not found: (.*) \(a path relative to the config file's folder, to a PEM file of CA certificates\)",
      r"找不到 CA 证书包：\1（应为相对于配置文件所在目录的路径，指向 PEM 格式的 CA 证书文件）")
_doc2(r"cert_fail_days \((.*)\) must not be more than cert_warn_days \((.*)\)",
      r"cert_fail_days（\1）不能大于 cert_warn_days（\2）")
_doc2(r"config file not found: (.*)", r"找不到配置文件：\1")
_doc2(r"not a file: (.*)", r"不是文件：\1")
_doc2(r"cannot read config file: (.*)", lambda m: "无法读取配置文件：" + _os_error(m.group(1)))
_doc2(r"keys must be strings, got (.*)", lambda m: f"键必须是字符串，实际为 {_value(m.group(1))}")
_doc2(r"keys of (\S+) must be strings, got (.*) \(quote it\)",
      lambda m: f"{m.group(1)} 的键必须是字符串，实际为 {_value(m.group(2))}（请加引号）")
_doc2(r"JSON object keys must be strings, got (.*) \(quote it\)",
      lambda m: f"JSON 对象的键必须是字符串，实际为 {_value(m.group(1))}（请加引号）")
_doc2(r"use either '(\w+)' or '(\w+)', not both", r"'\1' 和 '\2' 只能用其中一个")
_doc2(r"use only one of (.*), not both", lambda m: f"{m.group(1).replace(', ', '、')} 只能用其中一个")
_doc2(r"use either 'path' \(joined to the service base URL\) or 'url' \(absolute\), not both",
      "'path'（拼接在服务的 base_url 之后）和 'url'（绝对地址）只能用其中一个")
_doc2(r"a base URL cannot have a query string or fragment, got (.*) \(paths are appended to it; put query parameters "
      r"in each interface's params\)",
      r"base_url 不能带查询参数或片段，实际为 \1（接口路径会拼接在它后面；查询参数请写在各接口的 'params' 中）")
_doc2(r"malformed URL (.*?): (.*)", lambda m: f"URL {m.group(1)} 格式错误：{_url_problem(m.group(2))}")
_doc2(r"malformed (body )?path (.*?): (.*?); expected (?:e\.g\. (.*)|keys and \[index\] like (.*?), a quoted key like "
      r"(.*) \('' = whole body\))",
      lambda m: f"{'响应体' if m.group(1) else ''}路径 {m.group(2)} 格式错误：{zh_document_message(m.group(3))}；"
                + (f"应写成例如 '{m.group(4)}'" if m.group(4) else
                   f"应为键名和 [下标]，例如 {m.group(5)}，或带引号的键，例如 '{m.group(6)}'（'' 表示整个响应体）"))
_doc2(r"(\d+) changes cannot happen within (\d+) runs \(at most (\d+)\); raise window or lower changes",
      r"\2 次运行内不可能发生 \1 次变化（最多 \3 次）；请调大 'window' 或调小 'changes'")
# notify/settings.py
_doc2(r"missing 'webhook': the robot's key or webhook URL \(e\.g\. (.*)\)",
      r"缺少 'webhook'：机器人的密钥或 Webhook 地址（例如 '\1'）")
_doc2(r"missing 'webhook': the robot's webhook URL or token \(e\.g\. (.*)\)",
      r"缺少 'webhook'：机器人的 Webhook 地址或令牌（例如 '\1'）")
_doc2(r"robot '(.*?)': (.*)", lambda m: f"机器人 '{m.group(1)}'：{_robot_problem(m.group(2))}")
_doc2(r"'(.*)' is not a WeCom userid: write the account id without '@' \(e\.g\. zhangsan\), or \"@all\" for everyone",
      r"'\1' 不是企业微信的 'userid'：请写不带 '@' 的账号（例如 'zhangsan'），或写 \"@all\" 提醒所有人")
_doc2(r"'(.*)' is not a mobile number \(digits, e\.g\. \"(\d+)\"; quote it in YAML\), or \"@all\"",
      r"'\1' 不是手机号（应为数字，例如 \"\2\"，在 YAML 中要加引号），或写 \"@all\"")
_doc2(r"duplicate robot name '(.*)': names must be unique \(they key the outbox and the logs\)",
      r"机器人名称 '\1' 重复：名称必须唯一（发件箱和日志按名称区分机器人）")
# documents.py, _document_fields.py
_doc2(r"missing required field: path or url", "缺少必填字段：'path' 或 'url'")
_doc2(r"missing required field 'path' \(use '' for the whole body; only contains and regex may leave it out to check "
      r"the raw text\)",
      "缺少必填字段 'path'（整个响应体请写 ''；只有 'contains' 和 'regex' 可以省略它，用来检查原始文本）")
_doc2(r"at most one body is allowed \(json, form or body\), got (.*)",
      lambda m: f"最多只能有一个请求体（'json'、'form' 或 'body'），实际有 {_value(m.group(1))}")
_doc2(r"'defaults' is only allowed next to 'interfaces' \(a list of interfaces\)",
      "'defaults' 只能和 'interfaces'（接口列表）写在一起")
_doc2(r"the interface name must not be empty", "接口名不能为空")
_doc2(r"the interface name must be a single line", "接口名必须是单行")
_doc2(r"the interface name must not contain '::' \(pytest uses it in node ids\), got (.*)",
      r"接口名不能包含 '::'（pytest 用它分隔节点标识），实际为 \1")
_doc2(r"'path' is joined to the service base URL and must not be a full URL, got (.*); use 'url'",
      r"'path' 会拼接在服务的 base_url 之后，不能是完整 URL，实际为 \1；请改用 'url'")
_doc2(r"'path' must not contain whitespace or control characters \(encode spaces as %20\), got (.*)",
      r"'path' 不能含有空白或控制字符（空格请编码为 %20），实际为 \1")
_doc2(r"unknown type (.*?)( \(did you mean '.*'\?\))?; expected one of (.*)",
      lambda m: f"未知的类型 {_value(m.group(1))}{_hint(m.group(2))}；可用的有：{m.group(3)}")
_doc2(r"warn_ms \((.*)\) must be less than max_ms \((.*)\): slower than warn_ms but within max_ms is 'slow', beyond "
      r"max_ms is a failure",
      r"warn_ms（\1）必须小于 max_ms（\2）：慢于 warn_ms 但在 max_ms 之内算“慢”，超过 max_ms 算失败")
_doc2(r"expected a JSON value, got (.*): JSON has no NaN or Infinity \(RFC 8259\); send a string",
      r"应为 JSON 值，实际为 \1：JSON 没有 'NaN' 和 'Infinity'（RFC 8259）；请改为字符串")
_doc2(r"invalid regular expression (.*?): (.*)", lambda m: f"无效的正则表达式 {m.group(1)}：{_re_error(m.group(2))}")
_doc2(r"header name '.*' cannot be sent: .*|header value cannot be sent: .*|header value contains .*",
      lambda m: _header_problem(m.group(0)))
# a header name with a space is a field path _FIELD cannot split: "headers.X A: header name 'X A' …"
_doc2(r"([^:]*\S): (header (?:name|value) .*)", lambda m: f"{m.group(1)}：{zh_document_message(m.group(2))}")
# bodypath.py
_doc2(r"a body path is at most (\d+) characters", r"响应体路径最多 \1 个字符")
_doc2(r"unexpected '(.)' at position (\d+)", r"第 \2 个字符处不应出现 '\1'")
_doc2(r"unterminated (.)\.\.\.(.) key starting at position (\d+)", r"从第 \3 个字符开始的 \1...\2 键没有结束")
_doc2(r"expected (.*) at position (\d+)", lambda m: f"第 {m.group(2)} 个字符处应为{_what(m.group(1))}")
# importers (model.py, openapi.py, postman.py, overrides.py)
_doc2(r"unsupported OpenAPI version '(.*)': supported are OpenAPI 3\.0\.x and 3\.1\.x and Swagger 2\.0",
      r"不支持的 OpenAPI 版本 '\1'：支持 OpenAPI 3.0.x、3.1.x 和 Swagger 2.0")
_doc2(r"unsupported Swagger version '(.*)': supported are Swagger 2\.0 and OpenAPI 3\.0\.x/3\.1\.x \(convert older "
      r"specs with swagger2openapi or the Swagger editor\)",
      r"不支持的 Swagger 版本 '\1'：支持 Swagger 2.0 和 OpenAPI 3.0.x/3.1.x（更早的规范请用 'swagger2openapi' 或 "
      r"Swagger 编辑器转换）")
_doc2(r"unsupported Postman collection schema '(.*)': export the collection as v2\.1",
      r"不支持的 Postman 集合格式 '\1'：请把集合导出为 v2.1")
_doc2(r"circular \$ref: (.*)", r"循环的 $ref：\1")
_doc2(r"\$ref '(.*)': the part after '#' must be a JSON pointer such as '(.*)'",
      r"$ref '\1'：'#' 之后的部分必须是 JSON 指针，例如 '\2'")
_doc2(r"external \$ref '(.*)' is not supported here", r"此处不支持外部 $ref '\1'")
_doc2(r"broken \$ref '(.*?)': no '(.*?)' in (\S+)( \(did you mean '.*'\?\))?",
      lambda m: f"$ref '{m.group(1)}' 无效：{m.group(3)} 中没有 '{m.group(2)}'{_hint(m.group(4))}")
_doc2(r"and (\d+) more broken \$refs", r"另有 \1 个无效的 $ref")
_doc2(r"'(.*)' is not a URL: expected e\.g\. '(.*)' or '(.*)'", r"'\1' 不是 URL：应为例如 '\2' 或 '\3'")
_doc2(r"no operation '(.*?)' in the document( \(did you mean '.*'\?\))?; use an operationId or 'METHOD /path'",
      lambda m: f"文档中没有操作 '{m.group(1)}'{_hint(m.group(2))}；请写 'operationId' 或 'METHOD /path'")
_doc2(r"'(.*?)' is neither a tag nor an operation of the document( \(did you mean '.*'\?\))?",
      lambda m: f"'{m.group(1)}' 既不是文档中的标签，也不是其中的操作{_hint(m.group(2))}")
_doc2(r"cannot read overrides file: (.*)", lambda m: "无法读取覆盖设置文件：" + _os_error(m.group(1)))
_doc2(r"unknown naming (.*?)( \(did you mean '.*'\?\))?; expected one of (.*)",
      lambda m: f"未知的命名方式 {_value(m.group(1))}{_hint(m.group(2))}；可用的有：{m.group(3)}")
_doc2(r"Postman environment file (.*) does not exist \(looked for (.*)\)", r"Postman 环境文件 \1 不存在（查找的是 \2）")
_doc2(r"cannot read the Postman environment file (.*?): (.*)",
      lambda m: f"无法读取 Postman 环境文件 {m.group(1)}：{_os_error(m.group(2))}")
_doc2(r"(.*) is not a Postman environment export: expected 'values', a list of \{key, value, enabled\}",
      r"\1 不是 Postman 环境导出文件：应有 'values'，即 '{key, value, enabled}' 的列表")
# documents.py, poolfiles.py: a file that cannot be read as text
def _strerror(text: str) -> str:
    """An OSError's strerror ('No such file or directory') or its whole text, in Chinese."""
    return _OS_ERRORS.get(text) or _os_error(text)


_doc2(r"file is not valid UTF-8 text \(invalid byte (0x[0-9a-f]{2}) at offset (\d+)\); save it as UTF-8",
      r"文件不是有效的 UTF-8 文本（偏移 \2 处有无效字节 '\1'）；请以 UTF-8 编码保存")
_doc2(r"symlink loop \((.*)\)", r"符号链接循环（\1）")
_doc2(r"broken symlink to (.*) \((.*)\)", lambda m: f"符号链接指向的 {m.group(1)} 不存在（{_strerror(m.group(2))}）")
_doc2(r"cannot read file(?:: (.*))?", lambda m: "无法读取文件" + (f"：{_strerror(m.group(1))}" if m.group(1) else ""))
_doc2(r"and (\d+) more problem\(s\)", r"另有 \1 个问题")
# loader.py: the limits every document and the config are read within
def _limit_source(text: str) -> str:
    m = re.fullmatch(r" \((limits\.\w+) in config\.yaml\)| \(built-in limit for the config file\)", text)
    if m is None:
        return text
    return f"（config.yaml 中的 {m.group(1)}）" if m.group(1) else "（配置文件自身的内置上限）"


def _size(text: str) -> str:
    return text.replace(" bytes", " 字节")


_LIMIT = r"( \(limits\.\w+ in config\.yaml\)| \(built-in limit for the config file\))"
_doc2(r"file is (.*?), over the limit of (.*?)" + _LIMIT,
      lambda m: f"文件大小 {_size(m.group(1))}，超过上限 {_size(m.group(2))}{_limit_source(m.group(3))}")
_doc2(r"not a regular file \(a pipe, device or socket cannot be read as a document\)",
      "不是普通文件（管道、设备或套接字不能作为文档读取）")
_doc2(r"a number of (\d+) digits is too long to read \(at most (\d+)\); quote it to send it as text",
      r"一个 \1 位的数字太长，无法读取（最多 \2 位）；请加引号，按文本发送")
_doc2(r"duplicate key '(.*)' \(first defined at line (\d+)\); a later one would silently win",
      r"键 '\1' 重复（首次定义于第 \2 行）；后一个会悄悄覆盖前一个")
_doc2(r"nested more than (\d+) levels deep" + _LIMIT,
      lambda m: f"嵌套超过 {m.group(1)} 层{_limit_source(m.group(2))}")
_doc2(r"an alias refers to a node that contains it \(recursive alias\)", "别名引用了包含它自身的节点（递归别名）")
_doc2(r"aliases \(\*name\) expand to (\d+) more nodes, over the limit of (\d+)" + _LIMIT,
      lambda m: f"别名（*名称）展开后多出 {m.group(1)} 个节点，超过上限 {m.group(2)}{_limit_source(m.group(3))}")
_doc2(r"(?:(.*): )?(\d+) keys in one mapping, over the limit of (\d+)" + _LIMIT,
      lambda m: {None: "", "the top level": "顶层："}.get(m.group(1), f"{m.group(1)}：")
                + f"一个映射中有 {m.group(2)} 个键，超过上限 {m.group(3)}{_limit_source(m.group(4))}")
# the generic forms last: "expected X, got Y" and "expected X"
_doc2(r"expected (.*?)(?:[,;] got (.*?)( \(durations like .* also work\)| \(write two checks\)"
      r"| \(did you mean '[^']*'\?\)|: .*)?)?", _expected)

_DOC_RULES[0:0] = _NEW_DOC_RULES
