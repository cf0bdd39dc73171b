"""Property-based test (hypothesis): any HTTP response a monitored service sends — any status, any
Content-Type and charset, any Content-Encoding, any body bytes, or raw bytes that are not quite HTTP — goes
through probe.send and classify.classify into exactly one outcome, never an exception; a response that
arrived but cannot be read is `unexpected` (never retried, never `network`); and the result renders in
every report. The server is a real one on 127.0.0.1 (tests/localserver.py): nothing is mocked.
`APIMON_FUZZ_EXAMPLES=2000 pytest -p no:apimon tests/test_fuzz_responses.py` hunts longer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from localserver import LocalServer, RawConn

from pytest_apimon.categories import Category
from pytest_apimon.classify import Outcome, classify
from pytest_apimon.documents import BodyCheck, Expect
from pytest_apimon.probe import Request, new_session, send

pytestmark = pytest.mark.integration

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json; charset=GBK",
    "application/json; charset=utf-16", "application/json; charset=nope", "text/html", "text/plain; charset=latin-1",
    "application/problem+json", "application/json; charset=", "multipart/form-data; boundary=x", "",
    "application/json;charset=\"utf-8\"", "application/xml",
]) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
bodies = st.binary(max_size=300) | st.sampled_from([
    b'{"code": 0, "data": {"id": 1}}', b'{"code": 0', b"\xef\xbb\xbf{\"a\": 1}", b'{"a": NaN}', b"[" * 5000,
    '{"名字": "张三"}'.encode("gbk"), '{"a": "ü"}'.encode("utf-16"), b"\x1f\x8b\x08\x00broken-gzip", b"null",
    b'{"a": 1e999999}', b'{"a": ' + b"9" * 5000 + b"}",
])


class Holder:
    raw: bytes = b""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LocalServer, Holder]]:
    holder = Holder()

    def reply(conn: RawConn) -> None:
        conn.send(holder.raw)

    with LocalServer() as srv:
        srv.raw("GET", "/r", reply)
        yield srv, holder


def http_response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes, length: str) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    if length == "right":
        head += f"Content-Length: {len(body)}\r\n"
    elif length == "short":
        head += f"Content-Length: {len(body) + 10}\r\n"
    elif length == "chunked":
        head += "Transfer-Encoding: chunked\r\n"
        body = (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
    head += "Connection: close\r\n\r\n"
    return head.encode("latin-1", "replace") + body


responses = st.builds(
    http_response,
    status=st.integers(100, 999) | st.sampled_from([200, 201, 204, 301, 302, 304, 401, 404, 429, 500, 503]),
    reason=st.sampled_from(["OK", "", "Server Error", "状态"]),
    headers=st.lists(st.tuples(st.sampled_from(["Content-Type", "Content-Encoding", "Location", "Retry-After",
                                                "X-Custom", "Set-Cookie", "Content-Length"]),
                               content_types | st.sampled_from(["gzip", "br", "deflate", "identity", "/x", "::",
                                                                 "http://[::1", "-1", "99999999999999"])),
                     max_size=4),
    body=bodies,
    length=st.sampled_from(["right", "right", "none", "short", "chunked"]),
) | st.binary(max_size=200)  # not quite HTTP at all

expects = st.builds(
    Expect,
    status=st.lists(st.integers(100, 599) | st.sampled_from(["2xx", "3xx"]), max_size=2).map(tuple),
    body=st.lists(st.builds(BodyCheck, st.sampled_from(["code", "data.id", "a", "名字", "$"]),
                            st.sampled_from(["equals", "exists", "type", "contains", "regex"]),
                            st.sampled_from([0, 1, True, "object", "张三", "^a"])), max_size=2).map(tuple),
)


@FUZZ
@given(raw=responses, expect=expects)
def test_any_response_gets_exactly_one_outcome(server: tuple[LocalServer, Holder], raw: bytes,
                                               expect: Expect) -> None:
    srv, holder = server
    holder.raw = raw
    session = new_session()
    try:
        ex = send(session, Request("GET", srv.url + "/r", timeout=5.0))
    finally:
        session.close()
    outcome = classify(ex, expect)
    event(f"{outcome.category} {ex.error.kind + '/' + ex.error.sub if ex.error else ''}")
    assert isinstance(outcome, Outcome)
    assert outcome.category is None or isinstance(outcome.category, Category)
    if ex.error is not None and ex.error.kind == "response":
        assert outcome.category is Category.UNEXPECTED
    if outcome.category is not None:
        assert outcome.reason and len(outcome.reason) <= 200
        outcome.reason.encode("utf-8")  # reports and the robot send UTF-8: no lone surrogate
    _render(ex, outcome)


def _render(ex: Any, outcome: Outcome) -> None:
    """The exchange as a result in every report (the masks and excerpts run on what the server sent)."""
    from pytest_apimon.redact import Redactor
    from pytest_apimon.report import render_json, render_markdown, render_terminal
    from pytest_apimon.results import InterfaceResult, RunResult

    result = InterfaceResult("pool/s/a.yaml::x", "s", "a", "x", method="GET", url=ex.url,
                             outcome="passed" if outcome.category is None else "failed",
                             category=outcome.category, reason=outcome.reason or "", status=ex.status,
                             elapsed_ms=ex.elapsed_ms,
                             response_headers={str(k): str(v) for k, v in (ex.response_headers or {}).items()},
                             response_body=(ex.body or b"")[:2048].decode("utf-8", "replace"))
    run = RunResult(1_790_000_000.0, 1_790_000_001.0, "prod", [result])
    red = Redactor(["s3cr3t-token-value"])
    for lang in ("zh", "en"):
        render_terminal(run, lang, redactor=red).encode("utf-8")
        render_markdown(run, lang, "t", redactor=red).encode("utf-8")
    render_json(run, redactor=red).encode("utf-8")
