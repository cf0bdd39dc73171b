"""Issue 12: a credential goes only to its service's origins. One test per rule, each against two local
servers: `home` serves the service, `foreign` records every header, query and body it receives."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from localserver import LocalServer, Response

from pytest_apimon.config import load_config
from pytest_apimon.documents import Interface
from pytest_apimon.engine import Engine, service_session
from pytest_apimon.origins import origin_of, split_userinfo

TOKEN_PREFIX = "tok-Origin-"
API_KEY = "k-Api-7731-secret"
PASSWORD = "pw-Login-4417"
TENANT_KEY = "tenant-Key-8823"
STATIC = "static-Tok-5521"


@pytest.fixture
def home() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        srv.route("POST", "/login", lambda r: {"token": TOKEN_PREFIX + "1", "expires_in": 3600})
        srv.route("GET", "/ok", lambda r: {"ok": True})
        yield srv


@pytest.fixture
def foreign() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        srv.route("GET", "/stolen", lambda r: {"ok": True})
        srv.route("GET", "/fail", lambda r: Response(500, {}, {"x": 1}))
        srv.route("POST", "/login", lambda r: {"token": "foreign"})
        yield srv


def received(srv: LocalServer) -> str:
    """Everything the server saw, as one string."""
    return "\n".join(f"{r.method} {r.path} {r.query} {r.headers} {r.body!r}" for r in srv.requests)


def assert_nothing_secret(srv: LocalServer) -> None:
    seen = received(srv)
    assert srv.requests, "the foreign server was never called: the test proves nothing"
    for secret in (TOKEN_PREFIX, API_KEY, PASSWORD, TENANT_KEY, STATIC, "authorization", "cookie",
                   base64.b64encode(b"demo:" + PASSWORD.encode()).decode()):
        assert secret not in seen, secret


def engine(tmp_path: Path, text: str) -> Engine:
    (tmp_path / "config.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return Engine(load_config(tmp_path / "config.yaml", environ={}))


def login_config(home: LocalServer, extra: str = "", auth: str = "") -> str:
    auth = auth or f"""
        auth:
          type: login
          path: /login
          json: {{username: demo, password: {PASSWORD}}}
          header: X-Auth-Token
          scheme: ""
    """
    return f"""
    services:
      user:
        base_url: {home.url}
        headers: {{X-Api-Key: {API_KEY}, Cookie: "sid={TENANT_KEY}", X-Client: apimon}}
{textwrap.indent(textwrap.dedent(auth), "        ")}
{textwrap.indent(textwrap.dedent(extra), "        ")}
    """


def test_interface_url_on_another_host_gets_no_credentials(tmp_path, home, foreign) -> None:
    eng = engine(tmp_path, login_config(home))
    ok = eng.check(Interface(name="ok", service="user", module="m", method="GET", path="/ok"))
    assert ok.outcome == "passed"
    assert home.last("/ok").headers["x-auth-token"] == TOKEN_PREFIX + "1"  # the service's own origin: sent
    stolen = eng.check(Interface(name="x", service="user", module="m", method="GET", url=foreign.url + "/stolen"))
    assert stolen.outcome == "passed"
    assert_nothing_secret(foreign)
    assert foreign.last("/stolen").headers["x-client"] == "apimon"  # ordinary headers still go


def test_withheld_credentials_are_named_in_the_failure(tmp_path, home, foreign) -> None:
    eng = engine(tmp_path, login_config(home))
    res = eng.check(Interface(name="x", service="user", module="m", method="GET", url=foreign.url + "/fail"))
    assert res.outcome == "failed"
    host = f"127.0.0.1:{foreign.port}"
    assert f"credentials withheld: host {host} is not an origin of service user" in res.reason
    assert_nothing_secret(foreign)


def test_trusted_origins_receive_credentials(tmp_path, home, foreign) -> None:
    eng = engine(tmp_path, login_config(home, extra=f"trusted_origins: [{foreign.url}]"))
    eng.check(Interface(name="x", service="user", module="m", method="GET", url=foreign.url + "/stolen"))
    got = foreign.last("/stolen").headers
    assert got["x-auth-token"] == TOKEN_PREFIX + "1" and got["x-api-key"] == API_KEY


def test_other_services_auth_follows_that_services_origins(tmp_path, home, foreign) -> None:
    text = f"""
    services:
      admin:
        base_url: {home.url}
        auth: {{type: static, token: {STATIC}}}
      user:
        base_url: {foreign.url}
    """
    eng = engine(tmp_path, text)
    # user's own origin is the foreign server, but the token is admin's: it stays with admin's origins.
    eng.check(Interface(name="x", service="user", module="m", method="GET", path="/stolen", auth="admin"))
    assert_nothing_secret(foreign)
    eng.check(Interface(name="y", service="user", module="m", method="GET", url=home.url + "/ok", auth="admin"))
    assert home.last("/ok").headers["authorization"] == f"Bearer {STATIC}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_to_another_origin_drops_every_credential(tmp_path, home, foreign, status) -> None:
    home.route("GET", "/jump", lambda r: Response(status, {"Location": foreign.url + "/stolen?access_token="
                                                            + TOKEN_PREFIX + "1&page=2"}, b""))
    text = login_config(home, auth=f"""
        auth:
          type: login
          path: /login
          json: {{username: demo, password: {PASSWORD}}}
          header: X-Auth-Token
          scheme: ""
    """)
    eng = engine(tmp_path, text)
    res = eng.check(Interface(name="j", service="user", module="m", method="GET", path="/jump"))
    assert res.status == 200
    assert home.last("/jump").headers["x-auth-token"] == TOKEN_PREFIX + "1"
    assert_nothing_secret(foreign)
    assert foreign.last("/stolen").query.get("page") == ["2"]



@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("body", [{"json": {"username": "demo", "password": PASSWORD}},
                                  {"form": {"client_secret": STATIC}}], ids=["json-password", "form-secret"])
def test_a_307_308_to_another_origin_never_resends_a_body_with_a_credential(tmp_path, home, foreign, status,
                                                                           body) -> None:
    """Red team: a 307/308 redirect resends the request body (RFC 9110 15.4.8), and a document's password or
    client secret in it reached another origin while its headers were dropped. The redirect is refused and
    said so; a body without a credential still follows it."""
    home.route("POST", "/jump", lambda r: Response(status, {"Location": foreign.url + "/landing"}, b""))
    foreign.route("POST", "/landing", lambda r: {"ok": True})
    eng = engine(tmp_path, f"""
    services:
      user:
        base_url: {home.url}
        auth: {{type: static, token: {STATIC}}}
    """)
    res = eng.check(Interface(name="j", service="user", module="m", method="POST", path="/jump", **body))
    assert home.count("/jump") == 1 and foreign.count("/landing") == 0  # before: the body arrived there
    assert res.outcome == "failed" and "would resend a request body that carries a credential" in res.reason
    plain = eng.check(Interface(name="p", service="user", module="m", method="POST", path="/jump",
                                json={"page": 2}))
    assert plain.status == 200 and foreign.count("/landing") == 1
    assert_nothing_secret(foreign)

def test_redirect_drops_query_token_and_basic_auth(tmp_path, home, foreign) -> None:
    home.route("GET", "/jump", lambda r: Response(302, {"Location": foreign.url + "/stolen"}, b""))
    eng = engine(tmp_path, f"""
    services:
      q:
        base_url: {home.url}
        auth: {{type: static, token: {STATIC}, query_param: access_token}}
      b:
        base_url: {home.url}
        auth: {{type: basic, username: demo, password: {PASSWORD}}}
    """)
    eng.check(Interface(name="q", service="q", module="m", method="GET", path="/jump"))
    eng.check(Interface(name="b", service="b", module="m", method="GET", path="/jump"))
    assert home.count("/jump") == 2
    assert_nothing_secret(foreign)


def test_same_origin_redirect_keeps_credentials(tmp_path, home) -> None:
    home.route("GET", "/jump", lambda r: Response(302, {"Location": "/ok"}, b""))
    eng = engine(tmp_path, login_config(home))
    eng.check(Interface(name="j", service="user", module="m", method="GET", path="/jump"))
    assert home.last("/ok").headers["x-auth-token"] == TOKEN_PREFIX + "1"


@pytest.mark.parametrize("status", [302, 307, 308])
def test_login_never_follows_a_redirect(tmp_path, home, foreign, status) -> None:
    home.route("POST", "/sso", lambda r: Response(status, {"Location": foreign.url + "/login"}, b""))
    eng = engine(tmp_path, login_config(home, auth=f"""
        auth:
          type: login
          path: /sso
          json: {{username: demo, password: {PASSWORD}}}
    """))
    res = eng.check(Interface(name="ok", service="user", module="m", method="GET", path="/ok"))
    assert res.category == "auth"
    assert f"redirect to {foreign.url}/login" in res.reason
    assert not foreign.requests  # neither the body nor the headers went anywhere
    assert PASSWORD not in res.reason


def test_same_origin_login_redirect_is_not_followed_either(tmp_path, home) -> None:
    home.route("POST", "/sso", lambda r: Response(307, {"Location": "/login"}, b""))
    eng = engine(tmp_path, login_config(home, auth=f"""
        auth: {{type: login, path: /sso, json: {{username: demo, password: {PASSWORD}}}}}
    """))
    res = eng.check(Interface(name="ok", service="user", module="m", method="GET", path="/ok"))
    assert res.category == "auth" and "307 redirect to" in res.reason
    assert home.count("/login") == 0  # the body was sent once, to /sso only


def test_userinfo_is_sent_as_basic_and_never_shown(tmp_path, home, foreign) -> None:
    home.route("GET", "/basic", lambda r: {"ok": True} if r.headers.get("authorization") ==
               "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode() else Response(401, {}, b"no"))
    base = home.url.replace("http://", f"http://bob:{PASSWORD}@")
    eng = engine(tmp_path, f"""
    services:
      u:
        base_url: {base}
    """)
    ok = eng.check(Interface(name="b", service="u", module="m", method="GET", path="/basic"))
    assert ok.outcome == "passed", ok.reason
    doc_url = foreign.url.replace("http://", f"http://eve:{PASSWORD}@") + "/fail"
    bad = eng.check(Interface(name="d", service="u", module="m", method="GET", url=doc_url))
    got = foreign.last("/fail").headers
    assert got["authorization"].startswith("Basic ")  # the document's own userinfo goes to its own URL
    text = repr(bad.to_dict())
    assert PASSWORD not in text and base64.b64encode(f"eve:{PASSWORD}".encode()).decode() not in text


def test_user_fixture_session_keeps_credentials_home(tmp_path, home, foreign) -> None:
    eng = engine(tmp_path, login_config(home))
    sess = service_session(eng, "user")
    sess.get("/ok")
    sess.get(foreign.url + "/stolen")
    assert home.last("/ok").headers["x-auth-token"] == TOKEN_PREFIX + "1"
    assert_nothing_secret(foreign)


def test_origin_helpers() -> None:
    assert origin_of("HTTPS://u:p@Example.COM/x") == "https://example.com:443"
    assert origin_of("http://example.com:80") == origin_of("http://example.com/")
    assert origin_of("http://example.com") != origin_of("https://example.com")
    assert split_userinfo("http://a%40b:p%3Aw@h:1/x") == ("http://h:1/x", "a@b", "p:w")


def test_redirect_drops_a_token_echoed_under_a_harmless_name(tmp_path, home, foreign) -> None:
    home.route("GET", "/jump", lambda r: Response(302, {"Location": f"{foreign.url}/stolen?x={STATIC}&page=2"}, b""))
    eng = engine(tmp_path, f"""
    services:
      s:
        base_url: {home.url}
        auth: {{type: static, token: {STATIC}, header: X-Custom, scheme: ""}}
    """)
    eng.check(Interface(name="s", service="s", module="m", method="GET", path="/jump"))
    assert home.last("/jump").headers["x-custom"] == STATIC
    assert_nothing_secret(foreign)
    assert foreign.last("/stolen").query == {"page": ["2"]}


# -- issue 12 red team: every path of the user fixture's session obeys the origin rule ---------------------
SHAPED = {"X-Custom": "Bearer Zeolite-9191abc", "X-Gateway": "Basic dXNlcjpaZW9saXRlLTkxOTE=",
          "X-Partner": "Token Zeolite9191xyz", "X-Plain-Key": "k-93jd82hd"}


def test_l1_session_send_of_a_prepared_request_keeps_credentials_home(tmp_path, home, foreign) -> None:
    import requests

    eng = engine(tmp_path, f"""
    services:
      s:
        base_url: {home.url}
        headers: {{X-Api-Key: {API_KEY}}}
        auth: {{type: static, token: {STATIC}, header: X-T, scheme: ""}}
    """)
    sess = service_session(eng, "s")
    sess.send(sess.prepare_request(requests.Request("GET", foreign.url + "/stolen")))
    foreign.route("GET", "/jump", lambda r: {"ok": True})
    home.route("GET", "/jump", lambda r: Response(302, {"Location": foreign.url + "/stolen"}, b""))
    sess.send(sess.prepare_request(requests.Request("GET", home.url + "/jump")))  # a redirect hop: send() too
    sess.send(sess.prepare_request(requests.Request("GET", home.url + "/ok")))
    assert home.last("/ok").headers["x-api-key"] == API_KEY and home.last("/ok").headers["x-t"] == STATIC
    assert len(foreign.requests) == 2
    assert foreign.requests[0].headers["user-agent"].startswith("python-requests/")  # not a credential
    assert_nothing_secret(foreign)


def test_l2_session_cookie_goes_only_to_the_origin_that_set_it(tmp_path, home, foreign) -> None:
    home.route("GET", "/set", lambda r: Response(200, {"Set-Cookie": "rsid=rtCookie-T6yv3Kp9; Path=/"}, b"{}"))
    eng = engine(tmp_path, f"""
    services:
      s: {{base_url: "{home.url}"}}
    """)
    sess = service_session(eng, "s")
    sess.get("/set")
    sess.get("/ok")
    assert "rtCookie-T6yv3Kp9" in home.last("/ok").headers.get("cookie", "")  # the service still gets it back
    sess.get(foreign.url + "/stolen")  # same host 127.0.0.1, another port: another origin (RFC 6454)
    assert "cookie" not in foreign.last("/stolen").headers
    assert_nothing_secret(foreign)


def test_l3_credential_shaped_header_values_are_origin_bound_like_secret_names(tmp_path, home, foreign) -> None:
    from pytest_apimon.redact import MASK, Redactor

    eng = engine(tmp_path, f"""
    services:
      s:
        base_url: {home.url}
        headers: {{X-Custom: "{SHAPED['X-Custom']}", X-Gateway: "{SHAPED['X-Gateway']}", X-Plain: hello,
                   X-Partner: "{SHAPED['X-Partner']}", X-Partner-Id: "{SHAPED['X-Plain-Key']}"}}
    """)
    eng.check(Interface(name="f", service="s", module="m", method="GET", url=foreign.url + "/stolen"))
    service_session(eng, "s").get(foreign.url + "/stolen")
    eng.check(Interface(name="h", service="s", module="m", method="GET", path="/ok"))
    assert home.last("/ok").headers["x-custom"] == SHAPED["X-Custom"]
    for req in foreign.requests:
        for name in ("x-custom", "x-gateway", "x-partner", "x-partner-id"):
            assert name not in req.headers, name
        assert req.headers["x-plain"] == "hello"  # an ordinary header is not a credential
    assert len(foreign.requests) == 2
    # The same rule masks them in every output: one predicate, not two.
    assert Redactor().headers({**SHAPED, "X-Plain": "hello"}) == \
        {"X-Custom": f"Bearer {MASK}", "X-Gateway": f"Basic {MASK}", "X-Partner": MASK, "X-Plain-Key": MASK,
         "X-Plain": "hello"}
    assert "Zeolite9191xyz" not in eng.redactor.text("echoed Zeolite9191xyz and k-93jd82hd")
    assert "k-93jd82hd" not in eng.redactor.text("echoed k-93jd82hd")


@pytest.mark.parametrize("secret", ["pw/ab%Øcd78", "abc%defgh56", 'Zq"7\\\\密码-Lx42'])
def test_l5_l6_secret_in_a_path_and_echoed_json_is_masked_in_the_result(tmp_path, home, secret) -> None:
    import json as _json

    from pytest_apimon.redact import Redactor

    def echo(r):  # an error body that quotes the request (path and JSON body) inside a JSON string
        return Response(500, {}, {"error": _json.dumps({"path": r.path, "body": r.text()})})

    eng = engine(tmp_path, f"""
    services:
      s: {{base_url: "{home.url}"}}
    """)
    eng.redactor = Redactor([secret])
    path = "/fail/" + secret + "/y"
    home.route("POST", requests_path(path), echo)
    res = eng.check(Interface(name="e", service="s", module="m", method="POST", path=path, json={"note": secret}))
    assert home.requests, "the server was never called"
    text = _json.dumps(res.to_dict(), ensure_ascii=False) + repr(res.to_dict())
    for form in (secret, requests_path(path)[len("/fail/"):-len("/y")]):
        assert form not in text, form
    assert "******" in text


def requests_path(path: str) -> str:
    """The path as requests sends it (requote_uri, then urllib3's normalisation)."""
    import requests

    return requests.Request("GET", "http://h" + path).prepare().path_url
