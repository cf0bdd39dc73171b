"""Bundled demo services (user / nurse / admin) so the sample Interface-pool runs with no set-up.

Stdlib only, 127.0.0.1 only. Besides healthy endpoints it serves deliberately broken ones so
that every failure category of a monitoring run can be seen: 500, 503, 404, 403, a slow
endpoint, a dripping body (only a total deadline can cut it), a 200 whose body is a business
error, and a slow-ish 200 for latency checks.

    python -m pytest_apimon.demo [--port 8765]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
DEFAULT_CLI_PORT = 8765  # matches the ${APIMON_DEMO_URL:-http://127.0.0.1:8765} default in config.yaml
SERVICES = ("user", "nurse", "admin")
CREDENTIALS: dict[str, tuple[str, str]] = {
    "user": ("demo", "demo-pass"),
    "nurse": ("nurse01", "nurse-pass"),
    "admin": ("admin", "admin-pass"),
}
SLOW_SECONDS = 3.0  # documents give the slow endpoint timeout: 1
SLOWISH_SECONDS = 0.3  # documents check it against max_ms: 100
DRIP_INTERVAL = 0.2
DRIP_BYTES = 150  # 150 x 0.2 s = 30 s, far beyond any sensible per-interface timeout
RETRY_AFTER = "1"  # short on purpose: a runner honouring Retry-After must not stall the sample run


# --------------------------------------------------------------------------- data

_USERS: list[dict[str, Any]] = [
    {"id": 1001, "username": "demo", "name": "张伟", "phone": "138****0001", "role": "member", "status": "active"},
    {"id": 1002, "username": "lina", "name": "李娜", "phone": "139****0002", "role": "member", "status": "active"},
    {"id": 1003, "username": "wangfang", "name": "王芳", "phone": "137****0003", "role": "vip", "status": "active"},
    {"id": 1004, "username": "liuyang", "name": "刘洋", "phone": "136****0004", "role": "member", "status": "locked"},
    {"id": 1005, "username": "chenjing", "name": "陈静", "phone": "135****0005", "role": "member", "status": "active"},
    {"id": 1006, "username": "zhangmin", "name": "张敏", "phone": "134****0006", "role": "vip", "status": "active"},
    {"id": 1007, "username": "yangjie", "name": "杨杰", "phone": "133****0007", "role": "member", "status": "active"},
]
_ORDERS: list[dict[str, Any]] = [
    {"id": "SO20240601001", "user_id": 1001, "amount": 128.5, "status": "paid", "title": "体检套餐（基础版）"},
    {"id": "SO20240601002", "user_id": 1001, "amount": 59.0, "status": "shipped", "title": "家用血压计"},
    {"id": "SO20240602003", "user_id": 1001, "amount": 19.9, "status": "created", "title": "医用口罩（50只）"},
]
_WARDS: list[dict[str, Any]] = [
    {"id": "W01", "name": "心内科一病区", "floor": 5, "beds": 40, "occupied": 36},
    {"id": "W02", "name": "呼吸内科病区", "floor": 6, "beds": 32, "occupied": 30},
    {"id": "W03", "name": "骨科病区", "floor": 7, "beds": 28, "occupied": 19},
]
_PATIENTS: list[dict[str, Any]] = [
    {"id": 50001, "name": "赵建国", "gender": "男", "age": 67, "ward": "W01", "bed": "05", "level": "一级护理"},
    {"id": 50002, "name": "孙秀英", "gender": "女", "age": 72, "ward": "W01", "bed": "12", "level": "二级护理"},
    {"id": 50003, "name": "李明", "gender": "男", "age": 45, "ward": "W02", "bed": "03", "level": "二级护理"},
    {"id": 50004, "name": "周丽", "gender": "女", "age": 38, "ward": "W03", "bed": "21", "level": "三级护理"},
]
_SCHEDULE: list[dict[str, Any]] = [
    {"nurse_id": "N1001", "name": "王芳", "shift": "白班", "ward": "W01", "start": "08:00", "end": "16:00"},
    {"nurse_id": "N1002", "name": "刘婷", "shift": "小夜班", "ward": "W01", "start": "16:00", "end": "00:00"},
    {"nurse_id": "N1003", "name": "陈晓", "shift": "大夜班", "ward": "W02", "start": "00:00", "end": "08:00"},
]

_STACK_TRACE = (
    'java.lang.NullPointerException: Cannot invoke "com.example.order.Address.getCity()" because "addr" is null\n'
    "\tat com.example.order.export.OrderExportService.toRow(OrderExportService.java:88)\n"
    "\tat com.example.order.export.OrderExportService.export(OrderExportService.java:52)\n"
    "\tat com.example.order.web.OrderController.export(OrderController.java:131)\n"
    "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)\n"
    "\t... 42 more"
)


def _ok(data: Any, msg: str = "ok") -> dict[str, Any]:
    return {"code": 0, "msg": msg, "data": data}


# --------------------------------------------------------------------------- routing


@dataclass
class _Call:
    """What a route handler sees of one request."""

    demo: DemoServer
    handler: _Handler
    service: str
    method: str
    path: str
    args: dict[str, str]  # named groups from the route pattern
    query: dict[str, str]  # first value of each query parameter
    headers: dict[str, str]
    body: bytes
    json: Any = None  # parsed JSON body, None when absent or not JSON
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class _Reply:
    status: int
    body: Any = None  # dict/list -> JSON; str/bytes sent as-is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


# A handler returns a _Reply, or None when it has written the response itself (dripping).
_HandlerFn = Callable[[_Call], "_Reply | None"]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]  # matched against the path after the /<service> prefix
    fn: _HandlerFn
    # Services whose tokens are accepted; empty = public. Default: the route's own service.
    auth: tuple[str, ...] | None = None


def _page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    page = max(int(query.get("page", "1") or 1), 1)
    size = min(max(int(query.get("size", "10") or 10), 1), 100)
    start = (page - 1) * size
    return {"items": items[start : start + size], "page": page, "size": size, "total": len(items)}


def _login(c: _Call) -> _Reply:
    body = c.json if isinstance(c.json, dict) else c.form
    if not isinstance(body, dict) or not body.get("username"):
        return _Reply(400, {"code": 40001, "msg": "参数错误：username 和 password 不能为空"})
    if (body.get("username"), body.get("password")) != CREDENTIALS[c.service]:
        c.demo._count_failed_login(c.service)
        return _Reply(401, {"code": 40101, "msg": "用户名或密码错误"})
    token = c.demo._issue_token(c.service)
    return _Reply(200, _ok({"token": token, "expires_in": 3600}))


def _health(c: _Call) -> _Reply:
    return _Reply(200, {"status": "UP"})


def _echo(c: _Call) -> _Reply:
    # Lets documents (and probe tests) see exactly what was sent, including whether auth was applied.
    return _Reply(
        200,
        {
            "method": c.method,
            "path": c.path,
            "query": c.query,
            "headers": c.headers,
            "authorized": c.demo._token_service(c.headers) == c.service,
            "json": c.json,
            "form": c.form,
        },
    )


# ---- user


def _user_profile(c: _Call) -> _Reply:
    me = dict(_USERS[0], email="demo@example.com", city="上海", created_at="2023-03-15T09:30:00+08:00")
    return _Reply(200, _ok(me))


def _user_profile_update(c: _Call) -> _Reply:
    if not isinstance(c.json, dict) or not c.json:
        return _Reply(400, {"code": 40001, "msg": "参数错误：请求体不能为空"})
    return _Reply(200, _ok(dict(_USERS[0], **c.json), msg="资料已更新"))


def _user_list(c: _Call) -> _Reply:
    return _Reply(200, _ok(_page(_USERS, c.query)))


def _user_search(c: _Call) -> _Reply:
    kw = c.query.get("keyword", "")
    status = c.query.get("status")
    found = [u for u in _USERS if kw in u["name"] or kw in u["username"]]
    if status:
        found = [u for u in found if u["status"] == status]
    return _Reply(200, _ok(_page(found, c.query)))


def _user_get(c: _Call) -> _Reply:
    uid = int(c.args["id"])
    for u in _USERS:
        if u["id"] == uid:
            return _Reply(200, _ok(u))
    return _Reply(404, {"code": 40401, "msg": f"用户 {uid} 不存在"})


def _user_create(c: _Call) -> _Reply:
    if not isinstance(c.json, dict) or not c.json.get("name"):
        return _Reply(400, {"code": 40001, "msg": "参数错误：name 不能为空"})
    new = {"id": c.demo._next_id(), "status": "active", "role": "member", **c.json}
    return _Reply(201, _ok(new, msg="创建成功"), headers={"Location": f"/user/users/{new['id']}"})


def _user_update(c: _Call) -> _Reply:
    got = _user_get(c)
    if got.status != 200:
        return got
    if not isinstance(c.json, dict):
        return _Reply(400, {"code": 40001, "msg": "参数错误：请求体必须是 JSON 对象"})
    return _Reply(200, _ok({**got.body["data"], **c.json}, msg="更新成功"))


def _user_manage(c: _Call) -> _Reply:
    # Reached with an *admin* token: shows a document's `auth: admin` on a user-service interface.
    return _Reply(200, _ok({"items": [{**u, "last_login_ip": "10.0.3.17"} for u in _USERS], "total": len(_USERS)}))


def _orders(c: _Call) -> _Reply:
    return _Reply(200, _ok(_page(_ORDERS, c.query)))


def _order_get(c: _Call) -> _Reply:
    for o in _ORDERS:
        if o["id"] == c.args["id"]:
            detail = {**o, "items": [{"sku": "SKU-1", "qty": 1}], "paid_at": "2024-06-01T10:02:11+08:00"}
            return _Reply(200, _ok(detail))
    return _Reply(404, {"code": 40402, "msg": "订单不存在"})


def _orders_export(c: _Call) -> _Reply:  # broken: 500 with a stack trace
    return _Reply(
        500,
        {
            "timestamp": "2024-06-01T10:15:30.123+08:00",
            "status": 500,
            "error": "Internal Server Error",
            "exception": "java.lang.NullPointerException",
            "message": "导出失败",
            "trace": _STACK_TRACE,
            "path": c.path,
        },
    )


def _recommendations(c: _Call) -> _Reply | None:  # broken on purpose: ~300 ms vs max_ms 100
    if c.demo._stop.wait(SLOWISH_SECONDS):
        return None
    return _Reply(200, _ok({"items": [{"sku": "SKU-88", "title": "电子体温计", "score": 0.93}]}))


# ---- nurse


def _schedules(c: _Call) -> _Reply:
    items = [s for s in _SCHEDULE if s["ward"] == c.query["ward"]] if c.query.get("ward") else _SCHEDULE
    return _Reply(200, _ok({"date": c.query.get("date", "2024-06-01"), "items": items}))


def _handover(c: _Call) -> _Reply:
    rec = {"id": 8001, "ward": "W01", "from": "王芳", "to": "刘婷", "time": "16:00", "notes": "5床夜间注意血压"}
    return _Reply(200, _ok({"items": [rec], "total": 1}))


def _monthly_report(c: _Call) -> _Reply | None:  # broken: sleeps 3 s, documents allow 1 s
    if c.demo._stop.wait(SLOW_SECONDS):
        return None
    return _Reply(200, _ok({"month": "2024-06", "shifts": 930}))


def _patients(c: _Call) -> _Reply:
    items = [p for p in _PATIENTS if p["ward"] == c.query["ward"]] if c.query.get("ward") else _PATIENTS
    return _Reply(200, _ok(_page(items, c.query)))


def _patient_get(c: _Call) -> _Reply:
    pid = int(c.args["id"])
    for p in _PATIENTS:
        if p["id"] == pid:
            return _Reply(200, _ok({**p, "allergies": ["青霉素"], "vitals": {"temp": 36.8, "pulse": 78}}))
    return _Reply(404, {"code": 40403, "msg": "患者不存在"})


def _patient_search(c: _Call) -> _Reply:
    name = c.query.get("name", "")
    return _Reply(200, _ok(_page([p for p in _PATIENTS if name in p["name"]], c.query)))


def _care_record(c: _Call) -> _Reply:
    data = c.form or (c.json if isinstance(c.json, dict) else {})
    if not data.get("content"):
        return _Reply(400, {"code": 40001, "msg": "参数错误：content 不能为空"})
    return _Reply(201, _ok({"id": c.demo._next_id(), "patient_id": int(c.args["id"]), **data}, msg="记录已保存"))


def _wards(c: _Call) -> _Reply:
    return _Reply(200, _ok({"items": _WARDS, "total": len(_WARDS)}))


def _occupancy(c: _Call) -> _Reply:  # broken: 503 with Retry-After
    return _Reply(503, {"code": 50301, "msg": "床位服务维护中，请稍后重试"}, headers={"Retry-After": RETRY_AFTER})


def _vitals_stream(c: _Call) -> None:  # broken: headers at once, then one byte every 0.2 s
    payload = b'{"code":0,"msg":"ok","data":"'
    payload += b"." * (DRIP_BYTES - len(payload) - 2) + b'"}'
    h = c.handler
    h.close_connection = True
    h.send_response(200)
    h.send_header("Content-Type", "application/json; charset=utf-8")
    h.send_header("Content-Length", str(len(payload)))
    h.end_headers()
    for i in range(len(payload)):
        # wait() rather than sleep(): stop() must end this loop at once.
        if c.demo._stop.wait(DRIP_INTERVAL):
            return
        h.wfile.write(payload[i : i + 1])


# ---- admin


def _dashboard(c: _Call) -> _Reply:
    stats = {
        "users_total": 12873,
        "users_today": 56,
        "orders_today": 342,
        "gmv_today": 48210.5,
        "nurses_on_duty": 27,
        "alerts": 0,
        "updated_at": "2024-06-01T10:00:00+08:00",
    }
    return _Reply(200, _ok(stats))


def _audit_logs(c: _Call) -> _Reply:  # broken: valid token but the role lacks permission
    return _Reply(403, {"code": 40301, "msg": "权限不足：需要审计员角色"})


def _notifications(c: _Call) -> _Reply:  # broken: HTTP 200 carrying a business error
    return _Reply(200, {"code": 50001, "msg": "消息中心暂不可用", "data": None})


def _system_config(c: _Call) -> _Reply:
    cfg = {"site_name": "智慧医院运营平台", "version": "2.3.1", "features": {"sms": True, "wechat": True}}
    return _Reply(200, _ok(cfg))


def _maintenance(c: _Call) -> _Reply:
    return _Reply(200, _ok({"windows": [{"start": "2024-06-08T01:00:00+08:00", "hours": 2, "reason": "数据库升级"}]}))


def _r(method: str, pattern: str, fn: _HandlerFn, auth: tuple[str, ...] | None = None) -> _Route:
    return _Route(method, re.compile(pattern), fn, auth)


_COMMON = (
    _r("POST", r"/auth/login", _login, ()),
    _r("GET", r"/health", _health, ()),
    *(_r(m, r"/echo", _echo, ()) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")),
)
ROUTES: dict[str, tuple[_Route, ...]] = {
    "user": (
        *_COMMON,
        _r("GET", r"/profile", _user_profile),
        _r("PUT", r"/profile", _user_profile_update),
        _r("GET", r"/users", _user_list),
        _r("POST", r"/users", _user_create),
        _r("GET", r"/users/search", _user_search),
        _r("GET", r"/users/(?P<id>\d+)", _user_get),
        _r("PUT", r"/users/(?P<id>\d+)", _user_update),
        _r("GET", r"/manage/users", _user_manage, ("admin",)),
        _r("GET", r"/orders", _orders),
        _r("GET", r"/orders/export", _orders_export),
        _r("GET", r"/orders/(?P<id>SO\d+)", _order_get),
        _r("GET", r"/recommendations", _recommendations),
    ),
    "nurse": (
        *_COMMON,
        _r("GET", r"/schedules", _schedules),
        _r("GET", r"/shifts/handover", _handover),
        _r("GET", r"/reports/monthly", _monthly_report),
        _r("GET", r"/patients", _patients),
        _r("GET", r"/patients/search", _patient_search),
        _r("GET", r"/patients/(?P<id>\d+)", _patient_get),
        _r("POST", r"/patients/(?P<id>\d+)/care-records", _care_record),
        _r("GET", r"/wards", _wards),
        _r("GET", r"/wards/occupancy", _occupancy),
        _r("GET", r"/vitals/stream", _vitals_stream),
    ),
    "admin": (
        *_COMMON,
        _r("GET", r"/dashboard/stats", _dashboard),
        _r("GET", r"/audit/logs", _audit_logs),
        _r("GET", r"/notifications", _notifications),
        _r("GET", r"/system/config", _system_config),
        _r("GET", r"/system/maintenance", _maintenance),
    ),
}


# --------------------------------------------------------------------------- HTTP plumbing


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


class DemoServer:
    """The demo services on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
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
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving and end every handler thread (sleeping and dripping ones included)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        httpd.server_close()
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


def start(port: int = 0) -> DemoServer:
    """Start the demo services in background threads; returns the running server."""
    return DemoServer(port).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_apimon.demo", description="pytest-apimon demo services")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_CLI_PORT, help=f"port (default {DEFAULT_CLI_PORT}; 0 = any free port)"
    )
    args = parser.parse_args(argv)
    try:
        server = start(args.port)
    except OSError as exc:
        print(f"cannot listen on {HOST}:{args.port}: {exc}  (try --port 0)", file=sys.stderr)
        return 2
    print(f"pytest-apimon demo services at {server.url}  ({', '.join('/' + s for s in SERVICES)})", flush=True)
    print(f"  export APIMON_DEMO_URL={server.url} APIMON_DEMO_HOSTPORT={server.hostport}", flush=True)
    print("Ctrl-C to stop / 按 Ctrl-C 停止", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
