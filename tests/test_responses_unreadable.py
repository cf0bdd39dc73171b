"""Issue 13 §5/§6: a response is classified by what went wrong, against real servers on 127.0.0.1.

A response that arrived but cannot be read is `unexpected` with the reason (never `network`, never retried);
JSON is decoded with the Content-Type charset; a failing proxy is `network`/`proxy` naming the proxy; a 3xx
listed in expect.status is checked, not followed.
"""

from __future__ import annotations

import gzip

import pytest
import requests
from localserver import LocalServer, Response, closed_port, head_bytes, send_raw

from pytest_apimon.categories import TRANSIENT, Category
from pytest_apimon.classify import classify
from pytest_apimon.documents import BodyCheck, Expect
from pytest_apimon.probe import Exchange, Request, proxy_in_use, send


def get(session: requests.Session, url: str, **kw: object) -> Exchange:
    return send(session, Request("GET", url, **kw))  # type: ignore[arg-type]


def raw_response(head: bytes, body: bytes = b"") -> bytes:
    return head + body


@pytest.mark.parametrize(
    ("payload", "sub", "needle"),
    [
        pytest.param(
            head_bytes(200, {"Content-Encoding": "gzip", "Content-Length": "20", "Connection": "close"})
            + b"this is not gzip....",
            "decode", "cannot be decoded", id="bad-gzip",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150))
            + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}",
            "headers", "more than 100 headers", id="150-headers",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"y" * 70000 + b"\r\nContent-Length: 2\r\n\r\n{}",
            "headers", "oversized response from 127.0.0.1:", id="oversized-header-line",
        ),
        pytest.param(
            head_bytes(200, {"Transfer-Encoding": "chunked", "Connection": "close"}) + b"zz-not-hex\r\nabc\r\n",
            "chunked", "chunked", id="broken-chunked",
        ),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", "status_line", "status line", id="not-http"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{}",
                     "headers", "invalid headers", id="conflicting-content-length"),
    ],
)
def test_unreadable_response_is_unexpected_not_network(
    srv: LocalServer, session: requests.Session, payload: bytes, sub: str, needle: str
) -> None:
    srv.raw("GET", "/bad", send_raw(payload))
    ex = get(session, srv.url + "/bad")
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("response", sub), ex.error
    assert needle in ex.error.message
    outcome = classify(ex, Expect())
    assert outcome.category is Category.UNEXPECTED and outcome.sub == sub
    assert outcome.category not in TRANSIENT and not outcome.category.transient  # never retried


def test_good_gzip_still_reads(srv: LocalServer, session: requests.Session) -> None:
    body = gzip.compress(b'{"ok": true}')
    srv.raw("GET", "/gz", send_raw(head_bytes(200, {"Content-Encoding": "gzip", "Content-Length": str(len(body)),
                                                    "Content-Type": "application/json", "Connection": "close"})
                                   + body))
    ex = get(session, srv.url + "/gz")
    assert ex.error is None and ex.body == b'{"ok": true}'


def test_json_in_declared_charset(srv: LocalServer, session: requests.Session) -> None:
    body = '{"科室": "心内科"}'.encode("gbk")
    srv.route("GET", "/gbk", lambda r: Response(200, {"Content-Type": "application/json; charset=GBK"}, body))
    ex = get(session, srv.url + "/gbk")
    expect = Expect(body=(BodyCheck("科室", "equals", "心内科"),))
    assert classify(ex, expect).passed


def test_unknown_charset_falls_back_to_utf8() -> None:
    ex = Exchange("GET", "http://x/", {}, None, status=200, response_headers={"Content-Type": "application/json; "
                  "charset=no-such-charset"}, body=b'{"a": 1}')
    assert classify(ex, Expect(body=(BodyCheck("a", "equals", 1),))).passed


def test_deep_json_body_is_not_json_not_a_crash() -> None:
    ex = Exchange("GET", "http://x/", {}, None, status=200, body=b"[" * 100_000)
    outcome = classify(ex, Expect(body=(BodyCheck("a", "exists", True),)))
    assert outcome.category is Category.UNEXPECTED and "not JSON" in outcome.reason


@pytest.mark.parametrize("local_target", [False, True], ids=["named-target", "local-target"])
def test_refusing_proxy_is_network_proxy_naming_it(srv: LocalServer, session: requests.Session,
                                                   monkeypatch: pytest.MonkeyPatch, local_target: bool) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://user:pw@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # never resolved or reached: the proxy is asked, and refuses
    url = srv.url + "/x" if local_target else "http://monitored.example.test/x"
    assert proxy_in_use(url) == f"http://127.0.0.1:{port}"
    ex = get(session, url)
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "proxy")
    assert f"proxy http://127.0.0.1:{port} failed" in ex.error.message
    # the proxy is the one refusing, not the target
    assert ex.error.message.endswith(f"connection refused by 127.0.0.1:{port}"), ex.error.message
    assert "monitored.example.test" not in ex.error.message and f":{srv.port}" not in ex.error.message
    assert "pw" not in ex.error.message
    assert classify(ex, Expect()).sub == "proxy"


def test_no_proxy_configured_means_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_in_use("http://127.0.0.1:1/") is None


def test_expected_redirect_is_checked_not_followed(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/old", lambda r: Response(302, {"Location": "/login?next=%2Fold"}, ""))
    srv.route("GET", "/login", lambda r: {"page": "login"})
    expect = Expect(status=(302,), headers=(("location", "/login?next=%2Fold"),))
    assert not expect.follow_redirects
    ex = send(session, Request("GET", srv.url + "/old", follow_redirects=expect.follow_redirects))
    assert ex.status == 302 and srv.count("/login") == 0
    assert classify(ex, expect).passed
    wrong = Expect(status=("3xx",), headers=(("Location", "/elsewhere"),))
    outcome = classify(ex, wrong)
    assert outcome.category is Category.UNEXPECTED and outcome.sub == "header"
    assert "header Location: expected \"/elsewhere\"" in outcome.reason
    assert classify(ex, Expect(status=(302,), headers=(("Location", False),))).sub == "header"
    assert Expect(status=(200, 404)).follow_redirects


def test_unsendable_header_at_send_is_not_network(srv: LocalServer, session: requests.Session) -> None:
    """Safety net below the document check (e.g. a value from a spec example): never `network`, never retried."""
    srv.route("GET", "/h", lambda r: {"ok": True})
    ex = send(session, Request("GET", srv.url + "/h", headers={"X-Ward-Name": "心内科一病区"}))
    outcome = classify(ex, Expect())
    assert outcome.category is Category.UNEXPECTED
    assert srv.count("/h") == 0


@pytest.mark.parametrize("location", ["http://[::1/x", "http://127.0.0.1:99999/x", "http://:80/x", "file:///etc/hosts",
                                      "ftp://127.0.0.1/x", "http://a..b\u0000/x"],
                         ids=["bad-ipv6", "bad-port", "no-host", "file", "ftp", "nul-host"])
def test_redirect_to_malformed_location_is_unexpected_not_network(srv: LocalServer, session: requests.Session,
                                                                  location: str) -> None:
    """A reply arrived and is unusable: unexpected/redirect with the Location, 1 request, never retried."""
    srv.route("GET", "/moved", lambda r: Response(301, {"Location": location}, b""))
    ex = get(session, srv.url + "/moved")
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("response", "redirect"), ex.error
    assert "malformed Location" in ex.error.message and srv.count("/moved") == 1
    outcome = classify(ex, Expect())
    assert outcome.category is Category.UNEXPECTED and outcome.sub == "redirect"
    assert outcome.category.value not in TRANSIENT


def test_redirect_checks_leave_good_and_refused_hops_alone(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/ok", lambda r: {"ok": True})
    srv.route("GET", "/rel", lambda r: Response(302, {"Location": "/ok?a=b c"}, b""))
    srv.route("GET", "/abs", lambda r: Response(302, {"Location": f"//127.0.0.1:{srv.port}/ok"}, b""))
    for path in ("/rel", "/abs"):
        ex = get(session, srv.url + path)
        assert ex.error is None and ex.status == 200, (path, ex.error)
    srv.route("GET", "/away", lambda r: Response(302, {"Location": f"http://127.0.0.1:{closed_port()}/x"}, b""))
    ex = get(session, srv.url + "/away")
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "refused"), ex.error


def test_non_transport_exception_is_never_network() -> None:
    """The generic `network` branch takes only transport faults (OSError and urllib3/http.client errors)."""
    from pytest_apimon.probe import _map_error

    req = Request("GET", "http://127.0.0.1:1/x")
    for exc in (ValueError("Invalid IPv6 URL"), UnicodeError("label too long"), KeyError("x")):
        err = _map_error(exc, fired=False, req=req, url=req.url)
        assert (err.kind, err.sub) == ("response", "unusable") and type(exc).__name__ in err.message
    err = _map_error(OSError("weird"), fired=False, req=req, url=req.url)
    assert (err.kind, err.sub) == ("network", "other")
