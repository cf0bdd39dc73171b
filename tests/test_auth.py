"""TokenManager against a real local login server: one login, refresh, 401, failures, sharing via the cache."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from localserver import LocalServer, Req, Response, closed_port

from pytest_apimon.auth import MAX_RELOGINS_PER_RUN, LoginFailed, TokenManager, jwt_expiry, login_category
from pytest_apimon.categories import Category
from pytest_apimon.config import (
    AuthConfig,
    BasicAuth,
    Config,
    LoginAuth,
    OAuth2Auth,
    ServiceConfig,
    StaticAuth,
    load_config,
)
from pytest_apimon.documents import Interface
from pytest_apimon.engine import Engine
from pytest_apimon.probe import Request, new_session
from pytest_apimon.redact import Redactor
from pytest_apimon.tokencache import TokenCache

USER, PASSWORD = "demo", "demo-pass"
CLIENT_ID, CLIENT_SECRET = "apimon", "cs-very-secret"


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT (alg none): enough to test reading `exp`."""
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass
class LoginServer:
    """Counts logins, issues tokens, checks them, and can expire them all (like a real auth server)."""

    srv: LocalServer
    expires_in: Any = 3600
    delay: float = 0.0  # slow logins widen the window for races
    body: Any = None  # override the login response body (token missing, JWT, ...)
    logins: int = 0
    valid: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.srv.route("POST", "/login", self._login)
        self.srv.route("POST", "/oauth/token", self._oauth)
        self.srv.route("GET", "/api", self._api)
        self.srv.route("GET", "/basic", self._basic)

    @property
    def url(self) -> str:
        return self.srv.url

    def _issue(self) -> str:
        with self.lock:
            self.logins += 1
            token = f"tok-{self.logins}-{os.urandom(4).hex()}"
            self.valid.add(token)
        return token

    def expire_all(self) -> None:
        with self.lock:
            self.valid.clear()

    def _login(self, r: Req) -> Any:
        time.sleep(self.delay)
        body = r.json()
        if (body.get("username"), body.get("password")) != (USER, PASSWORD):
            with self.lock:
                self.logins += 1
            return Response(401, {}, {"code": 40101, "msg": "bad credentials"})
        token = self._issue()
        if self.body is not None:
            return self.body(token) if callable(self.body) else self.body
        return {"code": 0, "data": {"token": token, "expires_in": self.expires_in}}

    def _oauth(self, r: Req) -> Any:
        form = {k: v[0] for k, v in r.form().items()}
        if "authorization" in r.headers:
            cid, _, secret = base64.b64decode(r.headers["authorization"].split()[1]).decode().partition(":")
        else:
            cid, secret = form.get("client_id"), form.get("client_secret")
        if form.get("grant_type") != "client_credentials" or (cid, secret) != (CLIENT_ID, CLIENT_SECRET):
            with self.lock:
                self.logins += 1
            return Response(401, {}, {"error": "invalid_client"})
        return {"access_token": self._issue(), "token_type": "Bearer", "expires_in": self.expires_in,
                "scope": form.get("scope")}

    def _api(self, r: Req) -> Any:
        _scheme, _, token = r.headers.get("authorization", "").partition(" ")
        token = token or r.query.get("access_token", [""])[0]
        with self.lock:
            ok = token in self.valid
        return {"ok": True} if ok else Response(401, {}, {"msg": "token expired"})

    def _basic(self, r: Req) -> Any:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return {"ok": True} if r.headers.get("authorization") == expected else Response(401, {}, "no")


@pytest.fixture
def server() -> Iterator[LoginServer]:
    with LocalServer() as srv:
        yield LoginServer(srv)


def login_auth(**kw: Any) -> LoginAuth:
    return LoginAuth(**{"path": "/login", "json": {"username": USER, "password": PASSWORD},
                        "token_path": "data.token", **kw})


def config(url: str, auth: AuthConfig | None = None) -> Config:
    return Config(path=None, env="default",
                  services={"nurse": ServiceConfig(name="nurse", base_url=url, timeout=30.0,
                                                   auth=auth or login_auth())})


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def manager(cfg: Config, cache_dir: Path | None = None, run_id: str | None = None, clock: Any = time.time,
            redactor: Redactor | None = None) -> TokenManager:
    session = new_session()
    cache = TokenCache(cache_dir) if cache_dir is not None else None
    return TokenManager(cfg, lambda _s: session, redactor or Redactor(), cache=cache, run_id=run_id, clock=clock)


def request(url: str) -> Request:
    return Request(method="GET", url=url, timeout=30.0)


# ---------------------------------------------------------------- one login, sending


def test_one_login_then_reused_and_sent_as_bearer(server: LoginServer) -> None:
    redactor = Redactor()
    tm = manager(config(server.url), redactor=redactor)
    req = request(server.url + "/api")
    tok = tm.apply("nurse", req)
    assert tm.token("nurse") is tok and server.logins == 1
    assert req.headers == {"Authorization": f"Bearer {tok.value}"}
    assert tok.expires_at is not None and abs(tok.expires_at - tok.obtained_at - 3600) < 1
    assert tm.stats() == {"logins": 1, "login_failures": 0, "cache_hits": 1, "cache_misses": 1, "file_hits": 0,
                          "relogins": 0}
    assert tok.value not in redactor.text(f"token={tok.value} and {tok.value}")


def test_token_header_and_query_param(server: LoginServer) -> None:
    server.body = lambda token: Response(200, {"X-Token": token}, {"code": 0})
    tm = manager(config(server.url, login_auth(token_path="token", token_header="x-token",
                                               query_param="access_token")))
    req = request(server.url + "/api")
    tok = tm.apply("nurse", req)
    assert req.params == {"access_token": tok.value} and "Authorization" not in req.headers
    assert tok.expires_at is None  # a header carries no lifetime


# ---------------------------------------------------------------- expiry and refresh


def test_refresh_before_expiry(server: LoginServer) -> None:
    clock = Clock()
    tm = manager(config(server.url, login_auth(refresh_before=300)), clock=clock)
    first = tm.token("nurse")
    clock.now += 3600 - 301  # 301 s left: still fresh
    assert tm.token("nurse") is first and server.logins == 1
    clock.now += 2  # 299 s left: below refresh_before, refreshed before use
    second = tm.token("nurse")
    assert second.value != first.value and server.logins == 2


def test_expired_token_is_replaced(server: LoginServer) -> None:
    clock = Clock()
    tm = manager(config(server.url, login_auth(refresh_before=0)), clock=clock)
    first = tm.token("nurse")
    clock.now += 3601
    assert tm.token("nurse").value != first.value and server.logins == 2


def test_short_lived_token_uses_half_its_lifetime_as_margin(server: LoginServer) -> None:
    server.expires_in = 60  # shorter than the default refresh_before of 300 s
    clock = Clock()
    tm = manager(config(server.url), clock=clock)
    first = tm.token("nurse")
    clock.now += 29
    assert tm.token("nurse") is first and server.logins == 1
    clock.now += 2
    assert tm.token("nurse") is not first and server.logins == 2


def test_lifetime_sources(server: LoginServer) -> None:
    exp = int(time.time()) + 7200
    server.body = lambda token: {"data": {"token": make_jwt({"sub": "x", "exp": exp}), "ttl": "120"}}
    jwt_tok = manager(config(server.url, login_auth(expiry="jwt"))).token("nurse")
    assert jwt_tok.expires_at == exp and jwt_expiry(jwt_tok.value) == exp
    auto = manager(config(server.url)).token("nurse")  # no expires_in next to it: the JWT's exp is used
    assert auto.expires_at == exp
    by_path = manager(config(server.url, login_auth(expires_in_path="data.ttl"))).token("nurse")
    assert by_path.expires_at is not None and abs(by_path.expires_at - by_path.obtained_at - 120) < 1
    by_ttl = manager(config(server.url, login_auth(ttl=900.0))).token("nurse")
    assert by_ttl.expires_at is not None and abs(by_ttl.expires_at - by_ttl.obtained_at - 900) < 1


def test_jwt_expiry_required_but_missing(server: LoginServer) -> None:
    with pytest.raises(LoginFailed, match=r"not a JWT with an 'exp' claim \(expiry: jwt\)"):
        manager(config(server.url, login_auth(expiry="jwt"))).token("nurse")
    assert jwt_expiry(make_jwt({"sub": "no-exp"})) is None and jwt_expiry("a.b") is None


# ---------------------------------------------------------------- 401


def test_401_invalidate_gives_one_fresh_login(server: LoginServer) -> None:
    tm = manager(config(server.url))
    stale = tm.token("nurse")
    server.expire_all()
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(tm.invalidate("nurse", stale))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8
    fresh = tm.token("nurse")
    assert fresh.value != stale.value and server.logins == 2  # eight 401s, one re-login
    assert tm.stats()["relogins"] == 1


def test_401_relogins_are_capped(server: LoginServer) -> None:
    tm = manager(config(server.url))
    for _ in range(MAX_RELOGINS_PER_RUN):
        assert tm.invalidate("nurse", tm.token("nurse"))
    assert not tm.invalidate("nurse", tm.token("nurse"))  # an interface that always 401s: no login storm
    assert server.logins == MAX_RELOGINS_PER_RUN + 1


def test_engine_retries_once_after_401(server: LoginServer) -> None:
    engine = Engine(config(server.url))
    itf = Interface(name="api", service="nurse", module="m", method="GET", path="/api")
    assert engine.check(itf).outcome != "failed"
    server.expire_all()  # server-side expiry mid-run
    result = engine.check(itf)
    assert result.outcome != "failed" and server.logins == 2
    engine.close()


def test_static_and_basic_never_refresh_on_401(server: LoginServer) -> None:
    tm = manager(config(server.url, StaticAuth(token="st-token-1")))
    assert not tm.invalidate("nurse", tm.token("nurse"))


# ---------------------------------------------------------------- login failures


def test_bad_credentials_fail_once(server: LoginServer) -> None:
    tm = manager(config(server.url, login_auth(json={"username": USER, "password": "wrong"})))
    with pytest.raises(LoginFailed) as info:
        tm.token("nurse")
    assert str(info.value) == f"login to nurse failed: POST {server.url}/login → 401 (bad credentials)"
    for _ in range(5):
        with pytest.raises(LoginFailed, match="login to nurse failed"):
            tm.token("nurse")
    assert server.logins == 1  # no login storm
    assert tm.stats()["login_failures"] == 1 and tm.stats()["logins"] == 1


def test_login_endpoint_down(server: LoginServer) -> None:
    port = closed_port()
    tm = manager(config(f"http://127.0.0.1:{port}"))
    # Root cause first (issue 20): the service is down, not the credentials wrong.
    with pytest.raises(LoginFailed, match=rf"^service unreachable: the login endpoint refused the connection "
                                          rf"\(POST http://127.0.0.1:{port}/login → ") as err:
        tm.token("nurse")
    assert err.value.category is Category.NETWORK
    with pytest.raises(LoginFailed) as again:
        tm.token("nurse")
    assert again.value.category is Category.NETWORK  # the remembered failure keeps its root cause
    assert tm.stats()["logins"] == 1


@pytest.mark.parametrize("message, category", [
    ("service unreachable: the login endpoint refused the connection (POST http://a/login → x)", "network"),
    ("service unreachable: the login endpoint has no DNS record (POST http://a/login → x)", "network"),
    ("service unreachable: the login endpoint failed the TLS handshake (POST http://a/login → x)", "network"),
    ("service unreachable: the login endpoint did not answer in time (POST http://a/login → x)", "timeout"),
    ("service unreachable: the login endpoint did not accept a connection in time (POST …)", "timeout"),
    ("service error: the login endpoint answered HTTP 503 (POST http://a/login)", "unavailable"),
    ("service error: the login endpoint answered HTTP 500 (POST http://a/login (in time))", "server_error"),
    ("login to nurse failed: POST http://a/login → 401 (bad password)", "auth"),
    ("login to nurse failed: POST http://a/login → 403", "auth"),
    ("login to nurse failed: POST http://a/login → 200, but no token at 'data.token' in the response", "auth"),
])
def test_login_category(message: str, category: str) -> None:
    assert login_category(message).value == category


def test_login_5xx_is_a_server_error_not_auth(server: LoginServer) -> None:
    server.srv.route("POST", "/login", lambda req: (503, {}, b"busy"))
    with pytest.raises(LoginFailed) as err:
        manager(config(server.srv.url)).token("nurse")
    assert err.value.category is Category.UNAVAILABLE and "HTTP 503" in str(err.value)


def test_token_missing_at_path(server: LoginServer) -> None:
    server.body = {"code": 0, "data": {"access": "x"}}
    with pytest.raises(LoginFailed, match=r"→ 200, but no token at 'data.token' in the response"):
        manager(config(server.url)).token("nurse")


def test_failed_refresh_keeps_using_unexpired_token(server: LoginServer) -> None:
    clock = Clock()
    tm = manager(config(server.url), clock=clock)
    first = tm.token("nurse")
    server.srv.route("POST", "/login", lambda r: Response(503, {}, "maintenance"))  # login goes down
    clock.now += 3600 - 100  # inside the refresh window, not yet expired
    assert tm.token("nurse") is first
    clock.now += 200  # now really expired: the remembered failure is the answer
    with pytest.raises(LoginFailed):
        tm.token("nurse")
    assert tm.stats()["logins"] == 2


# ---------------------------------------------------------------- other kinds


@pytest.mark.parametrize("client_auth", ["body", "basic"])
def test_oauth2_client_credentials(server: LoginServer, client_auth: str) -> None:
    auth = OAuth2Auth(token_url=server.url + "/oauth/token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                      scope="read write", client_auth=client_auth)
    tm = manager(config(server.url, auth))
    req = request(server.url + "/api")
    tok = tm.apply("nurse", req)
    assert req.headers["Authorization"] == f"Bearer {tok.value}" and tok.expires_at is not None
    assert server.srv.last("/oauth/token").form()["scope"] == ["read write"]
    tm.token("nurse")
    assert server.logins == 1


def test_oauth2_bad_secret(server: LoginServer) -> None:
    auth = OAuth2Auth(token_url=server.url + "/oauth/token", client_id=CLIENT_ID, client_secret="nope")
    with pytest.raises(LoginFailed, match=r"login to nurse failed: POST .*/oauth/token → 401 \(invalid_client\)"):
        manager(config(server.url, auth)).token("nurse")


def test_basic_auth_no_login(server: LoginServer) -> None:
    from pytest_apimon.probe import send

    tm = manager(config(server.url, BasicAuth(username=USER, password=PASSWORD)))
    req = request(server.url + "/basic")
    tm.apply("nurse", req)
    assert send(new_session(), req).status == 200
    assert server.logins == 0 and tm.stats()["logins"] == 0


def test_static_token_from_env(server: LoginServer, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        f"services:\n  nurse:\n    base_url: {server.url}\n    auth:\n      type: static\n"
        "      token: ${NURSE_TOKEN}\n      query_param: access_token\n")
    cfg = load_config(tmp_path / "config.yaml", environ={"NURSE_TOKEN": "env-static-token"})
    redactor = Redactor()
    req = request(server.url + "/api")
    manager(cfg, redactor=redactor).apply("nurse", req)
    assert req.params == {"access_token": "env-static-token"}
    assert "env-static-token" not in redactor.text("got env-static-token")


# ---------------------------------------------------------------- sharing through the cache


def test_cache_reused_by_next_run(server: LoginServer, tmp_path: Path) -> None:
    first = manager(config(server.url), tmp_path, run_id="run-1").token("nurse")
    second_run = manager(config(server.url), tmp_path, run_id="run-2")
    assert second_run.token("nurse").value == first.value and server.logins == 1
    assert second_run.stats()["file_hits"] == 1
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600
    stored = (tmp_path / "tokens.json").read_text()
    assert first.value in stored and PASSWORD not in stored


def test_changed_credentials_do_not_reuse(server: LoginServer, tmp_path: Path) -> None:
    manager(config(server.url), tmp_path).token("nurse")
    other = login_auth(json={"username": USER, "password": PASSWORD, "tenant": "b"})
    manager(config(server.url, other), tmp_path).token("nurse")
    assert server.logins == 2


def test_unknown_lifetime_shared_in_run_but_not_across_runs(server: LoginServer, tmp_path: Path) -> None:
    server.expires_in = None  # the server does not say how long the token lives
    first = manager(config(server.url), tmp_path, run_id="run-1").token("nurse")
    assert first.expires_at is None
    assert manager(config(server.url), tmp_path, run_id="run-1").token("nurse").value == first.value
    assert server.logins == 1  # another worker of the same run
    manager(config(server.url), tmp_path, run_id="run-2").token("nurse")
    assert server.logins == 2  # the next run does not trust it
    manager(config(server.url, login_auth(ttl=3600.0)), tmp_path, run_id="run-3").token("nurse")
    manager(config(server.url, login_auth(ttl=3600.0)), tmp_path, run_id="run-4").token("nurse")
    assert server.logins == 3  # with a configured ttl it is reused across runs


def test_401_with_cached_token_refreshes_the_file(server: LoginServer, tmp_path: Path) -> None:
    manager(config(server.url), tmp_path, run_id="run-1").token("nurse")
    server.expire_all()
    workers = [manager(config(server.url), tmp_path, run_id="run-2") for _ in range(3)]
    stale = [w.token("nurse") for w in workers]
    for w, tok in zip(workers, stale, strict=True):
        assert w.invalidate("nurse", tok)
    fresh = {w.token("nurse").value for w in workers}
    assert len(fresh) == 1 and server.logins == 2  # one re-login shared by all three


def test_failure_shared_within_run_retried_by_next(server: LoginServer, tmp_path: Path) -> None:
    bad = config(server.url, login_auth(json={"username": USER, "password": "wrong"}))
    with pytest.raises(LoginFailed):
        manager(bad, tmp_path, run_id="run-1").token("nurse")
    with pytest.raises(LoginFailed, match="→ 401"):
        manager(bad, tmp_path, run_id="run-1").token("nurse")  # another worker: no second attempt
    assert server.logins == 1
    with pytest.raises(LoginFailed):
        manager(bad, tmp_path, run_id="run-2").token("nurse")  # next run tries again
    assert server.logins == 2


def test_many_threads_one_login(server: LoginServer, tmp_path: Path) -> None:
    server.delay = 0.2
    tm = manager(config(server.url), tmp_path)
    values: list[str] = []
    threads = [threading.Thread(target=lambda: values.append(tm.token("nurse").value)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(values) == 16 and len(set(values)) == 1 and server.logins == 1
    assert tm.stats()["cache_hits"] == 15 and tm.stats()["cache_misses"] == 1


def _process_token(url: str, cache_dir: str, run_id: str, out: Any) -> None:
    tm = manager(config(url), Path(cache_dir), run_id=run_id)
    out.put((tm.token("nurse").value, tm.stats()["logins"]))


@pytest.mark.skipif(sys.platform == "win32", reason="spawn start-up is slow there")
def test_four_processes_one_login(server: LoginServer, tmp_path: Path) -> None:
    server.delay = 0.3  # all four ask while the first login is still running
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_process_token, args=(server.url, str(tmp_path), "run-x", out)) for _ in range(4)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len({value for value, _ in got}) == 1
    assert sum(logins for _, logins in got) == 1 and server.logins == 1


# ---------------------------------------------------------------- plain requests sessions (user fixtures)


@pytest.mark.parametrize("query", [False, True])
def test_session_auth_applies_and_retries_once_on_401(server: LoginServer, query: bool) -> None:
    import requests

    from pytest_apimon.auth import SessionAuth

    tm = manager(config(server.url, login_auth(query_param="access_token" if query else None)))
    with requests.Session() as session:
        session.auth = SessionAuth(tm, "nurse")
        assert session.get(server.url + "/api", params={"page": "1"}, timeout=30).status_code == 200
        server.expire_all()
        resp = session.get(server.url + "/api", params={"page": "1"}, timeout=30)
        assert resp.status_code == 200 and [r.status_code for r in resp.history] == [401]
        assert server.logins == 2
        if query:
            assert resp.url.count("access_token=") == 1 and "page=1" in resp.url


def test_infinite_lifetime_is_not_a_lifetime() -> None:
    from pytest_apimon.auth import _seconds

    assert _seconds(float("inf")) is None and _seconds("3600") == 3600.0 and _seconds(True) is None


# ---------------------------------------------------------------- issue 12: login hygiene


def test_token_shorter_than_the_margin_is_reused_for_a_floor_period(server: LoginServer) -> None:
    from pytest_apimon.auth import MIN_TOKEN_REUSE_S

    server.expires_in = 1
    clock = Clock()
    tm = manager(config(server.url), clock=clock)
    for _ in range(180):  # 180 interfaces within the floor period: one login, not 180
        tm.token("nurse")
    assert server.logins == 1
    assert len(tm.warnings) == 1 and "lives 1 s" in tm.warnings[0]
    clock.now += MIN_TOKEN_REUSE_S + 1
    tm.token("nurse")
    assert server.logins == 2 and len(tm.warnings) == 1  # warned once per service


def test_login_failure_names_the_service_whose_login_failed(server: LoginServer) -> None:
    from pytest_apimon.engine import Engine

    bad = login_auth(json={"username": USER, "password": "wrong"})
    cfg = Config(path=None, env="default", services={
        "admin": ServiceConfig(name="admin", base_url=server.url, timeout=5.0, auth=bad),
        "user": ServiceConfig(name="user", base_url=server.url, timeout=5.0)})
    res = Engine(cfg).check(Interface(name="api", service="user", module="m", method="GET", path="/api",
                                      auth="admin"))
    assert res.category == "auth" and res.login_service == "admin"
    from pytest_apimon.alerts import build_extras
    from pytest_apimon.results import RunResult

    extras = build_extras(RunResult(0.0, 1.0, "default", [res]), None, None, "en")
    # one root-cause line per service whose login failed (report lead, first screen's counted group)
    assert extras.service_lead["admin"].startswith("Login failed (admin):")
