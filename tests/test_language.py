"""Issue 20, requirement 6 ("Chinese all the way"): the checker of the kind.

A scripted series of runs of a pool with every failure category, Chinese and English service, file and
interface names, a login that is refused, a broken document, a storm, an open circuit, a recovery, a dry run, the
webhook test, a bad config, the watcher's messages and the `apimon` commands, in `language: zh`. Everything a person
reads is collected: pytest's terminal output (FAILURES, the short summary, skip reasons, the pytest-apimon
section), report.md, the status page's text, JUnit's failure and skip messages, every WeCom message, the watcher's
messages and the command-line tools' lines. The check: no English word is left, except values (URLs, host:port,
file paths, the user's own names from the documents and the config, HTTP header lines, response bodies, the curl
line) and an explicit allowlist of technical terms (HTTP methods, HTTP, JSON, TLS, ms …). The same run in
`language: en` must contain no CJK character except in the user's own names and the server's own bodies.

pytest's own framing (session header, progress lines, "FAILED"/"SKIPPED" prefixes, its section titles and the
final counts line) is pytest's, not ours, and is left out of the check.
"""

from __future__ import annotations

import html
import re
import socket
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer, Response
from test_plugin import write

# Technical terms a Chinese engineer reads as they are (docs/zh/glossary.md lists the Chinese words we use).
ALLOWED = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",  # HTTP methods
    "HTTP", "HTTPS", "JSON", "YAML", "URL", "TLS", "DNS", "SNI", "ms", "curl", "Markdown", "schema", "errcode",
    "Webhook",  # the robot platforms' own name for the robot's address (Webhook 地址)
    "IANA", "ASCII", "RFC", "UTF", "ISO", "CA", "PEM",  # standards' names (time zones, encodings, certificates)
    "pytest", "apimon", "xdist", "Content", "Type", "Retry", "After", "SIGTERM", "SIGKILL", "UTC", "P0", "P1", "P2",
    "P50", "P95", "P99", "MiB", "OpenAPI", "Swagger", "Postman",
}
# pytest's own lines around ours (not produced by pytest-apimon).
PYTEST_LINES = re.compile(
    r"=+ (test session starts|FAILURES|ERRORS|short test summary info|warnings summary|PASSES|"
    r"[\d\w ,.()]*(passed|failed|skipped|rerun|error|warning|no tests ran|deselected)[\d\w ,.()]*) =+"
    r"|platform .*|rootdir: .*|configfile: .*|plugins: .*|cachedir: .*|collected \d+ items?.*|"
    r"collecting .*|-- Docs: .*|\S+ [.FsxERr]+\s*\[\s*\d+%\]|\S+ [.FsxERr]+|\s*|"
    r"-+ generated xml file: .* -+"
)
OUTCOME_PREFIX = re.compile(r"(FAILED|ERROR|SKIPPED|XFAIL|XPASS|PASSED):? (\[\d+\] )?")
HEADER_LINE = re.compile(r"\s+[A-Za-z][\w-]*: .*")  # a request header below 请求：/request:
BODY_LABEL = re.compile(r"(\s*)(响应体|请求体|body)[：:] ?.*")
VALUES = [
    re.compile(r"https?://[^\s'\"」），；]+"),  # URLs (also in Markdown links; CJK punctuation ends one)
    re.compile(r"curl .*"),  # the reproduce line is a shell command
    re.compile(r"`[^`\n]*`"),  # code spans: values
    re.compile(r"「[^」]*」|'[^'\n]*'|\"[^\"\n]*\""),  # quoted values (server words, names, document values)
    re.compile(r"服务端说明：[^）\n]*"),  # the server's own words about a failed login
    re.compile(r"(可用的有|必须且只能有以下之一)：[^；\n]*"),  # the keys a document or config may use, as named there
    re.compile(r"<@[^>]*>"),  # WeCom mentions
    re.compile(r"\{[^{}\n]*\}"),  # JSON excerpts
    re.compile(r"[\w$.\[\]*¤-]*[/\\.:][\w$.\[\]/\\:*?=&%¤-]+"),  # paths, host:port, field paths, file names
    re.compile(r"apimon (watch|merge|export)|--[\w-]+"),  # command and option names
    re.compile(r"#[0-9a-f]{6}"),  # incident ids
    re.compile(r"\$\w+"),  # JSON Schema and OpenAPI keywords ($ref)
    re.compile(r"\b\w+_\w+(: \w+)?"),  # identifiers: config keys and values (send_on: change), machine fields
]
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def english_lines(text: str, names: set[str]) -> dict[str, set[str]]:
    """Each line of `text` holding English words that are neither values nor allowed terms nor the user's own
    names, with those words."""
    text = without_names(text, names)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)  # code blocks: request/response excerpts in the report
    text = re.sub(r"</?(font|br|b|i|a)\b[^>]*>", " ", text)  # WeCom / HTML markup
    found: dict[str, set[str]] = {}
    in_request = False
    for line in text.splitlines():
        if line.lstrip().startswith(("请求：", "request: ")):
            in_request = True
        elif in_request and HEADER_LINE.fullmatch(line):
            continue  # header lines are the exchange's own text
        else:
            in_request = False
        bare = BODY_LABEL.sub(r"\1\2", line)  # a body is the server's text
        for pattern in VALUES:
            bare = pattern.sub(" ", bare)
        words = {w for w in re.findall(r"[A-Za-z][A-Za-z0-9]+", bare) if w not in ALLOWED}
        if words:
            found[line.strip()[:300]] = words
    return found


def english_words(text: str, names: set[str]) -> set[str]:
    return set().union(*english_lines(text, names).values())


def without_names(text: str, names: set[str]) -> str:
    """text with the user's own names blanked (ASCII names only as whole words: 'id' is not in 'invalid')."""
    for name in sorted(names, key=len, reverse=True):
        if name.isascii():
            text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", "¤", text)
        else:
            text = text.replace(name, "¤")
    return text


def cjk_words(text: str, names: set[str]) -> set[str]:
    text = without_names(text, names)
    text = re.sub(r"\S*\.\.\.$", " ", text, flags=re.M)  # a name pytest cut short in its summary line
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    for pattern in VALUES[:6]:  # code, quotes, JSON: the server's own words may be Chinese
        text = pattern.sub(" ", text)
    return {line.strip() for line in text.splitlines() if CJK.search(line)}


def ours(lines: list[str]) -> str:
    """The lines of a pytest run that pytest-apimon wrote (pytest's own framing dropped, outcome prefixes cut)."""
    out = []
    in_warnings = False
    for line in lines:
        if line.startswith("="):
            in_warnings = "warnings summary" in line
        if in_warnings or PYTEST_LINES.fullmatch(line):
            continue  # pytest's own framing and warnings (pytester's own assertion-rewrite warning among them)
        m = OUTCOME_PREFIX.match(line)
        if m and m.group(1) == "SKIPPED":
            line = line[m.end():].split(": ", 1)[-1]  # "SKIPPED [1] path:line: reason": the reason
        elif m:
            line = line[m.end():].split(" - ", 1)[-1]  # "FAILED nodeid - message": the message
        out.append(line.strip("_ ") if line.startswith("_") else line)
    return "\n".join(out)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(srv: LocalServer, healthy: dict[str, bool]) -> None:
    def route(path: str, bad: Response | dict | str) -> None:
        srv.route("GET", path, lambda r: {"code": 0, "data": {"id": 1}} if healthy["on"] else bad)

    route("/shop/ok", {"code": 0, "data": {"id": 1}})
    route("/shop/boom", Response(500, {}, {"error": "Internal Server Error", "message": "NullPointerException"}))
    route("/shop/gone", Response(404, {}, "Not Found"))
    route("/shop/busy", Response(503, {}, "Service Unavailable"))
    route("/shop/limit", Response(429, {}, "Too Many Requests"))
    route("/shop/deny", Response(403, {}, {"msg": "forbidden: needs role auditor"}))
    route("/shop/who", Response(401, {}, {"msg": "token expired"}))
    route("/shop/body", {"code": 1, "data": {"id": "x", "items": []}})
    route("/shop/html", Response(200, {"Content-Type": "text/html"}, "<html>maintenance</html>"))
    route("/shop/schema", {"code": 0, "data": {"id": "seven"}})
    route("/shop/header", Response(200, {"Content-Type": "text/plain"}, {"code": 0}))
    srv.route("POST", "/member/login", lambda r: Response(401, {}, {"msg": "bad password"}))
    srv.route("GET", "/member/me", lambda r: {"code": 0})


POOL = {
    "pool/商城/订单.yaml": """
        - {name: 正常, path: /ok}
        - {name: 下单, path: /boom}
        - {name: 旧接口, path: /gone}
        - {name: 支付, path: /busy}
        - {name: 导出, path: /limit}
        - {name: 审计日志, path: /deny}
        - {name: 我的信息, path: /who}
        - name: 订单详情
          path: /body
          expect:
            body:
              - {path: code, equals: 0}
              - {path: data.id, type: integer}
              - {path: data.items, length: {gt: 0}}
        - name: 首页
          path: /html
          expect: {body: [{path: code, equals: 0}]}
        - name: 库存
          path: /schema
          expect:
            schema: {type: object, required: [code, data], properties: {data: {type: object, required: [id, name],
                     properties: {id: {type: integer}}}}}
        - name: 价格
          path: /header
          expect: {headers: {Content-Type: {contains: json}}}
        - {name: 已下线接口, path: /ok, skip: true}
        - {name: 暂停, path: /ok, skip: "接口改造中"}
        - {name: 缺少检查, path: /ok, expect: {body: [{path: code}]}}
    """,
    "pool/商城/网络.yaml": """
        - {name: 端口拒绝连接, url: "http://127.0.0.1:{closed}/ping"}
        - {name: HTTPS握手失败, url: "https://127.0.0.1:{port}/shop/ok"}
    """,
    "pool/member/api.yaml": """
        - {name: profile, path: /me}
        - {name: 积分, path: /me}
    """,
    "pool/crm/api.yaml": """
        - {name: 客户列表, path: /customers}
        - {name: 联系人, path: /contacts}
    """,
    "pool/admin/broken.yaml": """
        - name: 批量导入
          method: FETCH
          path: /import
          heders: {X-A: b}
    """,
    "pool/admin/bad yaml.yaml": "interfaces: [unclosed\n",
    "pool/admin/no-path.yaml": """
        - {name: 列表, path: /list}
        - {name: 详情}
    """,
    "pool/admin/indent.yaml": "- name: 导出\n path: /export\n",
}
# Configs a user gets wrong (issue 20): each is one run that stops with the config problem.
BAD_CONFIGS = {
    "bad.yaml": "services:\n  商城: {base_url: 42, tiemout: 3}\n",
    "bad-days.yaml": "maintenance: [{days: [sunn], start: '02:00', end: '03:00'}]\n",
    "bad-zone.yaml": "report: {timezone: Asia/Shanghia}\n",
    "bad-window.yaml": "maintenance: [{days: [sat], start: '02:00', end: '02:00'}]\n",
    "bad-robot.yaml": "notify: {wecom: [{name: 值班群, webhook: 'http://x/'}]}\n",
}


def config_text(srv: LocalServer, fake: FakeWeCom, lang: str, closed: int) -> str:
    return f"""
        env: prod
        defaults: {{retries: 0, timeout: 2, connect_timeout: 1}}
        report:
          language: {lang}
          timezone: "+08:00"
          markdown: out/report.md
          html: out/status.html
        alerts:
          storm: {{fraction: 0.15, min_services: 2, min_interfaces: 3}}
        breaker: {{failures: 2, cooldown: 1h}}
        services:
          商城:
            base_url: {srv.url}/shop
            owner: [zhangsan]
            severity: P0
          member:
            base_url: {srv.url}/member
            auth: {{type: login, path: /login, json: {{user: m, password: pw}}, token_path: data.token}}
          crm:
            base_url: http://127.0.0.1:{closed}/crm
            auth: {{type: login, path: /login, json: {{user: c, password: pw}}, token_path: data.token}}
          admin:
            base_url: {srv.url}/admin
        notify:
          wecom:
            - {{name: 值班群, webhook: {KEY}, base_url: "{fake.base_url}"}}
    """


# The user's own names (documents, config): values, in whatever language the user wrote them.
NAMES = {"商城", "member", "crm", "admin", "profile", "zhangsan", "prod", "pool", "值班群", "订单", "网络", "api",
         "broken", "bad yaml", "FETCH", "heders", "method", "code", "data", "items", "id", "name", "integer",
         "Content-Type", "json", "接口改造中", "missing-shard.json", "nowhere", "no-path", "indent", "maintenance",
         "report", "timezone", "services", "notify", "wecom", "days", "end", "webhook"}


def scripted_runs(pytester: pytest.Pytester, srv: LocalServer, lang: str) -> tuple[list[str], set[str]]:
    """Every text a person reads over the script, and the names to leave alone."""
    healthy = {"on": False}
    serve(srv, healthy)
    closed = closed_port()
    texts: list[str] = []
    with FakeWeCom() as fake:
        write(pytester.path, "config.yaml", config_text(srv, fake, lang, closed))
        for rel, text in POOL.items():
            write(pytester.path, rel, text.replace("{closed}", str(closed)).replace("{port}", str(srv.port)))

        def run(*args: str) -> pytest.RunResult:
            result = pytester.runpytest("--apimon", "pool", "-rA", "--junitxml=out/junit.xml", *args)
            texts.append(ours(result.outlines + result.errlines))
            junit = pytester.path / "out" / "junit.xml"
            if junit.exists():
                for el in ET.parse(junit).iter():
                    if el.tag in ("failure", "skipped", "error"):
                        texts.append(el.get("message", ""))
                        texts.append(el.text or "")
            for name in ("report.md", "status.html"):
                path = pytester.path / "out" / name
                if path.exists():
                    text = path.read_text(encoding="utf-8")
                    if name.endswith(".html"):
                        text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S)
                        text = html.unescape(re.sub(r"<[^>]+>", "\n", text))
                    texts.append(text)
            return result

        run("--apimon-dry-run")  # the messages the first run would send, listed on the terminal
        run()  # NEW: every category, a storm, a refused login (root cause), a document error
        run()  # ONGOING; the circuits open after this second failing run
        run()  # behind open circuits: skipped with 熔断 reasons
        run("--apimon-dry-run")
        healthy["on"] = True
        run("--apimon-no-breaker")  # RECOVERED
        texts.append(ours(pytester.runpytest("--apimon", "pool", "--apimon-test-webhook").outlines))
        for name, text in BAD_CONFIGS.items():
            write(pytester.path, name, text)
            bad = pytester.runpytest("--apimon", "pool", "--apimon-config", name, f"--apimon-lang={lang}")
            assert bad.ret != 0
            texts.append(ours(bad.outlines + bad.errlines))
        texts += command_texts(pytester, lang)  # with the robot up: a merge with no shard file notifies
        texts += [m.content or str(m.payload) for m in fake.messages]
        texts += watcher_texts(pytester.path / "config.yaml")
    names = NAMES | {str(closed), str(srv.port)}
    return texts, names


def watcher_texts(config: Path) -> list[str]:
    """The watcher's three messages (broken, repaired, heartbeat) through the configured robot."""
    from pytest_apimon.watch import Cycle, WatchAlerts

    sent: list[str] = []
    alerts = WatchAlerts(config)
    alerts.deliver = lambda n: sent.extend([n.title, n.markdown])  # type: ignore[method-assign]
    cycle = Cycle(slot=1_790_000_000.0, started_at=1_790_000_000.0, finished_at=1_790_000_060.0, returncode=4,
                  tail=[])
    alerts.broken(cycle, 1_790_000_000.0)
    alerts.repaired(Cycle(slot=0, started_at=1_790_000_900.0, returncode=1), 1_790_000_000.0)
    alerts.heartbeat(1_790_001_000.0, 1_790_001_900.0)
    return sent


def command_texts(pytester: pytest.Pytester, lang: str) -> list[str]:
    """What `apimon export` and `apimon merge` print about problems."""
    py = [sys.executable, "-m", "pytest_apimon"]
    out = []
    for args in (["export", "--from", "2020-01-01", "--to", "2020-01-02", "--env", "nowhere"],
                 ["export", "--from", "2020-01-01", "--to", "2020-01-02", "--state-dir", "missing"],
                 ["merge", "missing-shard.json"]):
        result = pytester.run(*py, *args)
        out.append("\n".join(result.errlines + (result.outlines if args[0] == "merge" else [])))
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_word_a_user_reads_is_in_the_report_language(pytester: pytest.Pytester, local_server: LocalServer,
                                                           lang: str) -> None:
    texts, names = scripted_runs(pytester, local_server, lang)
    assert len(texts) > 20 and any("下单" in t for t in texts)
    if lang == "zh":  # the examples reached the reader, in Chinese
        for phrase in ("未知的星期 'sunn'（是否应为 'sun'？）", "未知的时区 'Asia/Shanghia'",
                       "缺少必填字段：'path' 或 'url'", "请检查这一行及上一行的缩进", "监控失效：没有任何分片上报结果"):
            assert any(phrase in t for t in texts), phrase
    else:
        assert any("monitoring failed: no shard reported results" in t for t in texts)
    found: dict[str, str] = {}  # offending line -> what is wrong in it
    if lang == "zh":
        for text in texts:
            for line, words in english_lines(text, names).items():
                found.setdefault(line, " ".join(sorted(words)))
    else:
        for text in texts:
            for line in cjk_words(text, names | _pool_names()):
                found.setdefault(line[:300], "CJK")
    assert not found, "\n".join(f"{v}  <=  {k}" for k, v in found.items())


def _pool_names() -> set[str]:
    """The interface and file names of POOL (the user's own, Chinese in both languages)."""
    names = set()
    for rel, text in POOL.items():
        names.update(Path(rel).parts)
        names.add(Path(rel).stem)
        names.update(re.findall(r"name: ([^,}\n]+)", text))
        names.update(re.findall(r'skip: "([^"]+)"', text))
    return {n.strip() for n in names}


@pytest.mark.parametrize("text, words", [
    ("[超时] 商城/订单 · 下单 · GET http://127.0.0.1:1/x → 2 秒内没有完整响应（总超时） 耗时 2000 ms", set()),
    ("reason: HTTP 500 Internal Server Error", {"reason", "Internal", "Server", "Error"}),
    ("原因：connection refused by 127.0.0.1:9", {"connection", "refused", "by"}),
    ("请求：GET http://a/b\n  User-Agent: python-requests/2\n响应：200，耗时 3 ms", set()),
    ("  响应体：{\"error\": \"Internal Server Error\"}", set()),
    ("熔断中（自 11:35 +08:00 起），next probe at 11:40 +08:00 · send_on: change", {"next", "probe", "at"}),
    ("**结果**：<font color=\"warning\">19 个失败</font>", set()),
])
def test_the_checker_finds_english_words(text: str, words: set[str]) -> None:
    """The checker itself: it must find what is English, and leave values alone."""
    assert english_words(text, {"商城"}) == words


def test_the_checker_sees_ours_not_pytests() -> None:
    lines = ["============================= test session starts ==============================",
             "pool/商城/订单.yaml FF.s [100%]", "FAILED pool/商城/订单.yaml::下单 - [server_error] 商城/订单",
             "SKIPPED [1] pool/商城/订单.yaml:3: circuit open since 11:35", "======= 2 failed, 1 passed in 0.5s ======",
             "=============================== pytest-apimon ================================", "总数 3"]
    text = ours(lines)
    assert "test session starts" not in text and "FAILED" not in text and "in 0.5s" not in text
    assert "[server_error]" in text and "circuit open since" in text and "pytest-apimon" in text
    assert textwrap.dedent(text)


# Problems of every kind a config or a document can have (issue 20): each must read in Chinese in zh.
CONFIG_PROBLEMS = [
    "maintenance: [{days: [sunn], start: '02:00', end: '03:00'}]",
    "maintenance: [{days: [sat], start: '25:00', end: '03:00'}]",
    "maintenance: [{days: [sat], start: 2, end: '03:00'}]",
    "maintenance: [{days: [], start: '02:00', end: '03:00'}]",
    "maintenance: [{days: 5, start: '02:00', end: '03:00'}]",
    "maintenance: [{days: [5], start: '02:00', end: '03:00'}]",
    "maintenance: [{days: [sat], start: '02:00', end: '02:00'}]",
    "maintenance: [{days: [sat], start: '02:00', duration: 9d}]",
    "maintenance: [{days: [sat], start: '02:00', duration: 8 days}]",
    "maintenance: [{start: '02:00', end: '03:00'}]",
    "maintenance: [{start: 'xx', end: '03:00'}]",
    "maintenance: [{start: '2026-12-05 22:00', end: '2026-12-05 21:00'}]",
    "maintenance: [{start: '2026-12-05 22:00'}]",
    "maintenance: 5",
    "report: {timezone: Asia/Shanghia}",
    "report: {timezone: '+15:00'}",
    "report: {language: fr}",
    "services: {a: {base_url: 42}}",
    "services: {a: {base_url: 'ftp://x'}}",
    "services: {a: {base_url: 'http://x?a=1'}}",
    "services: {a: {base_url: 'http://x', auth: {type: magic}}}",
    "services: {a: {base_url: 'http://x', auth: {password: x}}}",
    "services: {a: {base_url: 'http://x', auth: {type: static}}}",
    "services: {a: {base_url: 'http://x', auth: {type: basic}}}",
    "services: {a: {base_url: 'http://x', auth: {type: oauth2}}}",
    "services: {a: {base_url: 'http://x', auth: {type: login, url: 'http://x/l', token_path: 'a['}}}",
    "services: {a: {base_url: 'http://x', headers: {'X A': b}}}",
    "services: {a: {base_url: 'http://x', severity: P7}}",
    "services: {a: {base_url: {test: 'http://x'}}}",
    "services: {a: {base_url: 'http://x', trusted_origins: ['http://y/path']}}",
    "defaults: {timeout: -1}",
    "defaults: {retries: many}",
    "alerts: {storm: {fraction: 2}}",
    "breaker: {failures: 0}",
    "breaker: {cooldown: soon}",
    "notify: {wecom: [{name: a}]}",
    "notify: {wecom: [{name: a, webhook: 'http://x'}]}",
    "notify: {wecom: [{name: a, webhook: 'abc'}]}",
    "notify: {wecom: [{name: a, webhook: 'https://oapi.dingtalk.com/robot/send?access_token=x'}]}",
    "notify: {wecom: [{name: a, webhook: ''}]}",
    "notify: {send_on: sometimes}",
    "notify: {max_wait: forever}",
    "notify: {dingtalk: [{name: a, webhook: nope}]}",
    "notify: {dingtalk: [{name: a, webhook: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x'}]}",
    "notify: {feishu: [{name: a, webhook: nope, secret: 5}]}",
    "state: {lock_timeout: x}",
    "limits: {max_file_size: huge}",
    "logging: {level: LOUD}",
    "42",
]
DOCUMENT_PROBLEMS = [
    "- {name: a}\n- {name: b, url: 'http://x', path: /y}\n",
    "- {name: a, path: /x, method: FETCH}\n",
    "- {name: '', path: /x}\n- {name: 'a::b', path: /x}\n",
    "- {name: a, path: 'http://x/y'}\n- {name: b, path: '/a b'}\n",
    "- {name: a, url: 'ftp://x'}\n- {name: b, url: 'http://'}\n- {name: c, url: 'http://x:99999/'}\n",
    "- {name: a, path: /x, params: 5}\n- {name: b, path: /x, headers: {'X A': b}}\n",
    "- {name: a, path: /x, json: {a: 1}, form: {b: 2}}\n",
    "- {name: a, path: /x, expect: {status: 700}}\n- {name: b, path: /x, expect: {status: [abc]}}\n",
    "- {name: a, path: /x, expect: {body: [{equals: 0}]}}\n- {name: b, path: /x, expect: {body: 5}}\n",
    "- {name: a, path: /x, expect: {body: [{path: a, equals: 0, gt: 1}]}}\n",
    "- {name: a, path: /x, expect: {body: [{path: a, type: strng}]}}\n",
    "- {name: a, path: /x, expect: {body: [{path: a, in: []}]}}\n",
    "- {name: a, path: /x, expect: {body: [{path: a, length: -1}]}}\n",
    "- {name: a, path: /x, expect: {body: [{path: 'a[', equals: 1}]}}\n",
    "- {name: a, path: /x, expect: {max_ms: -5, warn_ms: 10}}\n",
    "- {name: a, path: /x, expect: {max_ms: 5, warn_ms: 10}}\n",
    "- {name: a, path: /x, expect: {headers: {A: {foo: 1}}}}\n",
    "- {name: a, path: /x, expect: {schema: 5}}\n",
    "- {name: a, path: /x, expect: 5}\n- {name: b, path: /x, tags: 5}\n- {name: c, path: /x, timeout: x}\n",
    "- {name: a, path: /x, auth: 5}\n- {name: b, path: /x, skip: 5}\n",
    "- {name: a, path: /x, severity: P9}\n- 5\n- {name: c, path: '${NOPE}'}\n",
    "- {name: b, path: /x, expect: {body: [{path: a, regex: '('}]}}\n",
    "defaults: {path: /x}\n",
    "interfaces: 5\n",
    "- {name: 5, path: /x}\n",
    "- name: a\n path: /x\n",
    "a: b\n- c\n",
    "- {name: a, path: /x}\n- {name: a, path: /y, name: b}\n",
    "- {name: a, path: /x, json: {n: " + "1" * 5000 + "}}\n",
    "- &a [*a]\n",
    "a: &a {b: *a}\n",
    "- {name: a, path: /x, json: " + "[" * 300 + "]" * 300 + "}\n",
    "openapi: 4.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n",
    "swagger: '1.2'\ninfo: {title: t, version: '1'}\npaths: {}\n",
    "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: 5\n",
    "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {/x: 5}\n",
    "openapi: 3.0.0\ninfo: {title: t, version: '1'}\ncomponents: {schemas: {Pet: {type: object}}}\n"
    "paths: {/x: {get: {responses: {'200': {content: {application/json: {schema: "
    "{$ref: '#/components/schemas/Pett'}}}}}}}}\n",
    "info: {schema: 'https://schema.getpostman.com/json/collection/v1.0.0/collection.json'}\nitem: []\n",
    "info: {schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json'}\nitem: 5\n",
    "- {name: a, path: /x, headers: {X: ' v'}}\n- {name: b, path: /x, headers: {X: \"caf\u00e9\u4e2d\"}}\n",
    "- {name: a, path: /x, expect: {headers: {'X Y': {exists: true}, x: true, X: true}}}\n",
    "- {name: a, method: X1, url: 5, params: 5, headers: 5, form: 5, timeout: x, tags: 5, skip: 5, auth: 5}\n",
]
# Field names and values of the corpus above (the user's own words).
CORPUS_NAMES = {"svc", "maintenance", "env", "defaults", "interfaces", "name", "path", "services", "auth", "a", "b",
                "item"}


def test_every_config_and_document_problem_reads_in_the_report_language(tmp_path: Path) -> None:
    from pytest_apimon.config import ConfigError, load_config
    from pytest_apimon.load import load_document
    from pytest_apimon.messages import localize_problem

    problems = []
    for text in CONFIG_PROBLEMS:
        path = tmp_path / "config.yaml"
        path.write_text(text + "\n", encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(path, environ={})
        problems.append(str(caught.value))
    pool = tmp_path / "pool"
    (pool / "svc").mkdir(parents=True)
    (pool / "svc" / "latin1.yaml").write_bytes("- {name: caf\u00e9, path: /x}\n".encode("latin-1"))
    (pool / "svc" / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    for name in ("latin1.yaml", "dangling.yaml"):
        problems += [str(e) for e in load_document(pool / "svc" / name, pool).errors]
    for i, text in enumerate(DOCUMENT_PROBLEMS):
        path = pool / "svc" / f"d{i}.yaml"
        path.write_text(text, encoding="utf-8")
        errors = load_document(path, pool).errors
        assert errors, text
        problems += [str(e) for e in errors]
    found = {}
    for problem in problems:
        chinese = localize_problem(problem, "zh")
        words = english_words(chinese, CORPUS_NAMES)
        if words:
            found[chinese] = words
        assert localize_problem(problem, "en") == problem
    assert not found, "\n".join(f"{sorted(v)}  <=  {k}" for k, v in found.items())
