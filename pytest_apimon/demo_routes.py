"""Demo services' data and routes: the endpoints of the sample user / nurse / admin services.

Split from demo.py (the server) because it is mostly sample data; see demo.py for what is broken on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .demo import DemoServer, _Handler

HOST = "127.0.0.1"
DEFAULT_CLI_PORT = 8765  # matches the ${APIMON_DEMO_URL:-http://127.0.0.1:8765} default in config.yaml
DEFAULT_CLI_TLS_PORT = 8766  # and ${APIMON_DEMO_TLS_URL:-https://127.0.0.1:8766} (the portal service)
# The HTTPS listener's certificate: under cert_warn_days (14), over cert_fail_days (3): a warning, not a failure.
DEMO_CERT_DAYS = 5.0
SERVICES = ("user", "nurse", "admin")
CREDENTIALS: dict[str, tuple[str, str]] = {
    "user": ("demo", "d3mo-pass"),
    "nurse": ("nurse01", "nur5e-pass"),
    "admin": ("admin", "adm1n-pass"),
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


def _bulk_export(c: _Call) -> _Reply:  # broken: the export quota is used up, 429 with Retry-After
    return _Reply(429, {"code": 42901, "msg": "导出过于频繁，请稍后再试"}, headers={"Retry-After": RETRY_AFTER})


# ---- pages and headers for the sample checks (Interface-pool/admin/checks.yaml)

_LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>管理后台登录</title></head>
<body><form id="login" method="post" action="/admin/auth/login">
<input name="username"><input name="password" type="password"><button>登录</button></form></body></html>
"""
_HEALTH_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               "<health><status>UP</status><db>UP</db><cache>UP</cache></health>\n")


def _login_page(c: _Call) -> _Reply:
    return _Reply(200, _LOGIN_PAGE, {"Cache-Control": "no-store"}, "text/html; charset=utf-8")


def _health_xml(c: _Call) -> _Reply:
    return _Reply(200, _HEALTH_XML, {}, "application/xml; charset=utf-8")


def _version(c: _Call) -> _Reply:
    data = {"version": "2.3.1", "build": 1287, "env": "demo", "modules": ["user", "nurse", "admin"]}
    return _Reply(200, _ok(data), {"Cache-Control": "public, max-age=60", "X-Request-Id": "req-5f2c9a"})


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
        _r("GET", r"/reports/bulk-export", _bulk_export),
        _r("GET", r"/login", _login_page, ()),
        _r("GET", r"/health\.xml", _health_xml, ()),
        _r("GET", r"/version", _version, ()),
    ),
    # Public, no login; the sample reaches it over HTTPS (demo.py: a certificate that expires soon).
    "portal": (
        _r("GET", r"/health", _health, ()),
    ),
}


# --------------------------------------------------------------------------- HTTP plumbing
