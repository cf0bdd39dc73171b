"""Issue 12 requirement 8: secrets planted everywhere a user can put one never reach any output.

One workspace, run single-process and with `-n 2`, with failures, `-v`, `--log-level=DEBUG`,
`-o junit_logging=all`, a `--timeout` that fires on a hanging request and on a hanging login, every
output file, and WeCom going to the local fake. Then every literal is searched for in captured
stdout/stderr and in every file under the run's folder except the inputs (config.yaml and the pool).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer, Response, sleep_then
from test_plugin import write

# Every literal is distinct and would be found by a plain substring search.
S = {
    "login_password": "Pw1-loginWord-94kq",          # config auth json, via ${LOGIN_WORD} (innocent name)
    "config_api_key": "Cfg2-apiKey-55Lx",             # config header X-Api-Key, literal
    "config_cookie": "Ck3-cookieVal-81Mz",            # config header Cookie
    "tenant_key": "Tn4-tenantKey-02Pw",               # config header X-Tenant-Key via ${TENANT} (innocent)
    "static_token": "St5-staticTok-66Qa",             # static auth token via ${ALPHA} (innocent)
    "basic_password": "Bp6-basicPass-13Rb",           # basic auth password
    "client_secret": "Cs7-clientSec-40Sc",            # oauth2 client_secret
    "doc_signature": "Sg8-docSign-77Td",              # document header X-Signature via ${BETA} (innocent)
    "doc_query_sign": "Qs9-querySign-28Ue",           # document query param sign via ${GAMMA} (innocent)
    "doc_passphrase": "Pp10-passPhrase-61Vf",         # document json body, literal
    "doc_pin": "Pn11-formPin-39Wg",                   # document form body, literal
    "doc_userinfo": "Ui12-userInfo-85Xh",             # document url userinfo
    "base_userinfo": "Bu13-baseInfo-47Yi",            # base_url userinfo
    "echoed_password": "Ep14-echoedPw-10Zj",          # login that echoes its input in the error
    "doc_bearer": "Db15-docBearer-92Ak",              # document Authorization header, literal
    "invalid_method": "Im16-badMethod-53Bl",          # ${DELTA} substituted into an invalid method
    "undated_token": "Ut17-undatedTok-74Cm",          # a token learnt at run time (no stated lifetime)
    "hang_password": "Hp18-hangLogin-26Dn",           # password of a login that hangs (pytest-timeout)
    "wecom_key": KEY,                                  # the WeCom robot key
}
ENV = {"LOGIN_WORD": S["login_password"], "TENANT": S["tenant_key"], "ALPHA": S["static_token"],
       "BETA": S["doc_signature"], "GAMMA": S["doc_query_sign"], "DELTA": S["invalid_method"],
       "ROBOT": S["wecom_key"]}


def serve(home: LocalServer) -> None:
    def login(req):
        if req.json().get("password") == S["login_password"]:
            return {"data": {"token": S["undated_token"]}}  # no expires_in: unknown lifetime
        return Response(401, {}, {"msg": "no"})

    def echo_login(req):  # a login that echoes what it got, password included
        return Response(401, {}, {"msg": f"wrong pass {req.json().get('password')} for user"})

    def echo(req):  # echoes every request header, query and body back
        return Response(500, {}, {"headers": req.headers, "query": req.query, "body": req.text()})

    def oauth(req):
        return {"access_token": "oauth-token-value-1", "expires_in": 3600}

    home.route("POST", "/app/login", login)
    home.route("POST", "/echo/login", echo_login)
    home.route("POST", "/oauth/token", oauth)
    for method in ("GET", "POST"):
        for svc in ("app", "static", "basic", "oauth", "echo", "ui"):
            home.route(method, f"/{svc}/echo", echo)
            home.route(method, f"/{svc}/ok", lambda r: {"ok": True})
    home.raw("GET", "/app/hang", sleep_then(6))
    home.raw("POST", "/hang/login", sleep_then(6))


def workspace(base: Path, home: LocalServer, foreign: LocalServer, wecom: str) -> None:
    ui_base = home.url.replace("http://", f"http://ops:{S['base_userinfo']}@")
    write(base, "config.yaml", f"""
        defaults:
          retries: 0
          timeout: 4
        services:
          app:
            base_url: {home.url}/app
            headers: {{X-Api-Key: {S['config_api_key']}, Cookie: "sid={S['config_cookie']}",
                      X-Tenant-Key: "${{TENANT}}", X-Client: apimon}}
            auth:
              type: login
              path: /login
              json: {{username: demo, password: "${{LOGIN_WORD}}"}}
              token_path: data.token
          static:
            base_url: {home.url}/static
            auth: {{type: static, token: "${{ALPHA}}", header: X-Auth-Token, scheme: ""}}
          basic:
            base_url: {home.url}/basic
            auth: {{type: basic, username: demo, password: {S['basic_password']}}}
          oauth:
            base_url: {home.url}/oauth
            auth: {{type: oauth2, token_url: {home.url}/oauth/token, client_id: mon,
                    client_secret: {S['client_secret']}}}
          echo:
            base_url: {home.url}/echo
            auth: {{type: login, path: /login, json: {{username: demo, password: {S['echoed_password']}}}}}
          hang:
            base_url: {home.url}/hang
            auth: {{type: login, path: /login, json: {{username: demo, password: {S['hang_password']}}}}}
          ui:
            base_url: {ui_base}/ui
        logging:
          file: out/apimon.log
          level: DEBUG
        report:
          markdown: out/report.md
          json: out/report.json
          html: out/status.html
          prometheus: out/apimon.prom
        state:
          dir: out/state
        notify:
          send_on: always
          wecom:
            - name: ops
              webhook: "${{ROBOT}}"
              base_url: {wecom}
    """)
    write(base, "pool/app/api.json", json.dumps([
        {"name": "Show basic information", "path": "/ok"},
        {"name": "echo everything", "path": "/echo", "method": "POST",
         "headers": {"X-Signature": "${BETA}", "Authorization": f"Bearer {S['doc_bearer']}"},
         "params": {"sign": "${GAMMA}", "page": "1"}, "json": {"passphrase": S["doc_passphrase"]}},
        {"name": "form echo", "path": "/echo", "method": "POST", "form": {"pin": S["doc_pin"]}},
        {"name": "stolen", "url": f"{foreign.url}/stolen"},
        {"name": "userinfo", "url": f"http://eve:{S['doc_userinfo']}@127.0.0.1:{foreign.port}/fail"},
        {"name": "bad method", "path": "/ok", "method": "${DELTA}"},
        {"name": "hangs", "path": "/hang"},
    ]))
    for svc in ("static", "basic", "oauth", "ui"):
        write(base, f"pool/{svc}/api.json", json.dumps([{"name": "ok", "path": "/ok"},
                                                        {"name": "echo", "path": "/echo"}]))
    write(base, "pool/echo/api.json", json.dumps([{"name": "ok", "path": "/ok"}]))
    write(base, "pool/hang/api.json", json.dumps([{"name": "ok", "path": "/ok"}]))


def leaks(text: str) -> list[str]:
    return [name for name, value in S.items() if value in text]


@pytest.mark.parametrize("extra", [pytest.param([], id="inprocess"), pytest.param(["-n", "2"], id="xdist")])
def test_planted_secrets_never_reach_any_output(pytester, monkeypatch, extra) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with LocalServer() as home, LocalServer() as foreign, FakeWeCom() as fake:
        serve(home)
        foreign.route("GET", "/stolen", lambda r: Response(500, {}, {"headers": r.headers}))
        foreign.route("GET", "/fail", lambda r: Response(500, {}, {"headers": r.headers}))
        workspace(pytester.path, home, foreign, fake.base_url)
        result = pytester.runpytest(
            "--apimon", "pool", "-v", "-rA", "--log-level=DEBUG", "-o", "junit_logging=all",
            "--junitxml", "out/junit.xml", "--timeout", "2", "--apimon-report", "out/cli-report.md",
            "--apimon-json", "out/cli.json", *extra,
        )
        dry = pytester.runpytest("--apimon", "pool", "--apimon-dry-run", "-v", *extra)
        wecom = json.dumps([m.payload for m in fake.messages], ensure_ascii=False)
        received_abroad = "\n".join(f"{r.path} {r.query} {r.headers} {r.body!r}" for r in foreign.requests)

    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 6 and outcomes.get("passed", 0) >= 5, outcomes
    stdout = result.stdout.str()
    assert "Show basic information" in stdout  # ordinary text is not masked
    assert "未发送凭据" in stdout  # "credentials withheld", in zh (the default)
    assert "Timeout" in stdout  # the --timeout fired on the hanging request / login
    assert fake.messages, "the report reached the WeCom fake"
    assert foreign.requests, "the foreign host was called"

    channels = {
        "stdout": stdout, "stderr": result.stderr.str(),
        "dry-run": dry.stdout.str() + dry.stderr.str(), "wecom": wecom,
        # credentials must not travel abroad either (the document's own userinfo goes to its own URL)
        "foreign host": received_abroad.replace(_basic("eve", S["doc_userinfo"]), ""),
    }
    inputs = {pytester.path / "config.yaml"}
    files = [p for p in pytester.path.rglob("*") if p.is_file() and p not in inputs
             and "pool" not in p.relative_to(pytester.path).parts]
    assert any(p.name == "tokens.json" for p in files) and any(p.name == "junit.xml" for p in files)
    for path in files:
        channels[str(path.relative_to(pytester.path))] = path.read_bytes().decode("utf-8", "replace")
    found = {name: leaks(text) for name, text in channels.items() if leaks(text)}
    assert not found, f"planted secrets leaked: {found}"
    # Files at rest: the state folder is private and ignored by git; reports and the log are private.
    state = pytester.path / "out" / "state"
    assert oct(state.stat().st_mode & 0o777) == "0o700" and (state / ".gitignore").read_text() == "*\n"
    for name in ("state/tokens.json", "state/state.db", "apimon.log", "report.md", "report.json", "junit.xml"):
        assert oct((pytester.path / "out" / name).stat().st_mode & 0o777) == "0o600", name


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_auth_naming_an_unknown_or_authless_service_is_an_invalid_document(pytester) -> None:
    write(pytester.path, "config.yaml", """
        services:
          admin: {base_url: "http://127.0.0.1:9", auth: {type: static, token: abcdefgh}}
          plain: {base_url: "http://127.0.0.1:9"}
          user: {base_url: "http://127.0.0.1:9"}
    """)
    write(pytester.path, "pool/user/api.yaml", """
        - name: typo
          path: /a
          auth: adminn
        - name: authless
          path: /b
          auth: plain
    """)
    result = pytester.runpytest("--apimon", "pool", "-q")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "[接口文档错误]" in out
    assert "api.yaml:1：auth：'adminn' 不是配置中的服务（是否应为 'admin'？）（有认证的服务：admin）" in out
    assert "api.yaml:4：auth：服务 'plain' 没有配置认证（配置中的 services.plain.auth）" in out


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_a_report_changed_after_masking_is_masked_again(pytester, local_server, monkeypatch, xdist) -> None:
    """plugin.ReportMasker skips a report masked where it was made only while it is unchanged: a conftest's
    makereport wrapper (registered after the plugin, so it runs after the plugin's masking) that adds a JUnit
    property holding a secret is still masked before junitxml writes it."""
    from test_plugin import make_workspace, serve_shop

    secret = "Rp19-laterProp-31Eo"
    monkeypatch.setenv("PARTNER_TOKEN", secret)  # a secret-looking variable name: masked by value
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    pytester.makeconftest("""
        import os
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(item, call):
            report = yield
            report.user_properties.append(("note", "partner " + os.environ["PARTNER_TOKEN"]))
            return report
    """)
    result = pytester.runpytest("--apimon", "pool", "-k", "health", "--junitxml", "junit.xml", *xdist)
    assert result.ret == 0
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    assert 'name="note"' in junit  # the property is there...
    assert secret not in junit  # ...masked


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_a_report_changed_in_place_after_masking_is_masked_again(pytester, local_server, monkeypatch, xdist) -> None:
    """plugin._stamp compares what a report holds, not how many: a conftest's makereport wrapper (it runs after
    the plugin's masking) that replaces a captured-output section or a JUnit property with one of the same
    count, or adds a section to the failure representation in place, is still masked in the terminal and JUnit."""
    from test_plugin import make_workspace, serve_shop

    secret = "Rp20-inPlace-58Fu"
    monkeypatch.setenv("PARTNER_TOKEN", secret)  # a secret-looking variable name: masked by value
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    pytester.makeconftest("""
        import os
        import pytest

        def pytest_runtest_call(item):
            item.add_report_section("call", "stdout", "harmless")

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(item, call):
            report = yield
            note = "partner " + os.environ["PARTNER_TOKEN"]
            for i, (title, content) in enumerate(report.sections):
                report.sections[i] = (title, content + " " + note)  # same number of sections
            if report.user_properties:
                report.user_properties[-1] = ("key", note)  # same number of properties
            if hasattr(report.longrepr, "addsection"):
                report.longrepr.addsection("partner", note)  # the same failure representation object
            return report
    """)
    result = pytester.runpytest("--apimon", "pool", "-k", "health or boom", "--junitxml", "junit.xml",
                                "-o", "junit_logging=all", "-rA", *xdist)
    assert result.ret == 1  # boom fails: it has a failure representation
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    out = result.stdout.str() + result.stderr.str()
    assert "harmless" in junit and "harmless" in out and "partner" in out  # the edits are there...
    assert secret not in junit and secret not in out  # ...masked


def test_a_users_property_of_bytes_deep_lists_or_dict_keys_is_masked(pytester, local_server, monkeypatch) -> None:
    """redact.mask_in_place masks every text JUnit renders from a property value (junitxml writes str(value)):
    bytes (a response body a user's own check records), a dict's keys, and lists nested past the walk's depth."""
    from test_plugin import make_workspace, serve_shop

    secret = "Rp22-userProp-64Hw"
    monkeypatch.setenv("PARTNER_TOKEN", secret)  # a secret-looking variable name: masked by value
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    write(pytester.path, "pool/user/test_own.py", """
        import os

        def test_own(record_property):
            secret = os.environ["PARTNER_TOKEN"]
            deep = [secret]
            for _ in range(20):
                deep = [deep]
            record_property("body", ("token " + secret).encode())
            record_property("seen", {secret: 1})
            record_property("deep", deep)
    """)
    result = pytester.runpytest("--apimon", "pool", "-k", "health or own", "--junitxml", "junit.xml")
    assert result.ret == 0
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    for name in ("body", "seen", "deep"):
        assert f'name="{name}"' in junit  # the properties are there...
    assert secret not in junit  # ...masked


def test_what_a_worker_changes_after_masking_is_masked_before_it_is_sent(pytester, local_server, monkeypatch) -> None:
    """The xdist controller trusts a worker's reports (plugin._already_masked: `worker_id`), so the worker
    checks them again as it serializes them for the controller: a hook that runs on the worker after the
    plugin's masking (here a tryfirst logreport hook of a conftest loaded before the plugin registered its
    masker) and adds a JUnit property holding a secret is masked in the controller's JUnit file."""
    from test_plugin import make_workspace, serve_shop

    secret = "Wk25-workerEdit-47Pq"
    monkeypatch.setenv("PARTNER_TOKEN", secret)  # a secret-looking variable name: masked by value
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    pytester.makeconftest("""
        import os
        import pytest

        ON_WORKER = []

        def pytest_configure(config):
            ON_WORKER.append(hasattr(config, "workerinput"))

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_logreport(report):
            if ON_WORKER[0]:
                report.user_properties.append(("note", "partner " + os.environ["PARTNER_TOKEN"]))
    """)
    result = pytester.runpytest("--apimon", "pool", "-k", "health", "--junitxml", "junit.xml", "-n", "2")
    assert result.ret == 0
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    assert 'name="note"' in junit  # the property is there...
    assert secret not in junit  # ...masked
