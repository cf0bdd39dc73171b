"""A small threaded HTTP server on 127.0.0.1 for tests: well-behaved and misbehaving endpoints.

    with LocalServer() as srv:
        srv.route("GET", "/ok", lambda r: {"ok": True})           # dict/list -> 200 JSON
        srv.route("POST", "/echo", lambda r: Response(201, {"X": "1"}, r.body))
        srv.raw("GET", "/drip", drip_body(interval=0.2))          # raw socket behaviour
        url = srv.url + "/ok"
        srv.count("/ok")                                           # requests seen per path

Handlers receive a `Req` and return a `Response`, a `(status, body)` / `(status, headers, body)`
tuple, or just a body (bytes/str/JSON-able -> 200). Raw handlers receive a `RawConn` after the
request was read and write whatever bytes they like; the connection is closed afterwards.
Long-running raw handlers must use `conn.wait(seconds)` (returns True once the server stops) so
`stop()` is prompt. Unrouted paths get 404; handler exceptions get 500 and land in `.errors`.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    client_port: int  # distinguishes connections (keep-alive reuse keeps the port)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = b""  # bytes, str (utf-8) or JSON-able
    reason: str | None = None


@dataclass
class RawConn:
    """What a raw handler gets: the socket (request already consumed) and the stop signal."""

    sock: socket.socket
    req: Req
    stopping: threading.Event

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    def wait(self, seconds: float) -> bool:
        """Sleep; True if the server is stopping (then the handler should return)."""
        return self.stopping.wait(seconds)


Handler = Callable[[Req], Any]
RawHandler = Callable[[RawConn], None]


def _to_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple) and len(result) == 2:
        return Response(result[0], {}, result[1])
    if isinstance(result, tuple) and len(result) == 3:
        return Response(result[0], dict(result[1]), result[2])
    return Response(200, {}, result)


def _encode_body(resp: Response) -> tuple[bytes, str]:
    body = resp.body
    if isinstance(body, bytes | bytearray):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    return json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid a 40 ms stall
    server: _Server

    def setup(self) -> None:
        ctx = self.server.owner._tls
        if ctx is not None:  # handshake in the handler thread, not in the accept loop
            self.request = ctx.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Req(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_port=self.client_address[1],
        )
        owner = self.server.owner
        owner._record(req)
        self._served = getattr(self, "_served", 0) + 1  # one handler instance per connection
        if owner.reuse_fault in ("close", "reset", "408", "partial") and self._served > 1:
            # A stale keep-alive connection (nginx after keepalive_timeout): the request is read, never answered.
            self.close_connection = True
            if owner.reuse_fault == "reset":  # RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif owner.reuse_fault == "408":  # Apache/Node style: an unsolicited 408 as the idle connection closes
                self.wfile.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            elif owner.reuse_fault == "partial":  # a response started, then FIN: not stale, a real fault
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"n\":")
            return
        raw = owner._raw.get((req.method, req.path))
        if raw is not None:
            self.close_connection = True
            try:
                raw(RawConn(self.connection, req, owner._stopping))
            except OSError:
                pass  # client went away: expected for misbehaving endpoints
            return
        handler = owner._routes.get((req.method, req.path))
        if handler is None:
            resp = Response(404, {}, {"error": "no route", "path": req.path})
        else:
            try:
                resp = _to_response(handler(req))
            except Exception as exc:  # surfaced to the test via .errors
                owner.errors.append(exc)
                resp = Response(500, {}, f"handler error: {exc!r}")
        self._respond(resp)
        if owner.reuse_fault == "idle":  # closes after answering, without saying so (no Connection: close)
            self.close_connection = True

    def _respond(self, resp: Response) -> None:
        payload, ctype = _encode_body(resp)
        self.send_response(resp.status, resp.reason)
        headers = {"Content-Type": ctype, **resp.headers}
        headers.setdefault("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for handlers that drip forever
    request_queue_size = 128  # the default 5 drops SYNs under a concurrent monitor: 1 s retransmit stalls
    owner: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed TLS handshakes and vanished clients are routine in these tests


class LocalServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>; routes per (method, path).

    tls=(certfile, keyfile) serves HTTPS instead (see make_self_signed_cert).
    """

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self._tls: ssl.SSLContext | None = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self._routes: dict[tuple[str, str], Handler] = {}
        self._raw: dict[tuple[str, str], RawHandler] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.requests: list[Req] = []
        self.errors: list[BaseException] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        # "close" | "reset" | "partial": answer only the first request of each keep-alive connection; on the
        # second one close it (FIN), reset it (RST), answer 408 and close, or send the start of a response and close.
        # "idle": close every connection right after its first answer, without a Connection: close header.
        self.reuse_fault: str | None = None

    # -- lifecycle
    def start(self) -> LocalServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- routing
    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    def raw(self, method: str, path: str, handler: RawHandler) -> None:
        self._raw[(method.upper(), path)] = handler

    # -- observation
    def _record(self, req: Req) -> None:
        with self._lock:
            self._counts[req.path] += 1
            self.requests.append(req)

    def count(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def last(self, path: str | None = None) -> Req:
        with self._lock:
            return next(r for r in reversed(self.requests) if path is None or r.path == path)


# --- raw handler factories (misbehaving servers) ---------------------------------------------


def head_bytes(status: int = 200, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def drip_body(interval: float = 0.2, byte: bytes = b"x", content_length: int | None = 10**9) -> RawHandler:
    """Headers at once, then one byte per `interval`, forever (until the client leaves)."""
    headers = {"Content-Type": "text/plain"}
    if content_length is not None:
        headers["Content-Length"] = str(content_length)

    def handler(conn: RawConn) -> None:
        conn.send(head_bytes(200, headers))
        while not conn.wait(interval):
            conn.send(byte)

    return handler


def drip_headers(interval: float = 0.2) -> RawHandler:
    """The status line and headers one byte at a time, never finishing."""

    def handler(conn: RawConn) -> None:
        data = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 10**6
        for i in range(len(data)):
            if conn.wait(interval):
                return
            conn.send(data[i : i + 1])

    return handler


def sleep_then(seconds: float, response: Response | None = None) -> RawHandler:
    """Say nothing for `seconds`, then send a normal response."""
    resp = response or Response(200, {}, {"slept": seconds})

    def handler(conn: RawConn) -> None:
        if conn.wait(seconds):
            return
        payload, ctype = _encode_body(resp)
        hdrs = {"Content-Type": ctype, "Content-Length": str(len(payload)), "Connection": "close", **resp.headers}
        conn.send(head_bytes(resp.status, hdrs) + payload)

    return handler


def close_mid_response(declared: int = 1000, sent: int = 10) -> RawHandler:
    """Declare `declared` bytes, send `sent`, then close cleanly (FIN)."""

    def handler(conn: RawConn) -> None:
        conn.send(head_bytes(200, {"Content-Length": str(declared)}) + b"a" * sent)
        conn.sock.shutdown(socket.SHUT_WR)

    return handler


def reset_connection(after: bytes = b"") -> RawHandler:
    """Optionally send `after`, then abort with a TCP RST (SO_LINGER 0)."""

    def handler(conn: RawConn) -> None:
        if after:
            conn.send(after)
            time.sleep(0.05)  # let the bytes leave before the RST
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()

    return handler


def stream_bytes(total: int, chunk: int = 64 * 1024) -> RawHandler:
    """A `total`-byte body generated lazily (never held in memory on either side)."""

    def handler(conn: RawConn) -> None:
        conn.send(head_bytes(200, {"Content-Length": str(total), "Content-Type": "application/octet-stream"}))
        block = b"z" * chunk
        left = total
        while left > 0 and not conn.stopping.is_set():
            conn.send(block[: min(chunk, left)])
            left -= chunk

    return handler


def send_raw(data: bytes | Iterable[bytes]) -> RawHandler:
    """Send exactly these bytes and close."""

    def handler(conn: RawConn) -> None:
        for part in [data] if isinstance(data, bytes) else data:
            conn.send(part)

    return handler


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_self_signed_cert(directory: Path) -> tuple[str, str] | None:
    """A throw-away certificate for 127.0.0.1 via the openssl CLI; None if openssl is missing."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    cmd = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "365",  # a year: one that expires within cert_fail_days (3) would fail every check (unexpected/cert)
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return str(cert), str(key)


@dataclass
class IssuedCert:
    """A leaf certificate for 127.0.0.1 / localhost signed by a throw-away CA (trustme)."""

    tls: tuple[str, str]  # (certfile, keyfile) for LocalServer(tls=...)
    ca_file: str  # the CA's certificate (PEM): a ca_bundle that trusts the leaf
    not_after: float  # epoch seconds, whole seconds (X.509 times have no fractions)


def issue_cert(directory: Path, not_after: float, name: str = "leaf") -> IssuedCert:
    """A certificate whose notAfter is `not_after` (epoch seconds; in the past for an expired one)."""
    import datetime as dt

    import trustme

    ca = trustme.CA()
    after = dt.datetime.fromtimestamp(int(not_after), tz=dt.timezone.utc)
    before = min(after, dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=30)
    leaf = ca.issue_cert("127.0.0.1", "localhost", not_before=before, not_after=after)
    cert, key, ca_file = directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}-ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return IssuedCert((str(cert), str(key)), str(ca_file), float(int(not_after)))
