"""Tokens through the whole plugin: one login per run (also under -n 4), reuse across runs, refresh on 401,
one root cause for a failed login, user fixtures, and secrets that never reach any output."""

from __future__ import annotations

import json
import threading

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer, Response, closed_port
from test_plugin import XDIST, write

SECRET_PASSWORD = "pw-Zq81-unique"


class LoginServer:
    """Issues tokens, counts logins, can revoke every token (server-side expiry)."""

    def __init__(self, srv: LocalServer, password: str = SECRET_PASSWORD) -> None:
        self.srv, self.password = srv, password
        self.valid: set[str] = set()
        self.n = 0
        self.lock = threading.Lock()
        srv.route("POST", "/svc/login", self.login)
        for i in range(12):
            srv.route("GET", f"/svc/data{i}", self.data)
        srv.route("GET", "/svc/echo", self.echo)

    def login(self, req):
        if req.json().get("password") != self.password:
            return Response(401, {}, {"msg": "bad credentials"})
        with self.lock:
            self.n += 1
            token = f"tok-{self.n}-Xy9secret"
            self.valid.add(token)
        return {"data": {"token": token, "expires_in": 3600}}

    def authorized(self, req) -> bool:
        return req.headers.get("authorization", "").removeprefix("Bearer ") in self.valid

    def data(self, req):
        return {"ok": True} if self.authorized(req) else Response(401, {}, {"msg": "expired"})

    def echo(self, req):
        # a response body that carries the caller's token and a password-looking field
        return {"token": req.headers.get("authorization", ""), "password": SECRET_PASSWORD, "ok": False}

    def revoke(self) -> None:
        self.valid.clear()


def workspace(pytester, srv: LocalServer, *, wecom_url: str | None = None, extra_docs: list | None = None) -> None:
    notify = ""
    if wecom_url:
        notify = f"""
        notify:
          send_on: always
          wecom:
            - name: ops
              webhook: {KEY}
              base_url: {wecom_url}
        """
    write(pytester.path, "config.yaml", f"""
        defaults:
          retries: 0
        services:
          svc:
            base_url: {srv.url}/svc
            auth:
              type: login
              path: /login
              json: {{username: demo, password: "${{SVC_PASSWORD}}"}}
              token_path: data.token
        logging:
          file: logs/apimon.log
        {notify}
    """)
    docs = [{"name": f"data{i}", "path": f"/data{i}"} for i in range(12)] + (extra_docs or [])
    write(pytester.path, "pool/svc/api.json", json.dumps(docs))


@pytest.fixture(autouse=True)
def _password(monkeypatch) -> None:
    monkeypatch.setenv("SVC_PASSWORD", SECRET_PASSWORD)


@pytest.mark.parametrize("extra", [pytest.param([], id="inprocess"), pytest.param(["-n", "4"], id="xdist4")])
def test_one_login_per_run_and_reuse_across_runs(pytester, local_server, extra) -> None:
    server = LoginServer(local_server)
    workspace(pytester, local_server)
    result = pytester.runpytest("--apimon", "pool", *extra)
    result.assert_outcomes(passed=12)
    assert server.n == 1
    result.stdout.fnmatch_lines(["*登录 1 次 · 令牌缓存命中率*"])
    # next run (a cron 15 minutes later): the cached token is still valid, no login at all
    pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=12)
    assert server.n == 1
    token_file = pytester.path / ".apimon" / "tokens.json"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"


def test_no_token_cache_logs_in_each_run(pytester, local_server) -> None:
    server = LoginServer(local_server)
    workspace(pytester, local_server)
    for _ in range(2):
        pytester.runpytest("--apimon", "pool", "--apimon-no-token-cache", "-n", "2").assert_outcomes(passed=12)
    assert server.n == 2  # one per run, shared by both workers


@pytest.mark.parametrize("extra", [pytest.param([], id="inprocess"), pytest.param(["-n", "4"], id="xdist4")])
def test_revoked_token_is_refreshed_once(pytester, local_server, extra) -> None:
    server = LoginServer(local_server)
    workspace(pytester, local_server)
    pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=12)
    server.revoke()  # server-side expiry between runs: the cached token now answers 401
    pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=12)
    assert server.n == 2  # one re-login for the whole run, also with four workers hitting 401 at once


@pytest.mark.parametrize("extra", XDIST)
def test_failed_login_reported_once_at_the_top(pytester, local_server, extra) -> None:
    server = LoginServer(local_server, password="something-else")
    workspace(pytester, local_server)
    result = pytester.runpytest("--apimon", "pool", "--apimon-report", "r.md", *extra)
    result.assert_outcomes(failed=12)
    result.stdout.fnmatch_lines(["*登录失败（svc）：登录 svc 失败：POST http://127.0.0.1:*/svc/login → HTTP 401 未认证*"
                                 ])
    assert server.n == 0
    assert local_server.count("/svc/login") == 1  # no login storm, not even across workers
    md = (pytester.path / "r.md").read_text(encoding="utf-8")
    assert "(12 个接口)" in md and md.count("登录 svc 失败") <= 3


@pytest.mark.parametrize("extra", XDIST)
def test_unreachable_login_is_the_service_down_not_auth(pytester, local_server, extra) -> None:
    """Root cause first: a service whose process is down fails its login with connection refused."""
    dead = closed_port()
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          svc:
            base_url: http://127.0.0.1:{dead}/svc
            auth: {{type: login, path: /login, json: {{username: u, password: p}}, token_path: token}}
    """)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"data{i}", "path": f"/data{i}"}
                                                          for i in range(3)]))
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "r.json", "--apimon-report", "r.md", *extra)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*svc：服务不可达：登录接口连接被拒绝（POST http://127.0.0.1:*/svc/login → *"])
    assert "认证失败" not in result.stdout.str()
    # the cause is shown once, with its count: not once bare and again counted (issue 20)
    summary = result.stdout.str().split("pytest-apimon")[-1]
    md = (pytester.path / "r.md").read_text(encoding="utf-8")
    for text in (summary, md):
        causes = [ln for ln in text.splitlines() if "svc：服务不可达" in ln]
        assert len(causes) == 1 and "(3 个接口)" in causes[0], causes
    data = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert {r["category"] for r in data["results"]} == {"network"}


def test_user_checks_use_the_fixtures(pytester, local_server) -> None:
    server = LoginServer(local_server)
    workspace(pytester, local_server)
    write(pytester.path, "pool/svc/test_own.py", """
        def test_session(apimon_session):
            resp = apimon_session("svc").get("/data1")
            assert resp.status_code == 200 and resp.json() == {"ok": True}

        def test_token(apimon_token):
            assert apimon_token("svc").startswith("tok-")
    """)
    pytester.runpytest("--apimon", "pool").assert_outcomes(passed=14)
    assert server.n == 1  # the fixtures share the run's token


def test_secrets_never_reach_any_output(pytester, local_server, monkeypatch) -> None:
    LoginServer(local_server)
    header_secret = "hdr-Kk42-unique"
    monkeypatch.setenv("API_KEY", header_secret)
    monkeypatch.setenv("PARTNER_TOKEN", "ptn-Qq77-unique")
    with FakeWeCom() as fake:
        workspace(pytester, local_server, wecom_url=fake.base_url, extra_docs=[
            {"name": "echo", "path": "/echo", "headers": {"X-Api-Key": "${API_KEY}"},
             "expect": {"body": [{"path": "ok", "equals": True}]}},
            {"name": "post", "path": "/missing", "method": "POST", "json": {"password": SECRET_PASSWORD}},
            # a secret sent under a harmless-looking header name: masked because $PARTNER_TOKEN looks secret
            {"name": "partner", "path": "/missing", "headers": {"X-Partner": "${PARTNER_TOKEN}"}},
        ])
        result = pytester.runpytest(
            "--apimon", "pool", "-rA", "-v", "--apimon-report", "out/r.md", "--apimon-json", "out/r.json",
            "--junitxml", "out/j.xml", "-o", "junit_logging=all", "--log-cli-level=DEBUG",
        )
        result.assert_outcomes(passed=12, failed=3)
        dry = pytester.runpytest("--apimon", "pool", "--apimon-dry-run")
        outputs = {
            "terminal": result.stdout.str() + result.stderr.str() + dry.stdout.str(),
            "markdown": (pytester.path / "out/r.md").read_text("utf-8"),
            "json": (pytester.path / "out/r.json").read_text("utf-8"),
            "junit": (pytester.path / "out/j.xml").read_text("utf-8"),
            "log": (pytester.path / "logs/apimon.log").read_text("utf-8"),
            "wecom": json.dumps([m.content for m in fake.messages], ensure_ascii=False),
        }
    assert fake.messages, "the report was posted"
    assert "echo" in outputs["markdown"]
    for name, text in outputs.items():
        for secret in (SECRET_PASSWORD, header_secret, "Xy9secret", "ptn-Qq77-unique"):
            assert secret not in text, f"{secret!r} leaked into {name}"
