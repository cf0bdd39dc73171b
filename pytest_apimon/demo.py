"""Bundled demo services (user / nurse / admin) so the sample Interface-pool runs with no set-up.

Stdlib only, 127.0.0.1 only. Besides healthy endpoints it serves deliberately broken ones so
that every failure category of a monitoring run can be seen: 500, 503, 404, 403, a slow
endpoint, a dripping body (only a total deadline can cut it), a 200 whose body is a business
error, and a slow-ish 200 for latency checks.

The same services are also served over HTTPS on a second port with a self-signed certificate that expires
in DEMO_CERT_DAYS days (made at start, kept in memory only): the sample `portal` service shows the
certificate expiry warning (issue 16).

    python -m pytest_apimon.demo [--port 8765] [--tls-port 8766]
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import secrets
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .demo_routes import (  # re-exported: demo.CREDENTIALS etc. are part of the demo API
    CREDENTIALS,
    DEFAULT_CLI_PORT,
    DEFAULT_CLI_TLS_PORT,
    DEMO_CERT_DAYS,
    DRIP_BYTES,
    HOST,
    RETRY_AFTER,
    ROUTES,
    SERVICES,
    _Call,
    _Reply,
)

__all__ = ["CREDENTIALS", "DRIP_BYTES", "RETRY_AFTER", "ROUTES", "DemoServer", "main", "start"]


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, like real services; every reply has Content-Length
    server_version = "apimon-demo/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections do not pin a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silence the default per-request stderr logging

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _dispatch(self, head: bool = False) -> None:
        demo = self.server.demo
        split = urlsplit(self.path)
        path = split.path
        method = "GET" if head else self.command
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        demo._hit(f"{self.command} {path}")
        service, _, rest = path.lstrip("/").partition("/")
        rest = "/" + rest
        routes = ROUTES.get(service, ())
        matches = [(r, m) for r in routes if (m := r.pattern.fullmatch(rest.rstrip("/") or "/"))]
        route = next(((r, m) for r, m in matches if r.method == method), None)
        if route is None:
            if matches:
                reply = _Reply(
                    405,
                    {"code": 40500, "msg": f"不支持的请求方法 {method}"},
                    headers={"Allow": ", ".join(sorted({r.method for r, _ in matches}))},
                )
            else:
                reply = _Reply(404, {"code": 40400, "msg": "接口不存在", "path": path})
            self._send(reply, head)
            return
        r, m = route
        headers = dict(self.headers.items())
        allowed = (service,) if r.auth is None else r.auth
        if allowed and demo._token_service(headers) not in allowed:
            reply = _Reply(401, {"code": 40100, "msg": "未登录或登录已过期"}, headers={"WWW-Authenticate": "Bearer"})
            self._send(reply, head)
            return
        ctype = self.headers.get("Content-Type", "")
        call = _Call(
            demo,
            self,
            service,
            method,
            path,
            m.groupdict(),
            {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
            headers,
            body,
        )
        if body and "json" in ctype:
            try:
                call.json = json.loads(body)
            except ValueError:
                self._send(_Reply(400, {"code": 40000, "msg": "请求体不是合法的 JSON"}), head)
                return
        elif body and "x-www-form-urlencoded" in ctype:
            call.form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        out = r.fn(call)
        if out is None:  # the handler wrote the response itself, or the server is stopping
            self.close_connection = True
            return
        self._send(out, head)

    def _send(self, reply: _Reply, head: bool = False) -> None:
        if isinstance(reply.body, (bytes, str)):
            data = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        else:
            data = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops SYNs under a concurrent monitor: 1 s retransmit stalls

    def __init__(self, address: tuple[str, int], demo: DemoServer) -> None:
        self.demo = demo
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered here, in the serving thread, so stop() knows every connection that was accepted.
        t = threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True)
        self.demo._track(request, t)
        t.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self.demo._untrack(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response (timeouts, the TLS probe) are expected here: stay quiet.
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handle_error(request, client_address)


class _HTTPSServer(_HTTPServer):
    """The same services over TLS. The handshake runs in the connection's own thread (not in the accept loop),
    so one client that never completes it cannot block the others."""

    def __init__(self, address: tuple[str, int], demo: DemoServer, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, demo)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(_Handler.timeout)
        try:
            request.do_handshake()
        except (OSError, ValueError):
            return  # a client that gave up or speaks no TLS (ssl.SSLError is an OSError)
        super().finish_request(request, client_address)


def short_lived_certificate(days: float = DEMO_CERT_DAYS, now: float | None = None) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a self-signed certificate for 127.0.0.1 and localhost whose notAfter
    is `days` from `now` (epoch seconds, default the current time). Made with `cryptography`; never written to
    the repository."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    issued = dt.datetime.fromtimestamp(time.time() if now is None else now, tz=dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pytest-apimon demo")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued - dt.timedelta(days=1)).not_valid_after(issued + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    # load_cert_chain reads files only: a private folder that is removed right after loading.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="apimon-demo-") as folder:
        cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        for path, data in ((cert_file, cert_pem), (key_file, key_pem)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                fh.write(data)
        context.load_cert_chain(cert_file, key_file)
    return context


class DemoServer:
    """The demo services on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(self, port: int = 0, tls_port: int | None = 0) -> None:
        self._requested_port = port
        self._requested_tls_port = tls_port  # None: no HTTPS listener
        self._httpd: _HTTPServer | None = None
        self._httpsd: _HTTPSServer | None = None
        self.tls_port: int = 0
        self.cert_pem: bytes = b""  # the HTTPS listener's certificate (a ca_bundle that trusts it)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[Any, threading.Thread] = {}
        self._tokens: dict[str, str] = {}  # token -> service
        self._ids = 2000
        self.port: int = 0
        self.logins: Counter[str] = Counter()  # successful logins per service
        self.failed_logins: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()  # "METHOD /path" -> requests received (e.g. to count retries)

    # ---- lifecycle

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def tls_url(self) -> str:
        """The HTTPS listener (same services; its certificate expires in DEMO_CERT_DAYS days)."""
        return f"https://{HOST}:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self, port: int | None = None) -> DemoServer:
        if self._httpd is not None:
            return self
        self._stop = threading.Event()
        self._httpd = _HTTPServer((HOST, self._requested_port if port is None else port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="apimon-demo", daemon=True
        )
        self._thread.start()
        if self._requested_tls_port is not None:
            try:
                self.cert_pem, key_pem = short_lived_certificate()
                self._httpsd = _HTTPSServer((HOST, self._requested_tls_port), self,
                                            _server_context(self.cert_pem, key_pem))
            except BaseException:
                self.stop()
                raise
            self.tls_port = self._httpsd.server_address[1]
            threading.Thread(target=self._httpsd.serve_forever, kwargs={"poll_interval": 0.05},
                             name="apimon-demo-tls", daemon=True).start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving and end every handler thread (sleeping and dripping ones included)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        httpd.server_close()
        httpsd, self._httpsd = self._httpsd, None
        if httpsd is not None:
            httpsd.shutdown()
            httpsd.server_close()
        with self._lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            try:  # unblocks handlers waiting on an idle keep-alive connection
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, t in conns:
            t.join(max(deadline - time.monotonic(), 0))
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0))

    def active_connections(self) -> int:
        with self._lock:
            return sum(1 for t in self._conns.values() if t.is_alive())

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- state for tests and token work

    def token(self, service: str) -> str:
        """Log in directly (no HTTP) and return a fresh token; counted like a real login."""
        return self._issue_token(service)

    def expire_tokens(self, service: str | None = None) -> None:
        """Invalidate issued tokens (all, or one service's): the next protected call gets 401."""
        with self._lock:
            self._tokens = {t: s for t, s in self._tokens.items() if service is not None and s != service}

    def _issue_token(self, service: str) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = service
            self.logins[service] += 1
        return token

    def _count_failed_login(self, service: str) -> None:
        with self._lock:
            self.failed_logins[service] += 1

    def _token_service(self, headers: dict[str, str]) -> str | None:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._lock:
            return self._tokens.get(token.strip())

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _hit(self, key: str) -> None:
        with self._lock:
            self.hits[key] += 1

    def _track(self, sock: Any, thread: threading.Thread) -> None:
        with self._lock:
            self._conns[sock] = thread

    def _untrack(self, sock: Any) -> None:
        with self._lock:
            self._conns.pop(sock, None)


def start(port: int = 0, tls_port: int | None = 0) -> DemoServer:
    """Start the demo services in background threads; returns the running server."""
    return DemoServer(port, tls_port).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_apimon.demo", description="pytest-apimon demo services")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_CLI_PORT, help=f"port (default {DEFAULT_CLI_PORT}; 0 = any free port)"
    )
    parser.add_argument(
        "--tls-port", type=int, default=DEFAULT_CLI_TLS_PORT,
        help=f"HTTPS port, certificate expiring in {DEMO_CERT_DAYS:g} days (default {DEFAULT_CLI_TLS_PORT}; 0 = any)"
    )
    args = parser.parse_args(argv)
    try:
        server = start(args.port, args.tls_port)
    except OSError as exc:
        print(f"cannot listen on {HOST}:{args.port} / {args.tls_port}: {exc}  (try --port 0 --tls-port 0)",
              file=sys.stderr)
        return 2
    try:  # from here on Ctrl-C must stop the server, even while the banner is still being printed
        paths = ", ".join("/" + s for s in SERVICES)
        # Bilingual like the lines below: the demo has no config, so no report.language to follow.
        print(f"pytest-apimon demo services at {server.url}  ({paths}) / pytest-apimon 演示服务已启动：{server.url}"
              f"（{paths}）", flush=True)
        print(f"  export APIMON_DEMO_URL={server.url} APIMON_DEMO_HOSTPORT={server.hostport} "
              f"APIMON_DEMO_TLS_URL={server.tls_url}", flush=True)
        print(f"  HTTPS {server.tls_url}: certificate expires in {DEMO_CERT_DAYS:g} days / "
              f"证书 {DEMO_CERT_DAYS:g} 天后过期", flush=True)
        print("Ctrl-C to stop / 按 Ctrl-C 停止", flush=True)
        while True:  # short naps: a SIGINT taken by another thread is only acted on when this thread wakes
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
