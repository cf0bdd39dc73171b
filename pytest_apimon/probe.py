"""One HTTP exchange: build the request, send with connect/read timeouts plus a total deadline,
read the body up to a cap, measure latency. Returns an Exchange; never raises for network trouble.

Why a total deadline needs extra machinery: connect/read timeouts apply per socket operation, so
a server that sends one byte per second (status line, headers or body) never trips them. We make
urllib3 use connection subclasses that, on connect() and request(), register themselves with the
"deadline guard" of the send() running in the current thread (thread-local; requests runs the
adapter in the caller's thread). The guard is a threading.Timer: at the deadline it marks itself
fired and shutdown(SHUT_RDWR)s the registered connection's socket, so the blocked recv returns EOF
or raises; send() then reports a total timeout whatever exception (or short body) resulted.
Only public extension points are used: HTTPAdapter.init_poolmanager/proxy_manager_for, the
PoolManager's pool_classes_by_scheme and the pools' ConnectionCls.

Safety against firing into a later request: send() calls guard.finish() before returning; firing
and finishing are serialised by a lock, and the watchdog only touches a connection whose current
owner is still its own guard (a connection released to the pool and reused by another thread's
request gets a new owner). A fired connection is never reused: an incomplete response is closed
(which closes its connection), and a socket shut down after the body was complete reads as EOF,
which urllib3's pool detects as "dropped" and replaces.
"""

from __future__ import annotations

import heapq
import http.client
import http.cookiejar
import ipaddress
import itertools
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family
from urllib3.util.retry import Retry

from . import certs
from .errors import ApimonError
from .origins import origin_of
from .redact import is_credential_header, is_secret_name

log = logging.getLogger("pytest_apimon")
_CHUNK = 64 * 1024
# The watchdog fires slightly after the socket read timeout (both equal req.timeout), so a server
# that stays silent is reported as a read timeout and one that trickles bytes as a total timeout.
_GRACE_S = 0.1
# Bytes of a request body kept for reports. The engine masks them and only then cuts its 2 KiB excerpt
# (engine.REQUEST_EXCERPT, redact.excerpt): the margin lets a credential crossing that cut be masked whole.
_REQUEST_BODY_EXCERPT = 2048 + 4096


@dataclass
class ProbeError:
    # "response": the server answered but the response cannot be read (not a transport fault: not retried).
    kind: str  # "timeout" | "network" | "response" | "redirects" | "invalid_url" | "other"
    # timeout: connect (TCP, TLS handshake) | write (sending the request) | read | total;
    # network: dns|refused|reset|tls|proxy|other;
    # response: decode (Content-Encoding) | headers (too many / too long) | chunked | status_line
    sub: str
    message: str  # short human text, no secrets added by us


@dataclass
class Request:
    """A fully resolved request (URL joined, headers merged, auth applied)."""

    method: str
    url: str
    # Credentials live in these: kept out of repr, so a traceback's function arguments never show them.
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    json: Any = field(default=None, repr=False)
    has_json: bool = False
    form: dict[str, Any] | None = field(default=None, repr=False)
    body: str | bytes | None = field(default=None, repr=False)
    timeout: float = 10.0  # total deadline, seconds
    connect_timeout: float = 5.0
    verify_tls: bool = True
    ca_bundle: str | None = None  # CA certificates (PEM file or folder) to verify with instead of the system's
    max_body_bytes: int = 1024 * 1024
    # False: a 3xx is the answer (Postman's followRedirects: false, or a 3xx listed in expect.status)
    follow_redirects: bool = True
    credential_headers: tuple[str, ...] = ()  # headers holding a credential the tool added (see CredentialSession)
    credential_params: tuple[str, ...] = ()  # query parameters holding one


@dataclass
class Exchange:
    method: str
    url: str  # final URL requested (with query string)
    request_headers: dict[str, str] = field(repr=False)
    request_body: str | None = field(repr=False)  # excerpt as text
    status: int | None = None
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)  # at most max_body_bytes
    truncated: bool = False
    elapsed_ms: float = 0.0
    error: ProbeError | None = None
    # HTTPS origin of each hop -> its certificate's notAfter (epoch seconds), from the connection used (certs.py).
    certificates: dict[str, float] = field(default_factory=dict)

    def charset(self) -> str | None:
        """The charset named in Content-Type, if any (RFC 9110 §8.3.2)."""
        return _charset(self.response_headers)

    def text(self, limit: int | None = None) -> str:
        """Body decoded (charset from headers, else utf-8, replacement on errors), optionally cut."""
        charset = _charset(self.response_headers) or "utf-8"
        try:
            text = self.body.decode(charset, errors="replace")
        except LookupError:  # unknown charset name in the header
            text = self.body.decode("utf-8", errors="replace")
        return _cut(text, limit)


def proxy_in_use(url: str, proxies: Mapping[str, str] | None = None) -> str | None:
    """The proxy requests would use for `url` (HTTP_PROXY/HTTPS_PROXY/ALL_PROXY, NO_PROXY honoured), without
    its userinfo; None when the request goes direct."""
    env = requests.utils.get_environ_proxies(url) if proxies is None else proxies
    proxy = requests.utils.select_proxy(url, dict(env)) if env else None
    if not proxy:
        return None
    return _without_userinfo(proxy)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url if "://" in url else "http://" + url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _charset(headers: dict[str, str]) -> str | None:
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", ctype, re.IGNORECASE)
    return m.group(1) if m else None


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


# --- total deadline -------------------------------------------------------------------------

_local = threading.local()
_owner_lock = threading.Lock()  # serialises attach/fire/finish across threads


class _Watchdog:
    """One daemon thread firing every guard's deadline, in deadline order.

    A `threading.Timer` per request started and joined a thread per send(): the largest CPU cost per
    interface after requests itself (profile in docs/benchmarks.md). A finished guard stays in the heap until
    its deadline and is then skipped (its `_fire` returns at once)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _DeadlineGuard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, seconds: float, guard: _DeadlineGuard) -> None:
        with self._cond:
            entry = (time.monotonic() + seconds, next(self._seq), guard)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._loop, name="apimon-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:  # only an earlier deadline than the one waited for needs a wake-up
                self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, guard = heapq.heappop(self._heap)
            if not guard._done:
                guard._fire()


_watchdog = _Watchdog()


class _DeadlineGuard:
    """Watchdog for one send(): at the deadline, shut down the connection currently in use."""

    def __init__(self, seconds: float, request_timeout: float | None = None, dns_timeout: float | None = None) -> None:
        self.fired = False
        self._done = False
        self._conn: HTTPConnection | None = None
        self._seconds = seconds
        self.request_timeout = seconds if request_timeout is None else request_timeout
        # A lookup is part of connecting (as curl's --connect-timeout counts it): the connect timeout, and never
        # past the request's deadline.
        self.dns_timeout = self.request_timeout if dns_timeout is None else min(dns_timeout, self.request_timeout)
        self.ends_at = float("inf")  # monotonic time at which the request's deadline passes

    def start(self) -> None:
        self.ends_at = time.monotonic() + self.request_timeout
        _watchdog.add(self._seconds, self)

    def attach(self, conn: HTTPConnection) -> None:
        with _owner_lock:
            self._conn = conn
            conn._apimon_guard = self  # type: ignore[attr-defined]
            if self.fired:  # deadline already passed (e.g. during a redirect hop)
                _shutdown(conn)

    def _fire(self) -> None:
        with _owner_lock:
            if self._done:
                return
            self.fired = True
            conn = self._conn
            if conn is not None and getattr(conn, "_apimon_guard", None) is self:
                _shutdown(conn)

    def finish(self) -> None:
        """After this returns the watchdog can no longer touch any connection."""
        with _owner_lock:
            self._done = True
            conn = self._conn
            if conn is not None and getattr(conn, "_apimon_guard", None) is self:
                conn._apimon_guard = None  # type: ignore[attr-defined]
            self._conn = None


def _shutdown(conn: HTTPConnection) -> None:
    # http.client sets conn.sock = None when a response will close the connection (e.g. a body
    # delimited by EOF) and hands the socket to the response, hence the copy taken at connect().
    sock = conn.sock or getattr(conn, "_apimon_sock", None)
    if sock is None:
        return  # still connecting: connect() re-checks after it returns
    try:
        # socket.socket.shutdown, not SSLSocket.shutdown: only unblock the fd, keep the TLS object
        # intact for the thread that is blocked reading from it.
        if isinstance(sock, socket.socket):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:  # e.g. urllib3's SSLTransport (TLS inside an HTTPS proxy)
            sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
    except OSError:
        pass  # already closed


def _current_guard() -> _DeadlineGuard | None:
    return getattr(_local, "guard", None)


# --- name resolution within the deadline -------------------------------------------------------
#
# getaddrinfo() has no timeout, and urllib3 calls it before any socket timeout applies: a resolver that takes 8 s
# to fail held a request with `timeout: 2` for 8 s and was then reported as a total timeout. So each new connection
# resolves its host in a worker thread and waits at most the connect timeout, never past the request's deadline; the
# connection then connects to the resolved addresses while keeping the host name for the Host header, TLS SNI and
# certificate checks.


class DNSTimeout(u3.NameResolutionError):
    """The resolver did not answer in time (seconds: the time it was given, the connect timeout capped by the
    request's deadline)."""

    def __init__(self, host: str, conn: Any, seconds: float) -> None:
        self.host = host
        self.seconds = seconds
        # EAI_AGAIN is what glibc reports for a resolver that does not answer in time.
        super().__init__(host, conn, socket.gaierror(socket.EAI_AGAIN, f"no answer within {_fmt_s(seconds)} s"))


_dns_lock = threading.Lock()
_dns_inflight: dict[tuple[str, int, int], Future[list[Any]]] = {}


def _lookup(key: tuple[str, int, int], future: Future[list[Any]]) -> None:
    try:
        future.set_result(socket.getaddrinfo(key[0], key[1], key[2], socket.SOCK_STREAM))
    except Exception as exc:  # gaierror, UnicodeError for odd names, ...
        future.set_exception(exc)
    finally:
        with _dns_lock:
            _dns_inflight.pop(key, None)


def resolve(host: str, port: int, timeout: float) -> list[Any]:
    """getaddrinfo(host, port) waiting at most `timeout` seconds: addrinfo tuples, or socket.gaierror, or
    FutureTimeout. Lookups of the same name in flight at once share one worker thread (a dead resolver costs one
    thread per name, not per request); nothing is cached beyond that, the system resolver keeps its own TTLs.
    Worker threads are daemons: a lookup that never returns cannot hold the process at exit."""
    key = (host, port, allowed_gai_family())
    with _dns_lock:
        future = _dns_inflight.get(key)
        if future is None:
            future = Future()
            _dns_inflight[key] = future
            threading.Thread(target=_lookup, args=(key, future), name="apimon-dns", daemon=True).start()
    return future.result(timeout=max(0.0, timeout))


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


# --- connections: deadline guard, resolution, stale keep-alive connections -----------------------

# RFC 9110 §9.2.2: methods whose repetition has the same effect on the server as one request.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class _StatusLineMarker(http.client.HTTPResponse):
    """Notes (thread-locally) that a status line arrived: after that, a broken connection is a real fault."""

    def _read_status(self) -> Any:  # http.client's status-line reader (the same since Python 3.0)
        status = super()._read_status()  # type: ignore[misc]
        _local.response_started = True
        return status


class _GuardMixin:
    response_class: Any = _StatusLineMarker  # http.client.HTTPConnection builds its responses from this
    _dns_host: str  # urllib3.HTTPConnection: the name it resolves and connects to (host stays for Host/SNI)

    def connect(self) -> None:
        guard = _current_guard()
        if guard is not None:
            guard.attach(self)  # type: ignore[arg-type]
        self._apimon_served = 0  # requests answered on this connection since it was opened
        _local.reused = False  # whatever fails while connecting failed on a fresh connection
        _local.phase = "connect"  # TCP connect, proxy tunnel, TLS handshake (see _map_error)
        super().connect()  # type: ignore[misc]
        _local.phase = "send"  # connected: next comes the request (http.client connects from inside request())
        self._apimon_sock = self.sock  # type: ignore[attr-defined]
        if isinstance(self, HTTPSConnection):
            self._apimon_not_after = certs.peer_not_after(self.sock)
        if guard is not None and guard.fired:  # deadline passed while connecting
            _shutdown(self)  # type: ignore[arg-type]

    def _new_conn(self) -> socket.socket:
        # urllib3's socket factory (HTTPConnection._new_conn, called by connect()): resolve first, within the
        # deadline, then let urllib3 connect to each resolved address in turn (its own error mapping, socket
        # options and audit event). `_dns_host` is the name urllib3 resolves; `host` (Host, SNI) is untouched.
        guard = _current_guard()
        name = self._dns_host
        if guard is None or _is_ip_literal(name):
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        left = guard.ends_at - time.monotonic()
        if left <= 0:
            raise u3.ConnectTimeoutError(self, f"no time left to resolve {name}")
        try:
            infos = resolve(name, self.port, min(guard.dns_timeout, left))  # type: ignore[attr-defined]
        except FutureTimeout:
            raise DNSTimeout(name, self, guard.dns_timeout) from None
        except socket.gaierror as exc:
            raise u3.NameResolutionError(self.host, self, exc) from exc  # type: ignore[attr-defined,arg-type]
        except (UnicodeError, ValueError):  # a name getaddrinfo cannot encode: urllib3 reports it (no lookup made)
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        addresses = list(dict.fromkeys(_literal(info[4]) for info in infos))
        last: BaseException | None = None
        try:
            for address in addresses:
                self._dns_host = address
                try:
                    return super()._new_conn()  # type: ignore[misc,no-any-return]
                except (u3.NewConnectionError, u3.ConnectTimeoutError) as exc:
                    last = exc
        finally:
            self._dns_host = name
        assert last is not None  # getaddrinfo never returns an empty list
        raise last

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        # Called for every request, also on reused keep-alive connections.
        guard = _current_guard()
        if guard is not None:
            guard.attach(self)  # type: ignore[arg-type]
        reused = self.sock is not None and getattr(self, "_apimon_served", 0) > 0  # type: ignore[attr-defined]
        if reused and (getattr(_local, "fresh_only", False) or method.upper() not in IDEMPOTENT_METHODS):
            # A resend after a stale connection goes out on a fresh one; a non-idempotent request never rides on
            # a reused connection at all, since it could not be resent if the server had dropped it (RFC 9112
            # §9.3.1). http.client reconnects (through connect() above) when the request is sent.
            self.close()  # type: ignore[attr-defined]
            reused = False
        _local.fresh_only = False
        _local.reused = reused
        _local.response_started = False
        _local.phase = "send"
        super().request(method, url, *args, **kwargs)  # type: ignore[misc]
        _local.phase = "wait"  # the request is out: what times out now is the wait for the answer
        self._apimon_served = getattr(self, "_apimon_served", 0) + 1


# --- certificates -------------------------------------------------------------------------------
#
# Why the connection's own certificate: it is the one the request was actually served with (the same proxy,
# SNI, CA bundle and verify setting), it costs no extra handshake, and its DER form is available with
# verification off too (`getpeercert(binary_form=True)`; the decoded form is empty then). It is read once per
# connection, in connect(), because http.client may hand the socket over to a response and forget it; a
# response hook then files it under the hop's origin (`HTTPResponse.connection`, urllib3's public property).


def _cert_recorder(ex: Exchange) -> Any:
    """A response hook (run for every hop): the serving connection's certificate, filed under the hop's origin."""

    def record(resp: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
        try:
            when = getattr(getattr(resp.raw, "connection", None), "_apimon_not_after", None)
            origin = origin_of(resp.url)
            if when is not None and origin is not None and origin.startswith("https://"):
                ex.certificates[origin] = when
        except Exception as exc:  # never let an inspection hide the answer
            log.warning("cannot record the TLS certificate for %s: %s", resp.url, exc)
        return resp

    return record


def _expired(exc: BaseException) -> bool:
    """A verified handshake refused the certificate because it has expired (OpenSSL X509_V_ERR_CERT_HAS_EXPIRED)."""
    return any(isinstance(e, ssl.SSLCertVerificationError) and e.verify_code == 10 for e in _chain(exc))


def _literal(sockaddr: tuple[Any, ...]) -> str:
    address = str(sockaddr[0])
    if len(sockaddr) >= 4 and sockaddr[3]:  # IPv6 scope id (link-local)
        address = f"{address}%{sockaddr[3]}"
    return address


class _GuardedHTTPConnection(_GuardMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardMixin, HTTPSConnection):
    pass


# Errors that mean "the peer dropped the connection": on a reused connection before the status line, that is a
# keep-alive connection the server had already given up on (nginx after keepalive_timeout, a load balancer's idle
# timeout), not an answer. RemoteDisconnected is a ConnectionResetError.
_DROPPED = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


def _is_stale(method: str | None, error: BaseException | None) -> bool:
    if error is None or method is None or method.upper() not in IDEMPOTENT_METHODS:
        return False
    if not getattr(_local, "reused", False) or getattr(_local, "response_started", False):
        return False
    guard = _current_guard()
    if guard is not None and guard.fired:  # our own watchdog shut the socket: a timeout, not a stale connection
        return False
    chain = _chain(error)
    if _first(chain, TimeoutError, u3.TimeoutError):
        return False
    return _first(chain, *_DROPPED) is not None


_NO_RETRY = Retry(0, read=False)  # what requests uses for max_retries=0: every error is raised at once


class _StaleConnectionResend(Retry):
    """urllib3's retry mechanism limited to one case: resend once, on a fresh connection, a request that died on a
    reused keep-alive connection before any byte of the response arrived, for idempotent methods only. This is what
    browsers and curl do; it is part of sending the request, not a retry of the check (attempts stay 1).

    The same holds for a 408 Request Timeout on a reused connection: servers send it unsolicited when they close an
    idle keep-alive connection, so it answers no request of ours (Chromium and Firefox resend it the same way).

    Why a Retry subclass: urllib3's urlopen() already discards the broken connection and re-issues the request
    through the pool when Retry.increment() returns; plain Retry settings cannot express "only on a reused
    connection, only before the status line" (read=1 would also resend after a read timeout or on a fresh
    connection). Everything else is raised at once, exactly as with max_retries=0. Other status-based retries and
    Retry-After are off here: 429/503 are retried by the runner, where the deadline and the report know of them.
    """

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Any:
        resend_408 = error is None and response is not None and getattr(_local, "fresh_only", False)
        if self.total and (resend_408 or _is_stale(method, error)):
            _local.fresh_only = True
            return super().increment(method, url, response, error, _pool, _stacktrace)
        return _NO_RETRY.increment(method, url, response, error, _pool, _stacktrace)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if (status_code == 408 and self.total and method.upper() in IDEMPOTENT_METHODS
                and getattr(_local, "reused", False)):
            _local.fresh_only = True  # read by increment() next, then by the resend's request()
            return True
        return False


_STALE_RESEND = _StaleConnectionResend(
    total=1, connect=0, read=1, other=1, status=1, redirect=0, backoff_factor=0,
    respect_retry_after_header=False, raise_on_status=False, raise_on_redirect=False,
)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_POOL_CLASSES = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):  # HTTP(S) proxy; SOCKS has its own classes
            manager.pool_classes_by_scheme = dict(_POOL_CLASSES)
        return manager


class CredentialSession(requests.Session):
    """A Session that drops every credential on a redirect to another origin (see origins.py).

    requests' own rebuild_auth strips only `Authorization` (and reads ~/.netrc); here a redirect whose
    target origin differs from the previous hop's loses the Authorization, Proxy-Authorization and Cookie
    headers, every header or query parameter registered in credential_headers / credential_params (a token
    sent as `X-Auth-Token`, a static `X-Api-Key`), every header that is a credential by name or value
    (redact.is_credential_header) and every parameter with a secret-looking name. requests builds each hop
    from the previous one, so a credential dropped once stays dropped for the rest of the chain, also when it
    comes back to the first origin. A 307/308 redirect to another origin resends the request body (RFC 9110
    15.4.8): when that body carries a secret (`mask` changes it: a known secret, or a secret-looking field such
    as a password), the redirect is refused (RefusedRedirect, raised by _redirect_checker before requests
    follows it) instead of handing the body to that origin.
    """

    def __init__(self) -> None:
        super().__init__()
        self.credential_headers: set[str] = set()  # lower-case names; only ever grows (shared by threads)
        self.credential_params: set[str] = set()
        # Values known to be secret (a token a server echoed into its Location under a harmless name).
        self.is_known_secret: Callable[[str], bool] = lambda _value: False
        self.mask: Callable[[str], str] = lambda text: text  # the run's masking (redact.Redactor.text)
        self.environment: Environment | None = None  # proxies and CA bundle, read at the first send

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        if origin_of(prepared_request.url) == origin_of(response.request.url):
            return
        headers = {h.lower() for h in self.credential_headers}  # Authorization, Cookie…: is_secret_name
        for name, value in list(prepared_request.headers.items()):
            if name.lower() in headers or is_credential_header(name, value) or self._carries_secret(value):
                del prepared_request.headers[name]
        parts = urlsplit(prepared_request.url or "")
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = [(k, v) for k, v in pairs
                     if k not in self.credential_params and not is_secret_name(k) and not self._carries_secret(v)]
            if len(query) != len(pairs):  # else keep the server's own encoding of the query
                prepared_request.url = urlunsplit(parts._replace(query=urlencode(query)))

    def _carries_secret(self, value: str | bytes) -> bool:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        return any(self.is_known_secret(part) for part in (text, *text.split(None, 1)[1:]))


def new_session(verify_tls: bool = True, pool_size: int = 10, max_redirects: int = 5) -> CredentialSession:
    """A Session whose connections support the total deadline (see send).

    Shared by every thread checking one service, so it is configured once here and never changed per request.
    It keeps no cookies: a login's session cookie must not make `auth: false` interfaces (or a broken token)
    pass, and each check must see the service as a fresh client would. No ~/.netrc credentials either.
    """
    session = CredentialSession()
    session.verify = verify_tls
    session.max_redirects = max_redirects
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.auth = _no_auth  # a session-level auth stops requests from reading ~/.netrc on every request
    guard_connections(session, pool_size)
    if not verify_tls:
        _quiet_insecure()
    return session


def guard_connections(session: requests.Session, pool_size: int = 10) -> None:
    """Mount, for http:// and https://, the adapter whose connections a total deadline can cut (send,
    within_deadline), with the one resend after a stale keep-alive connection (_StaleConnectionResend)."""
    adapter = _DeadlineAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=_STALE_RESEND)
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def within_deadline(seconds: float, connect_timeout: float, call: Callable[[], requests.Response]
                    ) -> requests.Response:
    """`call()` (a Session.send on a session set up by guard_connections) cut at `seconds` after it starts, as
    send() cuts its requests: for users' own requests (engine.ServiceSession), which run outside send().

    Returns call()'s response; raises requests.Timeout ("no complete response within N s (total deadline)") when
    the deadline cut the exchange, else whatever call() raises. A call made while a deadline already runs on this
    thread (a redirect hop, which requests sends through Session.send again) runs under that one."""
    if _current_guard() is not None:
        return call()
    guard = _DeadlineGuard(seconds + _GRACE_S, seconds, connect_timeout)
    _local.guard = guard
    guard.start()
    try:
        resp = call()
    except Exception as exc:
        if guard.fired:
            raise requests.Timeout(_total_timeout_text(seconds)) from exc
        raise
    finally:
        guard.finish()
        _local.guard = None
    if guard.fired:  # an EOF-delimited body ends "normally" when the socket is shut down
        resp.close()
        raise requests.Timeout(_total_timeout_text(seconds))
    return resp


def _no_auth(r: requests.PreparedRequest) -> requests.PreparedRequest:
    return r


def _quiet_insecure() -> None:
    # The user opted out of verification explicitly; a warning per request would only be noise.
    urllib3.disable_warnings(u3.InsecureRequestWarning)


# --- send -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """The proxy and CA-bundle settings requests would take from the environment, read once.

    requests reads them on every request (`Session.merge_environment_settings`: it iterates `os.environ`
    through urllib's `getproxies`, ~0.5 ms of CPU), while pytest sets and deletes `PYTEST_CURRENT_TEST` on the
    main thread for every item: an iteration racing with that deletion raised `KeyError: 'PYTEST_CURRENT_TEST'`
    in a checking thread and failed a healthy interface (seen at 10 000 interfaces, docs/benchmarks.md). Read
    once per session instead (the environment does not change during a run), retrying a read that raced.
    """

    proxies: dict[str, str]  # scheme -> proxy URL; key "no": the no_proxy list (urllib's getproxies shape)
    ca_bundle: str | None  # REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, as requests uses it

    @classmethod
    def read(cls) -> Environment:
        for _ in range(5):
            try:
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                return cls(dict(urllib.request.getproxies()), bundle)
            except (KeyError, RuntimeError):  # another thread changed os.environ during the iteration
                continue
        return cls({}, None)

    def settings(self, url: str, verify: bool, ca_bundle: str | None = None) -> dict[str, Any]:
        """`Session.send` keyword arguments, as `merge_environment_settings(url, {}, True, verify, None)`; a
        service's own `ca_bundle` comes before REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE."""
        proxies = {k: v for k, v in self.proxies.items() if k != "no"}
        if proxies and self._bypass(url):
            proxies = {}
        bundle = ca_bundle or self.ca_bundle
        return {"proxies": proxies, "stream": True, "verify": (bundle or True) if verify else False, "cert": None}

    def _bypass(self, url: str) -> bool:
        # requests.utils.should_bypass_proxies without its os.environ reads and writes (it sets no_proxy in
        # os.environ around urllib's check): requests' CIDR / suffix match, then urllib's.
        no_proxy = self.proxies.get("no", "")
        parts = urlsplit(url)
        host = parts.hostname
        if host is None:
            return True
        if not no_proxy:
            return False
        entries = [e for e in no_proxy.replace(" ", "").split(",") if e]
        if requests.utils.is_ipv4_address(host):
            for entry in entries:
                if requests.utils.is_valid_cidr(entry):
                    if requests.utils.address_in_network(host, entry):
                        return True
                elif host == entry:
                    return True
        else:
            with_port = f"{host}:{parts.port}" if parts.port else host
            if any(host.endswith(e) or with_port.endswith(e) for e in entries):
                return True
        return bool(urllib.request.proxy_bypass_environment(host, self.proxies))  # type: ignore[attr-defined]


def send(session: requests.Session, req: Request) -> Exchange:
    """Send req; enforce connect/read timeouts and the total deadline; cap the body."""
    ex = Exchange(method=req.method.upper(), url=req.url, request_headers={}, request_body=None)
    headers = dict(req.headers)
    data: Any = req.form if req.form is not None else req.body
    if req.has_json and req.json is None:  # requests treats json=None as "no body"; we mean null
        data = b"null"
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    try:
        prepared = session.prepare_request(
            requests.Request(
                method=ex.method,
                url=req.url,
                params=req.params or None,
                headers=headers or None,
                json=req.json if req.has_json else None,
                data=data,
            )
        )
    except Exception as exc:  # malformed URL, or a body that cannot be encoded (our bug, not the server's)
        mapped = _map_error(exc, fired=False, req=req, url=req.url)
        ex.error = mapped if mapped.kind == "invalid_url" else ProbeError("other", "request", mapped.message)
        return ex
    _describe_request(ex, prepared)
    env = getattr(session, "environment", None)
    if not isinstance(env, Environment):
        env = Environment.read()
        if isinstance(session, CredentialSession):
            session.environment = env  # two threads may both read it first: the same values, no harm
    settings = env.settings(prepared.url or req.url, req.verify_tls, req.ca_bundle)
    if not req.verify_tls:
        _quiet_insecure()  # a per-request opt-out (an imported collection's strictSSL: false) is just as explicit
    if isinstance(session, CredentialSession):
        session.credential_headers.update(h.lower() for h in req.credential_headers)
        session.credential_params.update(req.credential_params)

    # Hooks are copied to every hop by requests' resolve_redirects (PreparedRequest.copy).
    prepared.register_hook("response", [_cert_recorder(ex),
                                        *([_redirect_checker(session)] if req.follow_redirects else [])])
    guard = _DeadlineGuard(req.timeout + _GRACE_S, req.timeout, req.connect_timeout)
    outer = _current_guard()  # a login inside a user's request (auth.SessionAuth): restored afterwards
    _local.guard = guard
    _local.fresh_only = _local.reused = _local.response_started = False
    _local.phase = None
    resp: requests.Response | None = None
    complete = False
    start = time.perf_counter()
    guard.start()
    try:
        resp = session.send(
            prepared,
            timeout=(min(req.connect_timeout, req.timeout), req.timeout),
            allow_redirects=req.follow_redirects,
            **settings,
        )
        _describe_request(ex, resp.request)  # after redirects: the last request sent
        ex.url = resp.url
        ex.status = resp.status_code
        ex.reason = resp.reason or ""
        ex.response_headers = dict(resp.headers)
        complete = _read_body(resp, req.max_body_bytes, ex)
    except Exception as exc:
        ex.error = _map_error(exc, fired=guard.fired, req=req, url=ex.url, max_redirects=session.max_redirects)
        proxy = proxy_in_use(ex.url, settings.get("proxies") or {})
        if proxy and not guard.fired and _first(_chain(exc), requests.exceptions.ProxyError, u3.ProxyError):
            # The proxy refused or failed, not the target: say which proxy (credentials left out), and name it,
            # not the target, as the one refusing or resetting.
            via = _map_error(exc, fired=False, req=req, url=ex.url, max_redirects=session.max_redirects,
                             peer=_hostport(proxy))
            ex.error = ProbeError("network", "proxy", _short(f"proxy {proxy} failed: {via.message}"))
        _explain_expired(ex, exc, req, settings, guard)
    finally:
        ex.elapsed_ms = (time.perf_counter() - start) * 1000
        guard.finish()
        _local.guard = outer
        if resp is not None:
            if not complete or guard.fired:
                resp.raw.close()  # closes the connection: never reuse a half-read or shut-down one
            resp.close()
    if ex.error is None and guard.fired:
        # EOF-delimited bodies end "normally" when the socket is shut down.
        ex.error = _total_timeout(req)
    return ex


def _explain_expired(ex: Exchange, exc: BaseException, req: Request, settings: dict[str, Any],
                     guard: _DeadlineGuard) -> None:
    """An expired certificate stays a TLS failure (network/tls, as any refused handshake); its message gains
    the notAfter, read by one more handshake within what is left of the request's deadline."""
    if ex.error is None or ex.error.sub != "tls" or guard.fired or not _expired(exc):
        return
    left = min(guard.ends_at - time.monotonic(), req.connect_timeout)
    origin = origin_of(ex.url)
    if left <= 0 or origin is None or not origin.startswith("https://"):
        return
    proxies = settings.get("proxies") or {}
    proxy = requests.utils.select_proxy(ex.url, proxies) if proxies else None
    when = certs.expired_not_after(ex.url, proxy, left, resolve=resolve)
    if when is None:
        return
    ex.certificates[origin] = when
    ex.error = ProbeError("network", "tls", _short(f"TLS error: {certs.describe(origin, when, time.time())}"))


class MalformedRedirect(ApimonError):
    """A redirect arrived whose Location cannot be followed (malformed URL, unsupported scheme)."""

    def __init__(self, host: str, location: str, problem: BaseException) -> None:
        text = " ".join(str(problem).split()) or type(problem).__name__
        super().__init__(f"redirect from {host} to a malformed Location {location!r}: {text}")


class RefusedRedirect(ApimonError):
    """A 307/308 redirect to another origin would resend a request body that carries a credential."""

    def __init__(self, host: str, location: str, status: int) -> None:
        super().__init__(f"{status} redirect from {host} to another origin ({_hostport(location)}) not followed: "
                         "it would resend a request body that carries a credential")


def _redirect_checker(session: requests.Session) -> Any:
    """A response hook: before requests follows a redirect (Session.resolve_redirects), build the next URL the
    way it will, so a malformed Location raises MalformedRedirect here instead of a bare ValueError/InvalidURL
    there, which would read as a transport fault and be retried although the reply arrived."""

    def check(resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if not resp.is_redirect:
            return resp
        location = session.get_redirect_target(resp) or ""
        _refuse_secret_body(session, resp, location)
        try:
            url = location
            if url.startswith("//"):  # scheme-relative, as in resolve_redirects
                url = f"{urlsplit(resp.url).scheme}:{url}"
            parsed = urlsplit(url)
            url = requote_uri(url) if parsed.netloc else urljoin(resp.url, requote_uri(url))
            requests.PreparedRequest().prepare_url(url, None)
            session.get_adapter(url)  # InvalidSchema for e.g. file: or ftp:
        except Exception as exc:
            raise MalformedRedirect(_hostport(resp.url), location, exc) from exc
        return resp

    return check


def _refuse_secret_body(session: requests.Session, resp: requests.Response, location: str) -> None:
    """Raise RefusedRedirect when `resp` is a 307/308 to another origin and the request body it would resend
    carries a secret (CredentialSession.mask changes it)."""
    body = resp.request.body
    if resp.status_code not in (307, 308) or not body:
        return
    target = urljoin(resp.url, location)
    if origin_of(target) == origin_of(resp.url):
        return
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    mask = getattr(session, "mask", None)
    if mask is not None and mask(text) != text:
        raise RefusedRedirect(_hostport(resp.url), target, resp.status_code)


def _read_body(resp: requests.Response, cap: int, ex: Exchange) -> bool:
    """Read up to cap bytes (decoded) into ex.body; True if the body was read to its end."""
    buf = bytearray()
    raw = resp.raw
    try:
        while True:
            # Ask for one byte more than the cap so "exactly cap bytes" is not reported as truncated.
            chunk = raw.read(min(_CHUNK, cap + 1 - len(buf)), decode_content=True)
            if not chunk:
                return True
            buf += chunk
            if len(buf) > cap:
                del buf[cap:]
                ex.truncated = True
                return False
    finally:
        ex.body = bytes(buf)  # keep what arrived even when the read failed (useful in reports)


def _describe_request(ex: Exchange, prepared: requests.PreparedRequest) -> None:
    ex.url = prepared.url or ex.url
    ex.request_headers = dict(prepared.headers)
    body = prepared.body
    if body is None:
        ex.request_body = None
        return
    raw = body.encode("utf-8", errors="replace") if isinstance(body, str) else bytes(body)
    text = raw[:_REQUEST_BODY_EXCERPT].decode("utf-8", errors="replace")
    ex.request_body = text + ("…" if len(raw) > _REQUEST_BODY_EXCERPT else "")


# --- error mapping --------------------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and everything it wraps (cause, context, exception args, urllib3 .reason)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 30:
        e = todo.pop(0)
        if any(e is s for s in seen):
            continue
        seen.append(e)
        linked = [e.__cause__, e.__context__, getattr(e, "reason", None), *getattr(e, "args", ())]
        todo.extend(x for x in linked if isinstance(x, BaseException))
    return seen


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}"


def _total_timeout(req: Request) -> ProbeError:
    return ProbeError("timeout", "total", _total_timeout_text(req.timeout))


def _total_timeout_text(seconds: float) -> str:
    return f"no complete response within {_fmt_s(seconds)} s (total deadline)"


def _hostport(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"
    except ValueError:
        return url


def _first(chain: list[BaseException], *types: type[BaseException]) -> BaseException | None:
    return next((e for e in chain if isinstance(e, types)), None)


def _map_error(exc: BaseException, *, fired: bool, req: Request, url: str, max_redirects: int = 0,
               peer: str | None = None) -> ProbeError:
    """The ProbeError for a failed send. `peer`: host:port named as the other end (a proxy) instead of the
    URL's host."""
    chain = _chain(exc)
    dns = _first(chain, DNSTimeout)
    if dns is not None:  # the lookup's own deadline ends just before the watchdog's: name it, not "total"
        assert isinstance(dns, DNSTimeout)
        return ProbeError("network", "dns", f"DNS lookup for {dns.host} did not answer within {_fmt_s(dns.seconds)} s")
    if fired:
        return _total_timeout(req)
    failing = getattr(getattr(exc, "request", None), "url", None) or url  # the hop that failed
    host = peer or _hostport(failing)

    bad_redirect = _first(chain, MalformedRedirect) or _first(chain, RefusedRedirect)
    if bad_redirect is not None:  # the reply arrived and is unusable: a retry gets the same one
        return ProbeError("response", "redirect", _short(str(bad_redirect)))
    if _first(chain, requests.TooManyRedirects):
        return ProbeError("redirects", "too_many", f"more than {max_redirects} redirects")
    bad_url = _first(
        chain,
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
        u3.LocationValueError,
    )
    if bad_url is not None:
        return ProbeError("invalid_url", "", _short(f"invalid URL: {bad_url}"))
    if _first(chain, u3.NameResolutionError, socket.gaierror):
        return ProbeError("network", "dns", f"DNS lookup failed for {urlsplit(failing).hostname}")
    if _first(chain, ConnectionRefusedError):
        return ProbeError("network", "refused", f"connection refused by {host}")
    # NewConnectionError subclasses ConnectTimeoutError but means "could not connect" (refused, ...).
    connect_to = any(isinstance(e, u3.ConnectTimeoutError) and not isinstance(e, u3.NewConnectionError) for e in chain)
    connect_s = _fmt_s(min(req.connect_timeout, req.timeout))
    if connect_to or _first(chain, requests.ConnectTimeout):
        return ProbeError("timeout", "connect", f"no connection to {host} within {connect_s} s")
    timed_out = _first(chain, requests.ReadTimeout, u3.ReadTimeoutError, TimeoutError)
    phase = getattr(_local, "phase", None)
    # urllib3 reports a TLS handshake that stalls as a *read* timeout (connectionpool._make_request) and a request
    # it cannot send as "Connection aborted."; both run under the connect timeout, not the read timeout, so the
    # thread-local phase (set by _GuardMixin) says which one it was.
    if timed_out is not None and phase == "connect":
        if any("handshake" in str(e) for e in chain):
            return ProbeError("timeout", "connect", f"TLS handshake with {host} not completed within {connect_s} s")
        return ProbeError("timeout", "connect", f"no connection to {host} within {connect_s} s")
    if timed_out is not None and phase == "send":
        return ProbeError("timeout", "write",
                          f"could not send the request to {host} within {connect_s} s (write timeout)")
    if timed_out is not None:
        return ProbeError("timeout", "read", f"no data from {host} for {_fmt_s(req.timeout)} s (read timeout)")
    tls = _first(chain, ssl.SSLError)
    if tls is not None or _first(chain, requests.exceptions.SSLError, u3.SSLError):
        return ProbeError("network", "tls", _short(f"TLS error: {_tls_text(tls or exc)}"))
    unreadable = _unreadable(chain, host)
    if unreadable is not None:
        return unreadable
    if _first(chain, ConnectionResetError):
        return ProbeError("network", "reset", f"connection reset by {host}")
    if _first(chain, http.client.RemoteDisconnected):
        return ProbeError("network", "reset", f"{host} closed the connection without a response")
    if _first(chain, http.client.IncompleteRead, u3.IncompleteRead):
        return ProbeError("network", "reset", f"{host} closed the connection mid-response")
    if _first(chain, BrokenPipeError, u3.ProtocolError, requests.exceptions.ChunkedEncodingError):
        return ProbeError("network", "reset", _short(f"connection to {host} broken: {_leaf_text(chain)}"))
    unsendable = _first(chain, UnicodeEncodeError)
    if unsendable is not None:  # e.g. a non-Latin-1 header value: our request, not the network, is at fault
        return ProbeError("other", "request", _short(f"request cannot be sent as written: {unsendable}"))
    if _first(chain, OSError, u3.HTTPError, http.client.HTTPException) is None:
        # Not a transport fault (requests' own errors are OSErrors): a bare ValueError, UnicodeError... raised
        # while requests processed what arrived. Retrying gets the same reply, so it is never `network`.
        where = "the response from" if getattr(_local, "response_started", False) else "the request to"
        return ProbeError("response", "unusable", _short(f"{where} {host} cannot be processed: "
                                                         f"{type(exc).__name__}: {exc}"))
    return ProbeError("network", "other", _short(f"{type(exc).__name__}: {exc}"))


def _unreadable(chain: list[BaseException], host: str) -> ProbeError | None:
    """A response that arrived but cannot be read: a fault of the server's answer that a retry cannot fix."""
    decode = _first(chain, u3.DecodeError, requests.exceptions.ContentDecodingError)
    if decode is not None:
        return ProbeError("response", "decode", _short(f"response body cannot be decoded: {decode}"))
    # http.client reads chunked bodies itself and reports a bad chunk-size line as IncompleteRead, chained to
    # int(line, 16)'s ValueError; an empty line there means the connection closed instead (a transport fault).
    chunk = _first(chain, u3.InvalidChunkLength)
    size = next((e for e in chain if isinstance(e, ValueError) and "with base 16" in str(e)), None)
    if (isinstance(chunk, u3.InvalidChunkLength) and chunk.length) or (size and not str(size).endswith("b''")):
        return ProbeError("response", "chunked", _short(f"broken chunked encoding from {host}: {chunk or size}"))
    invalid = _first(chain, u3.InvalidHeader)  # e.g. two different Content-Length values
    if invalid is not None:
        return ProbeError("response", "headers", _short(f"response from {host} has invalid headers: {invalid}"))
    line = _first(chain, http.client.LineTooLong)
    if line is not None:
        # http.client's text: "got more than 65536 bytes when reading header line"
        return ProbeError("response", "headers", _short(f"oversized response from {host}: {line}"))
    bad_status = next((e for e in chain if isinstance(e, http.client.BadStatusLine)
                       and not isinstance(e, http.client.RemoteDisconnected)), None)
    if bad_status is not None:
        return ProbeError("response", "status_line", _short(f"malformed HTTP status line from {host}: {bad_status}"))
    other = next((e for e in chain if type(e) is http.client.HTTPException), None)
    if other is not None:  # e.g. "got more than 100 headers" (http.client's limit)
        return ProbeError("response", "headers", _short(f"response from {host} cannot be read: {other}"))
    return None


def _tls_text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    text = str(exc)
    m = re.search(r"\[SSL(?:: [A-Z0-9_]+)?\] ([^(]+?)\s*\(_ssl", text)
    return m.group(1) if m else text


def _leaf_text(chain: list[BaseException]) -> str:
    leaf = chain[-1]
    return f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__


def _short(text: str, limit: int = 200) -> str:
    return _cut(" ".join(text.split()), limit)
