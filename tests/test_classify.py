"""classify / status_allowed / lookup: every category and sub-reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from localserver import LocalServer, Response, closed_port, drip_body

from pytest_apimon.categories import Category
from pytest_apimon.classify import Classification, classify, lookup, status_allowed
from pytest_apimon.documents import BodyCheck, Expect
from pytest_apimon.probe import Exchange, ProbeError, Request, send


def ex(status: int | None = 200, body: Any = b"", **kw: Any) -> Exchange:
    if not isinstance(body, bytes):
        body = json.dumps(body, ensure_ascii=False).encode()
    return Exchange("GET", "http://127.0.0.1/x", {}, None, status=status, body=body, **kw)


def err(kind: str, sub: str, message: str = "m") -> Exchange:
    return ex(status=None, error=ProbeError(kind, sub, message))


def checks(*items: tuple[str, str, Any]) -> Expect:
    return Expect(body=tuple(BodyCheck(p, op, v) for p, op, v in items))


# --- transport ------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["connect", "read", "total"])
def test_timeouts(sub: str) -> None:
    out = classify(err("timeout", sub, "no data for 10 s (read timeout)"), Expect())
    assert out == Classification(Category.TIMEOUT, sub, "no data for 10 s (read timeout)")
    assert not out.passed


@pytest.mark.parametrize("sub", ["dns", "refused", "reset", "tls", "other"])
def test_network(sub: str) -> None:
    out = classify(err("network", sub), Expect())
    assert (out.category, out.sub) == (Category.NETWORK, sub)


def test_redirects_and_invalid_url_are_unexpected() -> None:
    out = classify(err("redirects", "too_many", "more than 5 redirects"), Expect())
    assert (out.category, out.sub, out.reason) == (Category.UNEXPECTED, "redirects", "more than 5 redirects")
    out = classify(err("invalid_url", "", "invalid URL: x"), Expect())
    assert (out.category, out.sub) == (Category.UNEXPECTED, "invalid_url")


def test_request_build_error_is_unexpected() -> None:
    out = classify(err("other", "request", "TypeError: not JSON serializable"), Expect())
    assert (out.category, out.sub) == (Category.UNEXPECTED, "request")


def test_transport_error_wins_over_everything() -> None:
    e = ex(status=200, body={"a": 1}, error=ProbeError("timeout", "total", "t"), elapsed_ms=99999)
    assert classify(e, Expect(max_ms=1, body=(BodyCheck("a", "equals", 2),))).category is Category.TIMEOUT


def test_long_reasons_are_cut() -> None:
    out = classify(err("network", "other", "x" * 1000), Expect())
    assert len(out.reason) <= 200 and out.reason.endswith("…")


# --- status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "category", "reason"),
    [
        (401, Category.AUTH, "HTTP 401"),
        (403, Category.FORBIDDEN, "HTTP 403"),
        (404, Category.NOT_FOUND, "HTTP 404"),
        (503, Category.UNAVAILABLE, "HTTP 503"),
        (500, Category.SERVER_ERROR, "HTTP 500"),
        (502, Category.SERVER_ERROR, "HTTP 502"),
        (599, Category.SERVER_ERROR, "HTTP 599"),
        (302, Category.UNEXPECTED, "HTTP 302, expected 2xx"),
        (400, Category.UNEXPECTED, "HTTP 400, expected 2xx"),
        (101, Category.UNEXPECTED, "HTTP 101, expected 2xx"),
    ],
)
def test_status_categories(status: int, category: Category, reason: str) -> None:
    out = classify(ex(status), Expect())
    assert (out.category, out.sub, out.reason) == (category, "status", reason)


def test_status_reason_phrase_is_included() -> None:
    assert classify(ex(503, reason="Service Unavailable"), Expect()).reason == "HTTP 503 Service Unavailable"


def test_explicitly_allowed_error_status_passes() -> None:
    assert classify(ex(404), Expect(status=(404,))).passed
    assert classify(ex(503), Expect(status=(200, "5xx"))).passed
    out = classify(ex(200), Expect(status=(404,)))
    assert (out.category, out.reason) == (Category.UNEXPECTED, "HTTP 200, expected 404")
    assert classify(ex(201), Expect(status=(200, 204))).reason == "HTTP 201, expected 200, 204"


def test_status_allowed() -> None:
    assert status_allowed(200, ()) and status_allowed(299, ()) and not status_allowed(300, ())
    assert status_allowed(204, ("2xx",)) and status_allowed(204, ("2XX",))
    assert status_allowed(301, (200, "3xx")) and not status_allowed(404, (200, "3xx"))
    assert status_allowed(404, (404,)) and status_allowed(404, ("404",))
    assert not status_allowed(200, (404,))
    assert not status_allowed(1, (True,))  # a bool is not a status


def test_healthy() -> None:
    out = classify(ex(200, {"ok": True}, elapsed_ms=12), Expect())
    assert out.passed and out == Classification(None)


# --- body -----------------------------------------------------------------------------------

BODY = {
    "code": 0,
    "data": {
        "items": [{"id": 41, "name": "a"}, {"id": 42, "name": "b"}],
        "total": 2.0,
        "用户": {"名字": "张三"},
        "flag": True,
        "none": None,
        "token": "",
    },
}


@pytest.mark.parametrize(
    ("path", "op", "value"),
    [
        ("code", "equals", 0),
        ("code", "equals", 0.0),  # 0 == 0.0 in JSON
        ("data.total", "equals", 2),
        ("data.items[0].id", "equals", 41),
        ("data.items[-1].id", "equals", 42),
        ("$.data.items[1].name", "equals", "b"),
        ("data.用户.名字", "equals", "张三"),
        ("data.items", "equals", [{"id": 41, "name": "a"}, {"id": 42, "name": "b"}]),
        ("data.none", "equals", None),
        ("data.token", "exists", True),
        ("data.none", "exists", True),
        ("data.nope", "exists", False),
        ("data.items[5]", "exists", False),
        ("data.items", "type", "array"),
        ("data", "type", "object"),
        ("code", "type", "integer"),
        ("code", "type", "number"),
        ("data.total", "type", "number"),
        ("data.flag", "type", "boolean"),
        ("data.none", "type", "null"),
        ("data.token", "type", "string"),
        ("", "type", "object"),
        ("$", "exists", True),
    ],
)
def test_body_checks_pass(path: str, op: str, value: Any) -> None:
    out = classify(ex(200, BODY), checks((path, op, value)))
    assert out.passed, out.reason


@pytest.mark.parametrize(
    ("path", "op", "value", "reason"),
    [
        ("data.items[0].id", "equals", 42, "data.items[0].id: expected 42, got 41"),
        ("data.flag", "equals", 1, "data.flag: expected 1, got true"),  # True != 1
        ("code", "equals", False, "code: expected false, got 0"),
        ("code", "equals", "0", 'code: expected "0", got 0'),
        ("data.用户.名字", "equals", "李四", 'data.用户.名字: expected "李四", got "张三"'),
        ("data.nope", "exists", True, "data.nope: missing"),
        ("data.token", "exists", False, 'data.token: expected absent, got ""'),
        ("data.missing.deeper", "equals", 1, "data.missing.deeper: missing"),
        ("data.items[9].id", "equals", 1, "data.items[9].id: missing"),
        ("data.items[0].name", "type", "number", "data.items[0].name: expected type number, got string"),
        ("data.total", "type", "string", "data.total: expected type string, got number"),
        ("data.flag", "type", "integer", "data.flag: expected type integer, got boolean"),
        ("data.flag", "type", "number", "data.flag: expected type number, got boolean"),
        ("data.none", "type", "object", "data.none: expected type object, got null"),
    ],
)
def test_body_checks_fail(path: str, op: str, value: Any, reason: str) -> None:
    out = classify(ex(200, BODY), checks((path, op, value)))
    assert (out.category, out.sub, out.reason) == (Category.UNEXPECTED, "body", reason)


def test_body_first_failure_and_count() -> None:
    out = classify(ex(200, BODY), checks(("code", "equals", 1), ("data.x", "exists", True), ("data", "type", "array")))
    assert out.reason == "code: expected 1, got 0 (+2 more)"


def test_long_values_are_cut() -> None:
    out = classify(ex(200, {"s": "v" * 500}), checks(("s", "equals", "w")))
    assert len(out.reason) < 120 and "…" in out.reason


def test_not_json() -> None:
    e = ex(200, b"<html>oops</html>", response_headers={"Content-Type": "text/html"})
    out = classify(e, checks(("code", "equals", 0)))
    assert (out.category, out.sub) == (Category.UNEXPECTED, "body")
    assert out.reason.startswith("response is not JSON (Content-Type text/html)")
    assert "oops" in out.reason
    assert "empty body" in classify(ex(200, b""), checks(("code", "exists", True))).reason
    # no body checks: a non-JSON body is fine
    assert classify(e, Expect()).passed


def test_truncated_body() -> None:
    e = ex(200, b'{"a": ' + b"1" * (1024 * 1024 - 6), truncated=True)
    out = classify(e, checks(("a", "exists", True)))
    assert (out.category, out.sub) == (Category.UNEXPECTED, "body")
    assert out.reason.startswith("body truncated at 1 MiB")


def test_json_with_bom_and_top_level_array() -> None:
    assert classify(ex(200, "\ufeff[1, 2]".encode()), checks(("[1]", "equals", 2), ("$[0]", "equals", 1))).passed


# --- latency --------------------------------------------------------------------------------


def test_latency() -> None:
    out = classify(ex(200, elapsed_ms=812.4), Expect(max_ms=500))
    assert out == Classification(Category.UNEXPECTED, "latency", "took 812 ms, limit 500 ms")
    assert classify(ex(200, elapsed_ms=499), Expect(max_ms=500)).passed
    # status problems come before latency
    assert classify(ex(500, elapsed_ms=900), Expect(max_ms=500)).category is Category.SERVER_ERROR


# --- lookup ---------------------------------------------------------------------------------


def test_lookup() -> None:
    data = {"a": {"b": [10, {"c": None}]}, "中文键": {"值": 1}, "list": [[1, 2], [3]]}
    assert lookup(data, "") == (True, data)
    assert lookup(data, "$") == (True, data)
    assert lookup(data, "a.b[0]") == (True, 10)
    assert lookup(data, "$.a.b[1].c") == (True, None)  # found, value null
    assert lookup(data, "a.b[-2]") == (True, 10)
    assert lookup(data, "a.b.0") == (True, 10)
    assert lookup(data, "list[0][1]") == (True, 2)
    assert lookup(data, "中文键.值") == (True, 1)
    assert lookup(data, "a.b[2]") == (False, None)
    assert lookup(data, "a.b[-3]") == (False, None)
    assert lookup(data, "a.x") == (False, None)
    assert lookup(data, "a.b.c") == (False, None)
    assert lookup(data, "a..b") == (False, None)
    assert lookup(data, "a[0]") == (False, None)
    assert lookup("text", "a") == (False, None)


# --- end to end with a real server ----------------------------------------------------------




def test_end_to_end(srv: LocalServer, session: requests.Session) -> None:
    srv.route("GET", "/ok", lambda r: {"data": {"id": 7}})
    srv.route("GET", "/auth", lambda r: Response(401, {}, {"msg": "login"}))
    srv.route("GET", "/down", lambda r: Response(503, {}, "maintenance"))
    srv.raw("GET", "/drip", drip_body(interval=0.05))  # gaps far inside the deadline, even on a busy machine

    def run(path: str, expect: Expect, **kw: Any) -> Classification:
        return classify(send(session, Request("GET", srv.url + path, **kw)), expect)

    assert run("/ok", checks(("data.id", "equals", 7), ("data.id", "type", "integer"))).passed
    assert run("/ok", checks(("data.id", "equals", 8))).reason == "data.id: expected 8, got 7"
    assert run("/auth", Expect()).category is Category.AUTH
    assert run("/down", Expect()).category is Category.UNAVAILABLE
    assert run("/missing", Expect()).category is Category.NOT_FOUND
    assert run("/missing", Expect(status=(404,))).passed
    assert run("/ok", checks(), max_body_bytes=5).passed  # no body checks: truncation is fine
    assert run("/ok", checks(("data", "exists", True)), max_body_bytes=5).reason.startswith("body truncated at 5 bytes")
    out = run("/drip", Expect(), timeout=1.0)
    assert (out.category, out.sub) == (Category.TIMEOUT, "total")
    port = closed_port()
    out = classify(send(session, Request("GET", f"http://127.0.0.1:{port}/")), Expect())
    assert (out.category, out.sub, out.reason) == (
        Category.NETWORK,
        "refused",
        f"connection refused by 127.0.0.1:{port}",
    )


def test_valid_json_with_a_huge_integer_is_json() -> None:
    """100 000 digits exceed Python's int() limit (4300): it is still valid JSON, checked, not "not JSON"."""
    big = "9" * 100_000
    e = ex(200, ('{"code": 0, "n": ' + big + "}").encode())
    assert classify(e, checks(("code", "equals", 0), ("n", "exists", True), ("n", "type", "number"))).passed
    out = classify(e, checks(("n", "type", "string")))
    assert "not JSON" not in out.reason and out.sub == "body"
