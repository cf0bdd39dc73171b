"""Header and body checks (issue 16, requirements 1 and 2): loading, the JSON Schema in step, classification
against real responses (HTML, XML, text, JSON) from a local server, and properties of the check parser."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from localserver import LocalServer, Response

from pytest_apimon.categories import Category
from pytest_apimon.classify import MESSAGES, classify
from pytest_apimon.documents import BodyCheck, Expect, HeaderCheck, schema_path
from pytest_apimon.load import load_document
from pytest_apimon.patterns import Pattern
from pytest_apimon.probe import Request, send

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    return Draft7Validator(json.loads(schema_path().read_text(encoding="utf-8")))


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "svc" / "doc.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_document(path, tmp_path, environ={})


def one(tmp_path: Path, expect: str) -> Any:
    result = load(tmp_path, f"name: n\npath: /a\nexpect:\n{expect}")
    assert result.errors == []
    return result.interfaces[0].expect


# --- loading ------------------------------------------------------------------------------------------------


def test_header_check_forms_load(tmp_path: Path) -> None:
    expect = one(tmp_path, "  headers:\n    Location: /login\n    X-Gone: false\n    X-Count: 3\n"
                           "    Content-Type: {contains: json}\n    cache-control: {regex: 'max-age=\\d+'}\n"
                           "    ETag: {exists: true}\n    Server: {equals: nginx}\n")
    assert expect.headers == (
        HeaderCheck("Location", "equals", "/login"), HeaderCheck("X-Gone", "exists", False),
        HeaderCheck("X-Count", "equals", "3"), HeaderCheck("Content-Type", "contains", "json"),
        HeaderCheck("cache-control", "regex", Pattern(r"max-age=\d+")), HeaderCheck("ETag", "exists", True),
        HeaderCheck("Server", "equals", "nginx"),
    )


def test_body_check_forms_load(tmp_path: Path) -> None:
    expect = one(tmp_path, "  body:\n"
                           "    - {contains: 登录}\n"
                           "    - {regex: '<title>.*</title>'}\n"
                           "    - {path: data.total, gt: 0}\n"
                           "    - {path: data.total, le: 1000.5}\n"
                           "    - {path: data.items, length: 3}\n"
                           "    - {path: data.items, length: {ge: 1}}\n"
                           "    - {path: data.state, in: [ok, degraded]}\n"
                           "    - {path: code, not_equals: 500}\n"
                           "    - {path: data.tags, contains: x}\n")
    assert expect.body == (
        BodyCheck(None, "contains", "登录"), BodyCheck(None, "regex", Pattern("<title>.*</title>")),
        BodyCheck("data.total", "gt", 0), BodyCheck("data.total", "le", 1000.5),
        BodyCheck("data.items", "length", ("equals", 3)), BodyCheck("data.items", "length", ("ge", 1)),
        BodyCheck("data.state", "in", ("ok", "degraded")), BodyCheck("code", "not_equals", 500),
        BodyCheck("data.tags", "contains", "x"),
    )


BAD = [
    # (expect YAML, field path, message part)
    ("headers: {X: {contains: a, regex: b}}", "headers.X.regex", "exactly one check per header"),
    ("headers: {X: {}}", "headers.X", "missing check: expected exactly one of exists, equals, contains, regex"),
    ("headers: {X: {matches: a}}", "headers.X.matches", "unknown key 'matches'"),
    ("headers: {X: {regex: '(unclosed'}}", "headers.X.regex", "invalid regular expression '(unclosed'"),
    ("headers: {X: {exists: 'yes'}}", "headers.X.exists", "expected true or false"),
    ("headers: {X: {equals: [a]}}", "headers.X.equals", "expected a string"),
    ("headers: {X: [a]}", "headers.X", "expected the exact header value"),
    ("body: [{path: a, gt: '5'}]", "body[0].gt", "expected a number, got string '5'"),
    ("body: [{path: a, le: true}]", "body[0].le", "expected a number, got boolean true"),
    ("body: [{path: a, length: -1}]", "body[0].length", "expected a length (an integer >= 0)"),
    ("body: [{path: a, length: {ge: 1, lt: 3}}]", "body[0].length.lt", "expected exactly one comparison"),
    ("body: [{path: a, length: {between: 1}}]", "body[0].length.between", "unknown key 'between'"),
    ("body: [{path: a, in: []}]", "body[0].in", "expected a non-empty list"),
    ("body: [{path: a, in: ok}]", "body[0].in", "expected a non-empty list"),
    ("body: [{regex: '[a-'}]", "body[0].regex", "invalid regular expression"),
    ("body: [{contains: [1]}]", "body[0].contains", "expected text to find in the raw body"),
    ("body: [{contains: true}]", "body[0].contains", "expected text to find in the raw body"),
    ("headers: {X: {contains: true}}", "headers.X.contains", "expected a string"),
    ("headers: {X Bad Name: true}", "headers.X Bad Name", "can never be in a response: a field name is a token"),
    ("headers: {'X:Y': {exists: true}}", "headers.X:Y", "can never be in a response"),
    ("body: [{gt: 1}]", "body[0].path", "missing required field 'path'"),
    ("body: [{path: a, gt: 1, lt: 3}]", "body[0].lt", "exactly one check per mapping"),
    ("body: [{contains: a, regex: b}]", "body[0].regex", "exactly one check per mapping"),
]


@pytest.mark.parametrize(("expect", "field", "message"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_checks_are_document_errors(tmp_path: Path, validator: Draft7Validator,
                                        expect: str, field: str, message: str) -> None:
    text = f"name: n\npath: /a\nexpect: {{{expect}}}\n"
    result = load(tmp_path, text)
    assert result.interfaces == []
    (err,) = result.errors
    assert err.field == f"expect.{field}" and message in err.message, err
    if "regular expression" not in message:  # a JSON Schema cannot compile a Python regex
        assert not validator.is_valid(yaml.safe_load(text)), "the schema accepts what the loader rejects"


# --- the JSON Schema agrees with the loader -----------------------------------------------------------------

_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([1.5, "a", "x.y", "", "5", "^ok$"]),
    st.lists(st.sampled_from([1, "a", None]), max_size=2),
    st.dictionaries(st.sampled_from(["ge", "lt", "equals", "x"]), st.integers(-1, 3), max_size=2),
)
_check_keys = st.sampled_from(["path", "equals", "not_equals", "exists", "type", "in", "contains", "regex",
                               "gt", "ge", "lt", "le", "length", "pathh"])


@FUZZ
@given(check=st.dictionaries(_check_keys, _values, max_size=3))
def test_schema_and_loader_agree_on_body_checks(tmp_path: Path, validator: Draft7Validator,
                                                check: dict[str, Any]) -> None:
    if "path" in check and not isinstance(check["path"], str):
        check["path"] = "a"  # body-path syntax has its own property tests
    doc = {"name": "n", "path": "/a", "expect": {"body": [check]}}
    result = load(tmp_path, json.dumps(doc))
    assert (result.errors == []) == validator.is_valid(doc), (check, result.errors)


@FUZZ
@given(check=st.one_of(_values, st.dictionaries(st.sampled_from(["exists", "equals", "contains", "regex", "has"]),
                                                 _values, max_size=2)))
def test_schema_and_loader_agree_on_header_checks(tmp_path: Path, validator: Draft7Validator, check: Any) -> None:
    doc = {"name": "n", "path": "/a", "expect": {"headers": {"X-A": check}}}
    result = load(tmp_path, json.dumps(doc))
    assert (result.errors == []) == validator.is_valid(doc), (check, result.errors)


# --- classification against real responses -----------------------------------------------------------------

HTML = "<!doctype html><html><head><title>登录 - 运营后台</title></head><body><form id=login></form></body></html>"
XML = '<?xml version="1.0"?><health><status>UP</status><db>UP</db></health>'


@pytest.fixture
def pages(srv: LocalServer) -> LocalServer:
    srv.route("GET", "/login", lambda r: Response(200, {"Content-Type": "text/html; charset=utf-8",
                                                        "Cache-Control": "private, max-age=60"}, HTML))
    srv.route("GET", "/health.xml", lambda r: Response(200, {"Content-Type": "application/xml"}, XML))
    srv.route("GET", "/gbk", lambda r: Response(200, {"Content-Type": "text/plain; charset=gbk"},
                                                "状态正常".encode("gbk")))
    srv.route("GET", "/api", lambda r: {"code": 0, "data": {"total": 12, "items": [1, 2, 3], "state": "ok",
                                                             "name": "心内科", "tags": ["a", "b"], "empty": {}}})
    return srv


def run(srv: LocalServer, session: requests.Session, path: str, expect: Expect) -> Any:
    return classify(send(session, Request("GET", srv.url + path)), expect)


def body(*checks: tuple[str | None, str, Any]) -> Expect:
    return Expect(body=tuple(BodyCheck(*c) for c in checks))


def test_text_checks_work_on_html_xml_and_charsets(pages: LocalServer, session: requests.Session) -> None:
    assert run(pages, session, "/login", body((None, "contains", "运营后台"),
                                              (None, "regex", r"<form id=login>"))).passed
    assert run(pages, session, "/health.xml", body((None, "regex", r"<status>UP</status>"))).passed
    assert run(pages, session, "/gbk", body((None, "contains", "正常"))).passed
    out = run(pages, session, "/health.xml", body((None, "contains", "<status>DOWN")))
    assert (out.category, out.sub, out.reason) == (Category.UNEXPECTED, "body",
                                                   'body: expected to contain "<status>DOWN"')
    out = run(pages, session, "/login", body((None, "regex", r"^<html")))  # re.search, no MULTILINE: anchored
    assert out.reason == "body: expected to match /^<html/"


def test_a_json_check_on_html_still_says_not_json(pages: LocalServer, session: requests.Session) -> None:
    out = run(pages, session, "/login", body((None, "contains", "登录"), ("code", "equals", 0)))
    assert out.sub == "body" and out.reason.startswith("response is not JSON (Content-Type text/html")


def test_header_checks_on_a_real_response(pages: LocalServer, session: requests.Session) -> None:
    ok = Expect(headers=(HeaderCheck("content-type", "contains", "text/html"),
                         HeaderCheck("CACHE-CONTROL", "regex", r"max-age=\d+"),
                         HeaderCheck("X-Powered-By", "exists", False), HeaderCheck("Content-Type", "exists", True)))
    assert run(pages, session, "/login", ok).passed
    cases = [
        (HeaderCheck("Content-Type", "contains", "json"),
         'header Content-Type: expected to contain "json", got "text/html; charset=utf-8"'),
        (HeaderCheck("Cache-Control", "regex", r"no-store"),
         'header Cache-Control: expected to match /no-store/, got "private, max-age=60"'),
        (HeaderCheck("ETag", "contains", "x"), 'header ETag: expected to contain "x", missing'),
        (HeaderCheck("ETag", "regex", "."), "header ETag: expected to match /./, missing"),
        (HeaderCheck("ETag", "exists", True), "header ETag: missing"),
        (HeaderCheck("Cache-Control", "equals", "private"),
         'header Cache-Control: expected "private", got "private, max-age=60"'),
    ]
    for check, reason in cases:
        out = run(pages, session, "/login", Expect(headers=(check,)))
        assert (out.category, out.sub, out.reason) == (Category.UNEXPECTED, "header", reason)


COMPARISONS = [
    # (check, passes, reason when it fails)
    (("data.total", "gt", 11), True, ""),
    (("data.total", "gt", 12), False, "data.total: expected > 12, got 12"),
    (("data.total", "ge", 12), True, ""),
    (("data.total", "lt", 12.0), False, "data.total: expected < 12.0, got 12"),
    (("data.total", "le", 12), True, ""),
    (("data.name", "gt", 1), False, 'data.name: expected a number, got string "心内科"'),
    (("data.items", "length", ("equals", 3)), True, ""),
    (("data.items", "length", ("gt", 3)), False, "data.items: expected length > 3, got length 3"),
    (("data.name", "length", ("equals", 3)), True, ""),  # characters, not bytes
    (("data.empty", "length", ("ge", 1)), False, "data.empty: expected length >= 1, got length 0"),
    (("data.total", "length", ("ge", 1)), False,
     "data.total: expected an array, string or object to measure, got number 12"),
    (("data.state", "in", ("ok", "degraded")), True, ""),
    (("data.state", "in", ("degraded", "down")), False, 'data.state: expected one of ["degraded", "down"], got "ok"'),
    (("code", "in", (0.0, 200)), True, ""),  # JSON equality: 0 == 0.0
    (("code", "not_equals", 500), True, ""),
    (("code", "not_equals", 0), False, "code: expected anything but 0"),
    (("data.missing", "not_equals", 0), False, "data.missing: missing"),
    (("data.tags", "contains", "b"), True, ""),
    (("data.tags", "contains", "c"), False, 'data.tags: expected to contain "c", got ["a", "b"]'),
    (("data.name", "contains", "内"), True, ""),
    (("data.name", "regex", "^心.科$"), True, ""),
    (("data.total", "regex", "1"), False, "data.total: expected a string, got number 12"),
]


@pytest.mark.parametrize(("check", "passes", "reason"), COMPARISONS, ids=[f"{c[0][1]}-{i}"
                                                                           for i, c in enumerate(COMPARISONS)])
def test_value_checks(pages: LocalServer, session: requests.Session,
                      check: tuple[str, str, Any], passes: bool, reason: str) -> None:
    out = run(pages, session, "/api", body(check))
    assert out.passed is passes
    if not passes:
        assert (out.category, out.sub, out.reason) == (Category.UNEXPECTED, "body", reason)


def test_comparisons_on_numbers_never_crash() -> None:
    from pytest_apimon.probe import Exchange

    @FUZZ
    @given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
                           st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=2), st.integers(),
                                                                                max_size=2)),
           op=st.sampled_from(["gt", "ge", "lt", "le", "length", "in", "contains", "regex", "not_equals"]))
    def check(value: Any, op: str) -> None:
        want: Any = {"length": ("ge", 1), "in": (1, "a"), "contains": "a", "regex": "a"}.get(op, 1)
        try:
            raw = json.dumps({"v": value}).encode()
        except ValueError:
            return
        ex = Exchange("GET", "http://127.0.0.1/", {}, None, status=200, body=raw)
        out = classify(ex, Expect(body=(BodyCheck("v", op, want),)))
        assert out.passed or (out.category is Category.UNEXPECTED and out.sub == "body" and out.reason)

    check()


def test_reason_templates_live_in_one_catalogue() -> None:
    """New reason strings are in classify.MESSAGES so a translation can replace them in one place."""
    assert all(isinstance(v, str) and "{" in v for v in MESSAGES.values())


# --- degraded: expect.warn_ms (requirement 5) ---------------------------------------------------------------


def test_warn_ms_marks_a_healthy_answer_slow_without_failing() -> None:
    from pytest_apimon.probe import Exchange

    def took(ms: float) -> Exchange:  # the elapsed time is data here: no clock involved
        return Exchange("GET", "http://127.0.0.1/", {}, None, status=200, body=b"{}", elapsed_ms=ms)

    expect = Expect(max_ms=1000, warn_ms=300)
    assert classify(took(300), expect).sub == ""  # at the threshold: not slow
    out = classify(took(301), expect)
    assert out.passed and (out.sub, out.reason) == ("slow", "slow: took 301 ms, warn_ms 300 ms")
    out = classify(took(1001), expect)
    assert not out.passed and out.sub == "latency"  # beyond max_ms it is a failure, not a warning
    assert classify(took(5000), Expect(warn_ms=300)).passed  # warn_ms alone never fails
    slow_but_wrong = classify(took(900), Expect(warn_ms=300, status=(201,)))
    assert (slow_but_wrong.category, slow_but_wrong.sub) == (Category.UNEXPECTED, "status")


def test_warn_ms_must_be_below_max_ms(tmp_path: Path, validator: Draft7Validator) -> None:
    result = load(tmp_path, "name: n\npath: /a\nexpect: {max_ms: 500, warn_ms: 500}\n")
    (err,) = result.errors
    assert err.field == "expect.warn_ms" and "warn_ms (500) must be less than max_ms (500)" in err.message
    assert one(tmp_path, "  warn_ms: 200\n  max_ms: 800\n").warn_ms == 200
    assert validator.is_valid({"name": "n", "path": "/a", "expect": {"warn_ms": 200}})
    assert not validator.is_valid({"name": "n", "path": "/a", "expect": {"warn_ms": 0}})


def test_slow_shows_in_terminal_markdown_json_and_status_page(pytester: pytest.Pytester) -> None:
    from test_plugin import write

    with LocalServer() as srv:
        srv.route("GET", "/svc/a", lambda r: {"ok": True})
        write(pytester.path, "config.yaml", f"""
            defaults: {{retries: 0}}
            services:
              svc: {{base_url: {srv.url}/svc}}
            report: {{markdown: out/report.md, json: out/report.json, html: out/status.html}}
            state: {{dir: out/state}}
        """)
        # Any real answer takes longer than a microsecond: slow by construction, not by timing.
        write(pytester.path, "pool/svc/a.yaml", "- {name: 慢接口, path: /a, expect: {warn_ms: 0.001}}\n"
                                               "- {name: 快接口, path: /a}\n")
        result = pytester.runpytest("--apimon", "pool", "--apimon-lang", "zh")
    result.assert_outcomes(passed=2)
    stdout = result.stdout.str()
    assert "响应慢 (1)" in stdout and "[slow]" not in stdout
    assert "svc/a · 慢接口 ·" in stdout and "快接口 ·" not in stdout
    markdown = (pytester.path / "out" / "report.md").read_text("utf-8")
    assert "## 响应慢 `slow` (1)" in markdown and "超过 warn_ms 0.001 ms" in markdown
    records = json.loads((pytester.path / "out" / "report.json").read_text("utf-8"))["results"]
    assert sorted((r["name"], r["outcome"], r["slow"]) for r in records) == [("快接口", "passed", False),
                                                                             ("慢接口", "passed", True)]
    page = (pytester.path / "out" / "status.html").read_text("utf-8")
    assert page.count('class="pill slow"') == 1


# --- expect.schema (requirement 3) --------------------------------------------------------------------------

USER_SCHEMA = {"type": "object", "required": ["code", "data"], "properties": {
    "code": {"const": 0},
    "data": {"type": "object", "required": ["id", "name"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "roles": {"type": "array", "items": {"enum": ["admin", "nurse"]}}}}}}


def test_schema_inline_and_from_a_file_relative_to_the_document(tmp_path: Path) -> None:
    (tmp_path / "svc" / "schemas").mkdir(parents=True)
    (tmp_path / "svc" / "schemas" / "user.schema.json").write_text(json.dumps(USER_SCHEMA), "utf-8")
    (tmp_path / "svc" / "schemas" / "user.yaml").write_text(yaml.safe_dump(USER_SCHEMA), "utf-8")
    result = load(tmp_path, "- {name: a, path: /a, expect: {schema: schemas/user.schema.json}}\n"
                            "- {name: b, path: /a, expect: {schema: schemas/user.yaml}}\n"
                            f"- {{name: c, path: /a, expect: {{schema: {json.dumps(USER_SCHEMA)}}}}}\n"
                            "- {name: d, path: /a, expect: {schema: false}}\n")
    assert result.errors == []
    a, b, c, d = (i.expect for i in result.interfaces)
    assert a.schema == b.schema == c.schema == USER_SCHEMA
    assert d.schema is False


@pytest.mark.parametrize(("value", "message"), [
    ("missing.schema.json", "cannot read schema file"),
    ("{type: objekt}", "not a valid JSON Schema at type"),
    ("true", "expected a JSON Schema (a mapping), the path of a schema file"),
    ("''", "expected a JSON Schema"),
])
def test_a_bad_schema_is_a_document_error(tmp_path: Path, value: str, message: str) -> None:
    result = load(tmp_path, f"name: n\npath: /a\nexpect: {{schema: {value}}}\n")
    (err,) = result.errors
    assert err.field == "expect.schema" and message in err.message, err


def test_schema_violations_name_their_json_paths(srv: LocalServer, session: requests.Session, tmp_path: Path) -> None:
    srv.route("GET", "/good", lambda r: {"code": 0, "data": {"id": 7, "name": "张三", "roles": ["nurse"]}})
    srv.route("GET", "/bad", lambda r: {"code": 1, "data": {"id": "7", "roles": ["admin", "root", "x", "y"]}})
    srv.route("GET", "/html", lambda r: Response(200, {"Content-Type": "text/html"}, "<html>维护中</html>"))
    expect = one(tmp_path, f"  schema: {json.dumps(USER_SCHEMA)}\n")
    assert run(srv, session, "/good", expect).passed
    out = run(srv, session, "/bad", expect)
    assert (out.category, out.sub) == (Category.UNEXPECTED, "schema")
    assert out.reason == ("schema: $.code: 0 was expected; $.data: 'name' is a required property; "
                          "$.data.id: '7' is not of type 'integer' (+3 more)")
    out = run(srv, session, "/html", expect)
    assert (out.sub, out.reason) == ("schema", "response is not JSON: '<html>维护中</html>'")


def test_schema_dialect_comes_from_its_dollar_schema(tmp_path: Path) -> None:
    from pytest_apimon.probe import Exchange

    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
              "properties": {"n": {"type": "number", "minimum": 0, "exclusiveMinimum": True}}}
    expect = one(tmp_path, f"  schema: {json.dumps(draft4)}\n")
    ex = Exchange("GET", "http://127.0.0.1/", {}, None, status=200, body=b'{"n": 0}')
    out = classify(ex, expect)
    assert out.sub == "schema" and "$.n: 0 is less than or equal to the minimum of 0" in out.reason


# --- imported OpenAPI / Swagger: the operation's response schema by default ---------------------------------

SPEC = {
    "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
    "paths": {
        "/pets/{id}": {"get": {"operationId": "getPet", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "example": 1}}],
            "responses": {"200": {"description": "ok", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Pet"}}}}}}},
        "/ping": {"get": {"operationId": "ping", "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}},
            "204": {"description": "no body"}}}},
        "/feed": {"get": {"operationId": "feed", "responses": {"200": {"description": "ok", "content": {
            "application/json": {"schema": {"type": "object"}}, "application/xml": {"schema": {"type": "object"}}}}}}},
        "/tree": {"get": {"operationId": "tree", "responses": {"200": {"description": "ok", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}},
    },
    "components": {"schemas": {
        "Pet": {"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "integer", "minimum": 1, "exclusiveMinimum": False},
            "name": {"type": "string"}, "tag": {"type": "string", "nullable": True},
            "example": {"type": "string"}}, "example": {"id": "not even valid"}},
        "Node": {"type": "object", "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}},
    }},
}


def _import(tmp_path: Path, sidecar: str | None = None) -> dict[str, Any]:
    path = tmp_path / "svc" / "pets.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(SPEC), "utf-8")
    if sidecar is not None:
        (tmp_path / "svc" / "pets.apimon.yaml").write_text(sidecar, "utf-8")
    result = load_document(path, tmp_path, environ={})
    assert result.errors == []
    return {i.name: i for i in result.interfaces}


def _answer(body: Any) -> Any:
    from pytest_apimon.probe import Exchange

    return Exchange("GET", "http://127.0.0.1/", {}, None, status=200, body=json.dumps(body).encode())


def test_openapi_operations_validate_against_their_response_schema(tmp_path: Path) -> None:
    itf = _import(tmp_path)
    pet = itf["getPet"].expect
    assert classify(_answer({"id": 1, "name": "旺财", "tag": None}), pet).passed  # nullable: null is allowed
    assert classify(_answer({"id": 2, "name": "x", "example": "a property named example is kept"}), pet).passed
    out = classify(_answer({"id": 0, "tag": 3}), pet)
    assert (out.category, out.sub) == (Category.UNEXPECTED, "schema")
    assert out.reason.startswith("schema: $: 'name' is a required property; $.id: 0 is less than the minimum of 1")
    assert classify(_answer({"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}),
                    itf["tree"].expect).passed
    assert not classify(_answer({"value": "1"}), itf["tree"].expect).passed
    # Conservative: a 2xx without a body (204) or a non-JSON media type means no default schema.
    assert itf["ping"].expect.schema is None and itf["feed"].expect.schema is None


def test_response_schema_opt_out_per_operation_and_per_file(tmp_path: Path) -> None:
    itf = _import(tmp_path, "operations:\n  getPet:\n    expect: {schema: false}\n")
    assert itf["getPet"].expect.schema is False and isinstance(itf["tree"].expect.schema, dict)
    assert classify(_answer({"nothing": "like a pet"}), itf["getPet"].expect).passed
    itf = _import(tmp_path, "response_schema: false\n")
    assert itf["getPet"].expect.schema is None and itf["tree"].expect.schema is None


def test_a_sidecar_schema_file_is_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "svc" / "schemas").mkdir(parents=True)
    (tmp_path / "svc" / "schemas" / "pet.schema.json").write_text('{"type": "object", "required": ["owner"]}')
    itf = _import(tmp_path, "operations:\n  getPet:\n    expect: {schema: schemas/pet.schema.json}\n")
    assert itf["getPet"].expect.schema == {"type": "object", "required": ["owner"]}
