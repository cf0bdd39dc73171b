"""A monitored service that stalls on the wire never hangs the run: each stall ends within the request's own
timeouts with one `timeout` category whose reason names the phase that stalled (connect, TLS handshake, sending
the request, waiting for the answer, the total deadline), and every other interface is still checked and
reported, in process and under `-n 2`.

Stalls are held by raw sockets on 127.0.0.1 until the test releases them (`Staller.stop`); timeouts are small
and configured, so no test sleeps or measures time.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from localserver import LocalServer, RawConn, Response, head_bytes, issue_cert

from pytest_apimon.config import load_config
from pytest_apimon.documents import Interface
from pytest_apimon.engine import Engine
from pytest_apimon.probe import Request, send
from pytest_apimon.retries import HANG_GUARD_SLACK, RetryPolicy
from pytest_apimon.runner import Runner

Behaviour = Callable[[socket.socket, threading.Event], None]


class Staller:
    """A listener on 127.0.0.1 (free port) that runs `behaviour(conn, stop)` for each accepted connection on its
    own thread; `stop` is set when the test ends, and every socket is closed then."""

    def __init__(self, behaviour: Behaviour, rcvbuf: int | None = None) -> None:
        self.stop = threading.Event()
        self._behaviour = behaviour
        self._conns: list[socket.socket] = []
        self._listener = socket.socket()
        if rcvbuf is not None:  # inherited by accepted sockets: a small window fills after a few KiB
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._behaviour, args=(conn, self.stop), daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self._listener.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def stallers() -> Iterator[list[Staller]]:
    made: list[Staller] = []
    yield made
    for staller in made:
        staller.close()


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Accept, then say and read nothing until released (a TLS server stalling before its ServerHello, a server
    that never reads the request)."""
    stop.wait()


def _read_head(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def drip_status_line(conn: socket.socket, stop: threading.Event) -> None:
    """The status line and headers one byte at a time, far inside the read timeout, never finishing."""
    _read_head(conn)
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100_000:
        if stop.wait(0.02):
            return
        try:
            conn.sendall(bytes([byte]))
        except OSError:
            return


def endless_chunks(conn: socket.socket, stop: threading.Event) -> None:
    """Chunked encoding whose last chunk never comes."""
    _read_head(conn)
    try:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not stop.wait(0.02):
            conn.sendall(b"1\r\nx\r\n")
    except OSError:
        return


def continue_then_nothing(conn: socket.socket, stop: threading.Event) -> None:
    """An unasked-for `100 Continue`, then silence."""
    _read_head(conn)
    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    stop.wait()


def server_hello_then_stall(backend_port: int) -> Behaviour:
    """Relay a real TLS server's first record (the ServerHello) to the client, then stall mid-handshake."""

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        with socket.create_connection(("127.0.0.1", backend_port)) as backend:
            backend.sendall(conn.recv(65536))  # the ClientHello
            head = b""
            while len(head) < 5:
                head += backend.recv(5 - len(head))
            length = int.from_bytes(head[3:5], "big")
            record = b""
            while len(record) < length:
                record += backend.recv(length - len(record))
            conn.sendall(head + record)
            stop.wait()

    return behaviour


# --- one request -----------------------------------------------------------------------------------------------


def test_tls_server_silent_in_the_handshake_is_a_connect_timeout(stallers: list[Staller],
                                                                 session: requests.Session) -> None:
    # urllib3 reports this as a *read* timeout; the reason said "no data for <timeout> s (read timeout)", naming
    # neither the handshake nor the connect timeout that actually ran out.
    stallers.append(staller := Staller(hold))
    ex = send(session, Request("GET", f"https://127.0.0.1:{staller.port}/", timeout=5, connect_timeout=0.3))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "connect")
    assert ex.error.message == f"TLS handshake with 127.0.0.1:{staller.port} not completed within 0.3 s"


def test_tls_server_stalling_after_its_server_hello_is_a_connect_timeout(stallers: list[Staller], tmp_path: Path,
                                                                         session: requests.Session) -> None:
    cert = issue_cert(tmp_path, not_after=4_000_000_000)
    with LocalServer(tls=cert.tls) as backend:
        stallers.append(staller := Staller(server_hello_then_stall(backend.port)))
        ex = send(session, Request("GET", f"https://127.0.0.1:{staller.port}/", timeout=5,
                                              connect_timeout=0.3, ca_bundle=cert.ca_file))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "connect")
    assert ex.error.message == f"TLS handshake with 127.0.0.1:{staller.port} not completed within 0.3 s"


def test_server_that_never_reads_the_request_body_is_a_write_timeout(stallers: list[Staller],
                                                                     session: requests.Session) -> None:
    # The body fills both socket buffers and the write blocks. urllib3 sends the request under the connect timeout
    # and reports "Connection aborted."; the reason said "no data for <timeout> s (read timeout)".
    stallers.append(staller := Staller(hold, rcvbuf=4096))
    body = b"x" * (32 * 1024 * 1024)  # more than any loopback socket buffer pair holds
    ex = send(session, Request("POST", f"http://127.0.0.1:{staller.port}/upload", body=body, timeout=5,
                                          connect_timeout=0.3))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("timeout", "write")
    assert ex.error.message == (f"could not send the request to 127.0.0.1:{staller.port} within 0.3 s "
                                "(write timeout)")


@pytest.mark.parametrize(("behaviour", "sub"), [
    pytest.param(drip_status_line, "total", id="status-line-dripped"),
    pytest.param(endless_chunks, "total", id="chunked-never-ends"),
    pytest.param(continue_then_nothing, "read", id="100-continue-then-nothing"),
])
def test_stalls_after_the_request_end_at_the_request_deadline(stallers: list[Staller], behaviour: Behaviour,
                                                              sub: str, session: requests.Session) -> None:
    stallers.append(staller := Staller(behaviour))
    ex = send(session, Request("GET", f"http://127.0.0.1:{staller.port}/", timeout=0.5))
    assert ex.error is not None and ex.error.kind == "timeout"
    # A silent server is normally cut by the read timeout, but on a loaded machine the watchdog (0.1 s later) may
    # get there first; a dripping one only by the watchdog.
    assert ex.error.sub in ({sub, "total"} if sub == "read" else {sub})


# --- the whole run ---------------------------------------------------------------------------------------------


def write(base: Path, rel: str, text: str) -> None:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.mark.parametrize("extra", [pytest.param([], id="inprocess"), pytest.param(["-n", "2"], id="xdist")])
def test_a_run_against_stalling_services_ends_and_reports_every_interface(
    pytester: pytest.Pytester, local_server: LocalServer, stallers: list[Staller], extra: list[str]
) -> None:
    local_server.route("GET", "/ok/a", lambda r: {"ok": True})
    local_server.route("GET", "/ok/b", lambda r: {"ok": True})
    stallers.append(tls := Staller(hold))
    stallers.append(drip := Staller(drip_status_line))
    stallers.append(chunks := Staller(endless_chunks))
    stallers.append(login := Staller(hold))
    write(pytester.path, "config.yaml", f"""
        defaults: {{timeout: 0.5, connect_timeout: 0.3, retries: 0, max_per_host: 1}}
        services:
          ok: {{base_url: {local_server.url}/ok}}
          handshake: {{base_url: "https://127.0.0.1:{tls.port}"}}
          drip: {{base_url: "http://127.0.0.1:{drip.port}"}}
          chunks: {{base_url: "http://127.0.0.1:{chunks.port}"}}
          guarded:
            base_url: "http://127.0.0.1:{login.port}"
            auth: {{type: login, method: POST, path: /login, json: {{user: u}}, token_path: token}}
    """)
    write(pytester.path, "pool/ok/ok.yaml", "interfaces:\n  - {name: a, path: /a}\n  - {name: b, path: /b}\n")
    for service in ("handshake", "drip", "chunks", "guarded"):  # three per host, one at a time (max_per_host)
        write(pytester.path, f"pool/{service}/x.yaml",
              "interfaces:\n" + "".join(f"  - {{name: i{n}, path: /i{n}}}\n" for n in range(3)))
    result = pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out.json",
                                           "--apimon-report", "out.md", "-p", "no:cacheprovider", *extra,
                                           timeout=120)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["results"]
    got = {(r["service"], r["name"]): (r["outcome"], r.get("category"), r.get("sub")) for r in records}
    expected = {("ok", "a"): ("passed", None, None), ("ok", "b"): ("passed", None, None)}
    for n in range(3):
        expected[("handshake", f"i{n}")] = ("failed", "timeout", "connect")
        expected[("drip", f"i{n}")] = ("failed", "timeout", "total")
        expected[("chunks", f"i{n}")] = ("failed", "timeout", "total")
        expected[("guarded", f"i{n}")] = ("failed", "timeout", "login")
    assert {k: v[:2] for k, v in got.items()} == {k: v[:2] for k, v in expected.items()}
    assert {k: v[2] for k, v in got.items() if k[0] != "ok"} == {k: v[2] for k, v in expected.items() if k[0] != "ok"}
    assert (pytester.path / "out.md").is_file()
    reasons = {r["service"]: r["reason"] for r in records}
    assert "TLS handshake" in reasons["handshake"]
    assert "login endpoint did not answer in time" in reasons["guarded"]



# --- a login slower than the interface's own deadline ----------------------------------------------------------


def test_a_login_slower_than_the_interface_deadline_is_reported_as_the_login_not_as_a_hang(
    local_server: LocalServer, tmp_path: Path
) -> None:
    # The hang guard allowed one attempt 2 x the interface's timeout + 5 s, but a check may first wait for its
    # service's login, whose own deadline is the auth service's timeout (30 s here, 0.5 s for the interface): the
    # waiter called a login that was still within its deadline "the check hung (hang guard)".
    arrived, release = threading.Event(), threading.Event()

    def login(conn: RawConn) -> None:
        arrived.set()
        release.wait(30)
        conn.send(head_bytes(503, {"Content-Length": "0", "Connection": "close"}))

    local_server.raw("POST", "/login", login)
    write(tmp_path, "config.yaml", f"""
        services:
          s:
            base_url: {local_server.url}
            timeout: 30
            auth: {{type: login, method: POST, path: /login, json: {{user: u}}, token_path: token}}
    """)
    engine = Engine(load_config(tmp_path / "config.yaml"))
    waiter = threading.current_thread()
    now, looks = [0.0], [0]

    def clock() -> float:
        if threading.current_thread() is waiter and now[0]:
            looks[0] += 1  # the waiter compared the advanced clock with the attempt's budget
        return now[0]

    def advance_then_release() -> None:
        arrived.wait(30)
        now[0] = 60.0  # past 2 x 0.5 s + 5 s, well inside the login's 30 s deadline
        while looks[0] < 2 and not release.wait(0.01):  # two looks: the first one's decision has been made
            pass
        release.set()

    helper = threading.Thread(target=advance_then_release, daemon=True)
    helper.start()
    itf = Interface(name="x", service="s", module="m", method="GET", path="/x", timeout=0.5)
    runner = Runner(engine.check, concurrency=1, max_per_host=1, retry=RetryPolicy(retries=0),
                    host=lambda i: "h", clock=clock, poll=0.01,
                    deadline=lambda i: engine.attempt_budget(i) + HANG_GUARD_SLACK)  # as plugin._prefetch
    runner.start([("x", itf)])
    try:
        result = runner.result("x")
    finally:
        release.set()
        runner.close()
        engine.close()
    assert result is not None and (result.category, result.sub) == ("unavailable", "login"), result
    assert "login endpoint answered" in result.reason


# --- users' own checks (apimon_session) ------------------------------------------------------------------------


_DRIPPED = "E *Timeout: no complete response within 0.5 s (total deadline)"


@pytest.mark.parametrize(("behaviour", "needle", "extra"), [
    # Silent: the read timeout, or on a loaded machine the watchdog 0.1 s later; dripping: only the watchdog.
    pytest.param(hold, "E *requests.exceptions.*Timeout: *", [], id="silent"),
    pytest.param(drip_status_line, _DRIPPED, [], id="status-line-dripped"),
    pytest.param(drip_status_line, _DRIPPED, ["-n", "2"], id="status-line-dripped-xdist"),
])
def test_a_users_own_check_against_a_stalling_service_ends_within_the_services_timeouts(
    pytester: pytest.Pytester, local_server: LocalServer, stallers: list[Staller], behaviour: Behaviour,
    needle: str, extra: list[str]
) -> None:
    # apimon_session gave a plain requests.Session: no timeout unless the user passed one, no total deadline, and
    # pytest-timeout guards only the interface items, so a check like this one waited for ever and the run wrote
    # no report.
    local_server.route("GET", "/ok/a", lambda r: {"ok": True})
    stallers.append(staller := Staller(behaviour))
    write(pytester.path, "config.yaml", f"""
        defaults: {{timeout: 0.5, connect_timeout: 0.3, retries: 0}}
        services:
          ok: {{base_url: {local_server.url}/ok}}
          stall: {{base_url: "http://127.0.0.1:{staller.port}"}}
    """)
    write(pytester.path, "pool/ok/ok.yaml", "name: a\npath: /a\n")
    write(pytester.path, "pool/stall/test_own.py", """
        def test_totals(apimon_session):
            apimon_session("stall").get("/totals")
    """)
    result = pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out.json", "-p", "no:cacheprovider",
                                           *extra, timeout=60)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([needle])
    records = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["results"]
    assert [(r["service"], r["outcome"]) for r in records if r["service"] == "ok"] == [("ok", "passed")]


# --- the group robot at the end of the run ---------------------------------------------------------------------


def test_a_robot_endpoint_that_drips_its_answer_cannot_hold_the_end_of_the_run(
    pytester: pytest.Pytester, local_server: LocalServer, stallers: list[Staller]
) -> None:
    # The robot's POST had only requests' per-read timeout (notify.timeout): an endpoint (or a proxy in front of
    # it) sending its answer a byte at a time kept the run from ending after the report was written.
    local_server.route("GET", "/shop/boom", lambda r: Response(500, {}, "boom"))
    stallers.append(robot := Staller(drip_status_line))
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          shop: {{base_url: {local_server.url}/shop}}
        notify:
          send_on: failure
          timeout: 0.5
          max_wait: 0
          wecom:
            - {{name: ops, webhook: 693a91f6-7f2e-4bc4-97a0-0ec2b1fa5aaa, base_url: "http://127.0.0.1:{robot.port}"}}
    """)
    write(pytester.path, "pool/shop/api.yaml", "name: boom\npath: /boom\n")
    result = pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out.json", "-p", "no:cacheprovider",
                                           timeout=60)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["results"]
    assert [(r["name"], r["category"]) for r in records] == [("boom", "server_error")]
    assert "no complete response within 0.5 s" in result.stdout.str() + result.stderr.str()


def test_a_login_slower_than_the_default_timeout_is_tried_once_under_xdist(
    pytester: pytest.Pytester, local_server: LocalServer
) -> None:
    # A worker waited for another worker's login (the token cache's lock) only defaults.timeout + connect_timeout:
    # with a service timeout longer than that, it gave up while the other's login was still within its deadline
    # and logged in a second time ("logins 2", one login per run promised).
    logins = []
    release = threading.Event()

    def login(conn: RawConn) -> None:
        logins.append(conn.req.client_port)
        release.wait(30)  # silent until the client's login deadline (2 s) ends the exchange

    local_server.raw("POST", "/login", login)
    write(pytester.path, "config.yaml", f"""
        defaults: {{timeout: 0.3, connect_timeout: 0.2, retries: 0}}
        services:
          s:
            base_url: {local_server.url}
            timeout: 2
            auth: {{type: login, method: POST, path: /login, json: {{user: u}}, token_path: token}}
    """)
    write(pytester.path, "pool/s/x.yaml", "interfaces:\n  - {name: a, path: /a}\n  - {name: b, path: /b}\n")
    try:
        result = pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out.json", "-p",
                                               "no:cacheprovider", "-n", "2", timeout=60)
    finally:
        release.set()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["results"]
    assert sorted((r["name"], r["category"], r["sub"]) for r in records) == [("a", "timeout", "login"),
                                                                           ("b", "timeout", "login")]
    assert len(logins) == 1
