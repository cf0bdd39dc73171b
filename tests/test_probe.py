"""probe.send against real servers on 127.0.0.1 (tests/localserver.py); no mocking of requests."""

from __future__ import annotations

import socket
import threading
import tracemalloc
from pathlib import Path

import pytest
import requests
from localserver import (
    LocalServer,
    Req,
    Response,
    close_mid_response,
    closed_port,
    drip_body,
    drip_headers,
    head_bytes,
    make_self_signed_cert,
    reset_connection,
    send_raw,
    sleep_then,
    stream_bytes,
)

from pytest_apimon.probe import _REQUEST_BODY_EXCERPT, Exchange, Request, new_session, send


def get(session: requests.Session, url: str, **kw: object) -> Exchange:
    return send(session, Request("GET", url, **kw))  # type: ignore[arg-type]


# --- well-behaved servers -------------------------------------------------------------------


def test_json_200(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/ok", lambda r: {"code": 0, "data": {"名字": "张三"}})
    ex = get(session, srv.url + "/ok")
    assert ex.error is None
    assert (ex.status, ex.reason) == (200, "OK")
    assert ex.response_headers["Content-Type"] == "application/json"
    assert ex.text() == '{"code": 0, "data": {"名字": "张三"}}'
    assert not ex.truncated
    assert ex.elapsed_ms is not None and ex.elapsed_ms > 0
    assert ex.url == srv.url + "/ok"
    assert ex.method == "GET"


def test_request_parts_arrive_as_sent(srv: LocalServer, session: requests.Session) -> None:
    srv.route("POST", "/echo", lambda r: {"ok": True})
    ex = send(
        session,
        Request(
            "post",
            srv.url + "/echo",
            params={"q": "a b", "n": 2},
            headers={"X-Trace": "t-1", "Accept-Language": "zh-CN"},
            json={"名字": "值", "n": [1, 2]},
            has_json=True,
        ),
    )
    assert ex.error is None and ex.status == 200
    got = srv.last("/echo")
    assert got.method == "POST"
    assert got.query == {"q": ["a b"], "n": ["2"]}
    assert got.headers["x-trace"] == "t-1" and got.headers["accept-language"] == "zh-CN"
    assert got.headers["content-type"] == "application/json"
    assert got.json() == {"名字": "值", "n": [1, 2]}
    # what the Exchange says was sent matches what arrived
    assert ex.url == srv.url + "/echo?q=a+b&n=2"
    assert ex.request_headers["X-Trace"] == "t-1"
    assert ex.request_body is not None and '"n": [1, 2]' in ex.request_body
    assert ex.method == "POST"


def test_form_and_raw_body(srv: LocalServer, session: requests.Session) -> None:
    srv.route("PUT", "/form", lambda r: "ok")
    ex = send(session, Request("PUT", srv.url + "/form", form={"a": "1", "b": "中"}))
    got = srv.last("/form")
    assert ex.status == 200
    assert got.headers["content-type"] == "application/x-www-form-urlencoded"
    assert got.form() == {"a": ["1"], "b": ["中"]}
    assert ex.request_body == "a=1&b=%E4%B8%AD"

    ex = send(session, Request("PUT", srv.url + "/form", body="<x>中</x>", headers={"Content-Type": "text/xml"}))
    assert srv.last("/form").body == "<x>中</x>".encode()
    assert ex.request_body == "<x>中</x>"

    # The excerpt is capped and undecodable bytes are replaced. The cap leaves room past the report's 2 KiB
    # (engine.REQUEST_EXCERPT): the engine masks the whole kept text before it cuts (redact.excerpt).
    big = b"\xff" * (_REQUEST_BODY_EXCERPT + 1000)
    ex = send(session, Request("PUT", srv.url + "/form", body=big))
    assert srv.last("/form").body == big
    assert _REQUEST_BODY_EXCERPT >= 2048 + 1024
    assert ex.request_body is not None and len(ex.request_body) == _REQUEST_BODY_EXCERPT + 1
    assert ex.request_body.endswith("…")


def test_json_null_body_and_head(srv: LocalServer, session: requests.Session) -> None:
    srv.route("POST", "/n", lambda r: {"len": len(r.body)})
    srv.route("HEAD", "/h", lambda r: "ignored")
    ex = send(session, Request("POST", srv.url + "/n", json=None, has_json=False))
    assert srv.last("/n").body == b"" and ex.request_body is None
    ex = send(session, Request("POST", srv.url + "/n", json=None, has_json=True))  # JSON null is a body
    assert srv.last("/n").body == b"null" and srv.last("/n").headers["content-type"] == "application/json"
    assert ex.request_body == "null"
    ex = send(session, Request("HEAD", srv.url + "/h"))
    assert ex.status == 200 and ex.body == b"" and ex.error is None


def test_connection_reuse(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/a", lambda r: {"n": 1})
    for _ in range(5):
        assert get(session, srv.url + "/a").status == 200
    assert srv.count("/a") == 5
    assert len({r.client_port for r in srv.requests}) == 1  # one keep-alive connection


def test_text_charset() -> None:
    ex = Exchange("GET", "u", {}, None, status=200, body="héllo".encode("latin-1"))
    ex.response_headers = {"content-type": "text/plain; charset=ISO-8859-1"}
    assert ex.text() == "héllo"
    ex.response_headers = {"Content-Type": "text/plain"}  # no charset: utf-8 with replacement
    assert ex.text() == "h\ufffdllo"
    ex.response_headers = {"Content-Type": "text/plain; charset=no-such-codec"}
    assert ex.text() == "h\ufffdllo"
    ex.body = b"abcdef"
    assert ex.text(4) == "abc…" and ex.text(6) == "abcdef"


# --- misbehaving servers --------------------------------------------------------------------


def test_connect_refused(session: requests.Session) -> None:
    port = closed_port()
    ex = get(session, f"http://127.0.0.1:{port}/x")
    assert ex.status is None
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "refused")
    assert ex.error.message == f"connection refused by 127.0.0.1:{port}"


def test_connect_timeout(session: requests.Session) -> None:
    # A listener with a full accept queue drops further SYNs, so connect() hangs.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            s = socket.socket()
            s.settimeout(0.2)
            fillers.append(s)
            try:
                s.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel accepts connections beyond the backlog")
        ex = get(session, f"http://127.0.0.1:{port}/", connect_timeout=0.3, timeout=3)
        assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "connect")
        assert "0.3 s" in ex.error.message
    finally:
        for s in fillers:
            s.close()
        lst.close()


def test_read_timeout_silent_server(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/slow", sleep_then(5))
    ex = get(session, srv.url + "/slow", timeout=0.5)
    assert ex.error is not None and ex.error.kind == "timeout"
    # Silent: the socket read timeout normally beats the watchdog (0.1 s later, probe._GRACE_S); on a loaded machine
    # the watchdog's thread may get there first. Either is a timeout at the configured 0.5 s.
    assert ex.error.sub in ("read", "total")


def test_dripping_body_hits_total_deadline(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/drip", drip_body(interval=0.05))  # gaps far inside the 1 s read timeout, even under load
    ex = get(session, srv.url + "/drip", timeout=1.0)  # the body would drip for days: returning at all is the deadline
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "total")
    assert ex.error.message == "no complete response within 1 s (total deadline)"
    assert ex.status == 200  # headers had arrived


def test_dripping_eof_delimited_body_is_a_timeout(srv: LocalServer, session: requests.Session) -> None:
    # No Content-Length: the shut-down socket looks like a normal end of body.
    srv.raw("GET", "/drip", drip_body(interval=0.05, content_length=None))
    ex = get(session, srv.url + "/drip", timeout=1.0)
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "total")


def test_dripping_headers_hits_total_deadline(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/dh", drip_headers(interval=0.1))
    ex = get(session, srv.url + "/dh", timeout=1.0)
    assert ex.status is None
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "total")


def test_watchdog_does_not_leak_into_next_requests(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/fast", lambda r: {"ok": True})
    srv.raw("GET", "/drip", drip_body(interval=0.1))
    # Fast requests with a short deadline: their (cancelled) watchdogs must not fire later.
    for _ in range(3):
        assert get(session, srv.url + "/fast", timeout=2).error is None
    # Wait until every watchdog timer thread has ended (cancelled, or fired): a leaked one would have fired by then.
    for timer in [t for t in threading.enumerate() if isinstance(t, threading.Timer)]:
        timer.join(30)
    ex = get(session, srv.url + "/fast", timeout=30)
    assert ex.error is None and ex.status == 200
    # After a fired watchdog, the next request on the same session is unaffected.
    assert get(session, srv.url + "/drip", timeout=0.4).error is not None
    ports_before = {r.client_port for r in srv.requests if r.path == "/drip"}
    for _ in range(3):
        ex = get(session, srv.url + "/fast", timeout=2)
        assert ex.error is None and ex.status == 200
    fast_ports = {r.client_port for r in srv.requests[-3:]}
    assert not fast_ports & ports_before  # the shut-down connection was not reused


def test_huge_response_is_capped(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/big", stream_bytes(200 * 1024 * 1024))
    tracemalloc.start()
    try:
        ex = get(session, srv.url + "/big", max_body_bytes=256 * 1024, timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ex.error is None and ex.status == 200
    assert ex.truncated and len(ex.body) == 256 * 1024
    assert peak < 8 * 1024 * 1024
    # and the session still works (the half-read connection was closed, not reused)
    srv.route("GET", "/ok", lambda r: "ok")
    assert get(session, srv.url + "/ok").text() == "ok"


def test_body_of_exactly_the_cap_is_not_truncated(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/b", lambda r: b"y" * 1000)
    ex = get(session, srv.url + "/b", max_body_bytes=1000)
    assert len(ex.body) == 1000 and not ex.truncated
    ex = get(session, srv.url + "/b", max_body_bytes=999)
    assert len(ex.body) == 999 and ex.truncated


def test_connection_closed_mid_response(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/mid", close_mid_response(declared=1000, sent=10))
    ex = get(session, srv.url + "/mid")
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "reset")
    assert "mid-response" in ex.error.message
    assert ex.status == 200  # headers had arrived


def test_unencodable_body_is_not_a_network_error(session: requests.Session) -> None:
    ex = send(session, Request("POST", "http://127.0.0.1:9/", json={1, 2}, has_json=True))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("other", "request")


def test_connection_reset(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/rst", reset_connection())
    ex = get(session, srv.url + "/rst")
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "reset")
    srv.raw("GET", "/rst2", reset_connection(after=head_bytes(200, {"Content-Length": "100"}) + b"abc"))
    ex = get(session, srv.url + "/rst2")
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "reset")


def test_garbage_response(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/junk", send_raw(b"SSH-2.0-OpenSSH_9.6\r\n"))
    ex = get(session, srv.url + "/junk")
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("response", "status_line")  # not HTTP: no retry


def test_redirects(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/loop", lambda r: Response(302, {"Location": "/loop"}, ""))
    srv.route("GET", "/from", lambda r: Response(301, {"Location": "/to?x=1"}, ""))
    srv.route("GET", "/to", lambda r: {"arrived": True})
    limited = new_session(max_redirects=3)  # the limit belongs to the service's session, set once
    ex = get(limited, srv.url + "/loop")
    limited.close()
    assert ex.error is not None and ex.error.message == "more than 3 redirects"
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("redirects", "too_many")
    assert srv.count("/loop") == 4  # first request + 3 redirects
    ex = get(session, srv.url + "/from")
    assert ex.error is None and ex.status == 200 and ex.url == srv.url + "/to?x=1"


def test_tls_to_plain_http_port(srv: LocalServer, session: requests.Session) -> None:
    ex = get(session, f"https://127.0.0.1:{srv.port}/", timeout=3)
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "tls")
    assert ex.error.message.startswith("TLS error: ")
    assert len(ex.error.message) < 120


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    made = make_self_signed_cert(Path(tmp_path_factory.mktemp("tls")))
    if made is None:
        pytest.skip("openssl CLI not available")
    return made


@pytest.mark.integration
def test_https_self_signed(cert: tuple[str, str]) -> None:
    with LocalServer(tls=cert) as tls_srv:
        tls_srv.route("GET", "/ok", lambda r: {"tls": True})
        tls_srv.raw("GET", "/drip", drip_body(interval=0.05))
        strict = new_session()
        ex = get(strict, tls_srv.url + "/ok", timeout=3)
        assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "tls")
        assert "certificate verify failed" in ex.error.message
        lax = new_session(verify_tls=False)
        ex = send(lax, Request("GET", tls_srv.url + "/ok", verify_tls=False))
        assert ex.error is None and ex.status == 200
        # the total deadline works on TLS sockets too
        ex = send(lax, Request("GET", tls_srv.url + "/drip", verify_tls=False, timeout=1.0))
        assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "total")
        ex = send(lax, Request("GET", tls_srv.url + "/ok", verify_tls=False))
        assert ex.error is None and ex.status == 200


def test_dns_failure(session: requests.Session) -> None:
    done = threading.Event()

    def resolve() -> None:
        try:
            socket.getaddrinfo("nonexistent.invalid", 80)
        except OSError:
            pass
        done.set()

    threading.Thread(target=resolve, daemon=True).start()
    if not done.wait(5):
        pytest.skip("DNS lookups hang in this environment")
    ex = get(session, "http://nonexistent.invalid/", timeout=2, connect_timeout=1)
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "dns")
    assert ex.error.message == "DNS lookup failed for nonexistent.invalid"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http:///nohost", "http://[::1/", "no-scheme.example/x"])
def test_invalid_url(session: requests.Session, url: str) -> None:
    ex = get(session, url)
    assert ex.error is not None and ex.error.kind == "invalid_url"
    assert ex.status is None


def test_handler_can_inspect_request(srv: LocalServer, session: requests.Session) -> None:
    seen: list[Req] = []
    srv.route("DELETE", "/item", lambda r: seen.append(r) or (204, ""))
    ex = send(session, Request("DELETE", srv.url + "/item", headers={"Authorization": "Bearer t"}))
    assert ex.status == 204 and seen[0].headers["authorization"] == "Bearer t"
    assert get(session, srv.url + "/nowhere").status == 404


def test_threads_share_one_session(srv: LocalServer) -> None:
    # Watchdogs of one thread must never hit connections that other threads are using.
    srv.route("GET", "/fast", lambda r: {"ok": True})
    srv.raw("GET", "/drip", drip_body(interval=0.05))
    shared = new_session(pool_size=4)
    results: list[tuple[str, Exchange]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(12):
            path = "/drip" if (n + i) % 6 == 0 else "/fast"
            # Only the drip has a short deadline: a loaded machine must not turn a fast answer into a timeout.
            got = get(shared, srv.url + path, timeout=0.3 if path == "/drip" else 30)
            with lock:
                results.append((path, got))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    shared.close()
    assert len(results) == 96
    for path, got in results:
        if path == "/fast":
            assert got.error is None and got.status == 200, got.error
        else:
            assert got.error is not None and got.error.kind == "timeout"  # total, or read if a drip gap ran long


def test_session_keeps_no_cookies(srv: LocalServer, session: requests.Session) -> None:
    # A login's cookie must not ride along on later checks (auth: false would then pass while logged in).
    srv.route("GET", "/login", lambda r: Response(200, {"Set-Cookie": "sid=abc123; Path=/"}, "ok"))
    srv.route("GET", "/me", lambda r: {"cookie": r.headers.get("cookie")})
    assert get(session, srv.url + "/login").status == 200
    get(session, srv.url + "/me")
    assert "cookie" not in srv.last("/me").headers


def test_environment_is_read_once_per_session_not_per_request(srv: LocalServer, monkeypatch) -> None:
    # pytest deletes PYTEST_CURRENT_TEST on the main thread while checking threads send: a per-request
    # iteration of os.environ raced with it (KeyError) and failed healthy interfaces.
    srv.route("GET", "/ok", lambda r: {"ok": True})
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    session = new_session()
    assert get(session, srv.url + "/ok").status == 200  # the first send reads the environment

    def boom() -> dict:
        raise AssertionError("the environment was read again")

    monkeypatch.setattr("urllib.request.getproxies", boom)
    monkeypatch.setattr("urllib.request.getproxies_environment", boom)
    for _ in range(3):
        assert get(session, srv.url + "/ok").status == 200
    session.close()


def test_environment_read_retries_a_read_that_raced(monkeypatch) -> None:
    from pytest_apimon.probe import Environment

    calls = []

    def racing() -> dict:
        calls.append(1)
        if len(calls) < 3:
            raise KeyError("PYTEST_CURRENT_TEST")  # os.environ changed during the iteration
        return {"http": "http://proxy:1"}

    monkeypatch.setattr("urllib.request.getproxies", racing)
    assert Environment.read().proxies == {"http": "http://proxy:1"} and len(calls) == 3


def test_environment_settings_match_requests_proxy_rules() -> None:
    from pytest_apimon.probe import Environment

    env = Environment({"http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128",
                       "no": "localhost,.internal,10.0.0.0/8,192.168.1.5"}, None)
    via = {"http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128"}
    assert env.settings("http://api.example.com/x", True)["proxies"] == via
    for direct in ("http://localhost:8080/x", "https://svc.internal/x", "http://10.1.2.3/x", "http://192.168.1.5/"):
        assert env.settings(direct, True)["proxies"] == {}, direct
    assert env.settings("http://192.168.1.6/", True)["proxies"] == via
    assert Environment({}, "/etc/ca.pem").settings("https://a/", True)["verify"] == "/etc/ca.pem"
    assert Environment({}, "/etc/ca.pem").settings("https://a/", False)["verify"] is False
    assert Environment({}, None).settings("https://a/", True) == {"proxies": {}, "stream": True, "verify": True,
                                                                  "cert": None}
