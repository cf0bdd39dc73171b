"""A stale pooled keep-alive connection is not a failure (issue 19.1).

The local server answers only the first request on each keep-alive connection and drops the connection when a
second one arrives on it (as nginx does after keepalive_timeout). The request is resent once, on a fresh
connection, when it is idempotent and no byte of the response had arrived; it is not a retry of the check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from localserver import LocalServer, Response, make_self_signed_cert
from test_plugin import write

from pytest_apimon.probe import Request, new_session, send


def ports(srv: LocalServer, path: str) -> list[int]:
    return [r.client_port for r in srv.requests if r.path == path]


@pytest.mark.parametrize("fault", ["close", "reset", "idle", "408"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_request_on_a_dropped_keepalive_connection_is_resent_once(
        srv: LocalServer, session: requests.Session, fault: str, method: str) -> None:
    srv.route("GET", "/first", lambda r: {"n": 1})
    srv.route(method, "/second", lambda r: Response(200, {}, b""))
    srv.reuse_fault = fault
    assert send(session, Request("GET", srv.url + "/first")).status == 200
    ex = send(session, Request(method, srv.url + "/second"))
    assert ex.error is None and ex.status == 200
    seen = ports(srv, "/second")
    # the dropped attempt reached the server at most once (an idle close may be noticed before sending)
    assert 1 <= len(seen) <= 2
    assert seen[-1] != ports(srv, "/first")[0]  # answered on a fresh connection


def test_408_on_a_fresh_connection_is_a_failure(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/first", lambda r: {"n": 1})
    srv.route("GET", "/slow-client", lambda r: Response(408, {}, "timeout"))
    ex = send(session, Request("GET", srv.url + "/slow-client"))
    assert ex.error is None and ex.status == 408
    assert srv.count("/slow-client") == 1
    srv.reuse_fault = "408"
    assert send(session, Request("GET", srv.url + "/first")).status == 200
    ex = send(session, Request("POST", srv.url + "/slow-client", json={}, has_json=True))
    assert ex.status == 404  # POST is sent on a fresh connection (no such route): never meets the 408


def test_resend_only_once(srv: LocalServer, session: requests.Session) -> None:
    """The fresh connection is dropped too: that is a real failure, reported, and not resent again."""
    srv.route("GET", "/first", lambda r: {"n": 1})
    srv.raw("GET", "/second", lambda conn: None)  # reads the request, closes without a byte
    assert send(session, Request("GET", srv.url + "/first")).status == 200
    ex = send(session, Request("GET", srv.url + "/second"))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "reset")
    assert srv.count("/second") == 2  # the stale attempt and its one resend


def test_a_fresh_connection_is_never_resent(srv: LocalServer, session: requests.Session) -> None:
    srv.raw("GET", "/drop", lambda conn: None)
    ex = send(session, Request("GET", srv.url + "/drop"))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "reset")
    assert srv.count("/drop") == 1


def test_bytes_of_a_response_arrived_so_no_resend(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/first", lambda r: {"n": 1})
    srv.route("GET", "/second", lambda r: {"n": 2})
    srv.reuse_fault = "partial"
    assert send(session, Request("GET", srv.url + "/first")).status == 200
    ex = send(session, Request("GET", srv.url + "/second"))
    assert ex.error is not None and ex.error.kind == "network"
    assert srv.count("/second") == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_idempotent_request_never_rides_on_a_reused_connection(
        srv: LocalServer, session: requests.Session, method: str) -> None:
    """Not resent (the server may have acted on it): sent on a fresh connection in the first place."""
    srv.route("GET", "/first", lambda r: {"n": 1})
    srv.route(method, "/write", lambda r: {"ok": True})
    srv.reuse_fault = "close"
    assert send(session, Request("GET", srv.url + "/first")).status == 200
    ex = send(session, Request(method, srv.url + "/write", json={"a": 1}, has_json=True))
    assert ex.error is None and ex.status == 200
    assert srv.count("/write") == 1


def test_read_timeout_on_a_reused_connection_is_not_resent(srv: LocalServer, session: requests.Session) -> None:
    import threading

    release = threading.Event()
    srv.route("GET", "/first", lambda r: {"n": 1})

    def slow(req):
        release.wait(5)
        return {"late": True}

    srv.route("GET", "/slow", slow)
    try:
        assert send(session, Request("GET", srv.url + "/first")).status == 200
        ex = send(session, Request("GET", srv.url + "/slow", timeout=0.3))
        assert ex.error is not None and ex.error.kind == "timeout"
        assert srv.count("/slow") == 1
    finally:
        release.set()


def test_redirect_hop_on_a_dropped_connection(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/first", lambda r: {"n": 1})
    srv.route("GET", "/old", lambda r: Response(302, {"Location": "/new"}, b""))
    srv.route("GET", "/new", lambda r: {"moved": True})
    srv.reuse_fault = "close"
    assert send(session, Request("GET", srv.url + "/first")).status == 200
    ex = send(session, Request("GET", srv.url + "/old"))
    assert ex.error is None and ex.status == 200 and ex.url.endswith("/new")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    made = make_self_signed_cert(Path(tmp_path_factory.mktemp("tls")))
    if made is None:
        pytest.skip("openssl CLI not available")
    return made


@pytest.mark.parametrize("fault", ["close", "reset"])
def test_https_dropped_keepalive_connection(cert: tuple[str, str], fault: str) -> None:
    with LocalServer(tls=cert) as tls_srv:
        tls_srv.route("GET", "/first", lambda r: {"n": 1})
        tls_srv.route("GET", "/second", lambda r: {"n": 2})
        tls_srv.reuse_fault = fault
        session = new_session(verify_tls=False)
        assert send(session, Request("GET", tls_srv.url + "/first", verify_tls=False)).status == 200
        ex = send(session, Request("GET", tls_srv.url + "/second", verify_tls=False))
        assert ex.error is None and ex.status == 200
        session.close()


# --- the example end to end: the login's connection reused by the next interface -----------------------


def stale_workspace(pytester: pytest.Pytester, srv: LocalServer, retries: int) -> None:
    srv.route("POST", "/shop/login", lambda r: {"data": {"token": "t-1"}})
    srv.route("GET", "/shop/orders", lambda r: {"orders": []})
    srv.route("GET", "/shop/items", lambda r: {"items": []})
    srv.route("GET", "/shop/health", lambda r: {"up": True})
    srv.reuse_fault = "close"
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: {retries}, concurrency: 1}}
        services:
          shop:
            base_url: {srv.url}/shop
            auth: {{type: login, path: /login, json: {{u: a}}, token_path: data.token}}
    """)
    write(pytester.path, "pool/shop/api.yaml", """
        - {name: orders, path: /orders}
        - {name: items, path: /items}
        - {name: health, path: /health, auth: false}
    """)


@pytest.mark.parametrize("retries", [0, 3])
def test_interfaces_reusing_the_logins_connection_pass_first_time(
        pytester: pytest.Pytester, local_server: LocalServer, retries: int) -> None:
    stale_workspace(pytester, local_server, retries)
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", "--junitxml", "out/j.xml")
    result.assert_outcomes(passed=3)
    assert "rerun" not in result.parseoutcomes()
    records = json.loads((pytester.path / "out/r.json").read_text(encoding="utf-8"))["results"]
    assert [(r["outcome"], r["attempts"], r.get("flaky", False)) for r in records] == [("passed", 1, False)] * 3


def test_a_fresh_connection_dropped_during_the_handshake_is_not_resent(srv: LocalServer,
                                                                       session: requests.Session) -> None:
    """The thread's memory of its last request (which failed on a reused connection) must not make the next
    request's fresh connection, dropped while connecting, look stale."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()  # FIN before any TLS byte: the client's handshake sees EOF

    threading.Thread(target=accept, daemon=True).start()
    try:
        release = threading.Event()
        srv.route("GET", "/first", lambda r: {"n": 1})
        srv.route("GET", "/slow", lambda r: release.wait(5) and {"late": True})
        assert send(session, Request("GET", srv.url + "/first")).status == 200
        # a read timeout on the reused connection: not resent, and the thread remembers "reused, no status line"
        assert send(session, Request("GET", srv.url + "/slow", timeout=0.2)).error.kind == "timeout"
        release.set()
        port = listener.getsockname()[1]
        ex = send(session, Request("GET", f"https://127.0.0.1:{port}/x", verify_tls=False))
        assert ex.error is not None and ex.error.kind == "network"
        assert len(accepted) == 1
    finally:
        listener.close()
