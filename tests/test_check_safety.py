"""Checks that cannot hold a run or reach outside it (issue 16 follow-up): documents' regular expressions run
within a time budget (patterns.py), expect.schema `$ref`s resolve at load time from files inside the pool only
(response_schema.py), and the document errors of impossible checks (header names, duplicates, HEAD with a body).

No test here measures time: a pathological pattern is given a budget of 1 ms, which its match (minutes of
backtracking) always exceeds, and the assertions are on outcomes and counts."""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from localserver import LocalServer, Response

from pytest_apimon import patterns
from pytest_apimon.categories import Category
from pytest_apimon.classify import classify
from pytest_apimon.config import ConfigError, load_config
from pytest_apimon.documents import BodyCheck, Expect, HeaderCheck, is_document
from pytest_apimon.load import load_document
from pytest_apimon.loader import Limits
from pytest_apimon.messages import localize, zh_document
from pytest_apimon.probe import Exchange, Request, send

# Backtracks exponentially in `re` and in `regex` alike on "aaaa…a!" (the issue's `"(A+)+"` is one `regex`
# happens to optimise; it is tested too, as a pattern that must still give its plain answer).
EVIL = r"(a|aa)+$"
EVIL_TEXT = "a" * 60 + "!"


def load(tmp_path: Path, text: str, limits: Limits | None = None, name: str = "doc.yaml") -> Any:
    path = tmp_path / "svc" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return load_document(path, tmp_path, environ={}, limits=limits or Limits())


def answer(body: bytes | str, headers: dict[str, str] | None = None) -> Exchange:
    data = body.encode() if isinstance(body, str) else body
    return Exchange("GET", "http://127.0.0.1/", {}, None, status=200, body=data, response_headers=headers or {})


# --- patterns.py ------------------------------------------------------------------------------------------------


def test_a_match_over_its_budget_raises_and_a_sane_one_answers() -> None:
    with pytest.raises(patterns.RegexTimeout, match=r"took longer than 1 ms: catastrophic backtracking\?"):
        patterns.Pattern(EVIL, 1).search(EVIL_TEXT)
    assert patterns.Pattern(r"a+!$").search(EVIL_TEXT)
    # The issue's example: the budget is the process's processor time, so a sane one is given here
    assert not patterns.Pattern(r'"(A+)+"').search('"' + "A" * 34 + "!")
    with pytest.raises(patterns.PatternError, match="invalid regular expression '\\(unclosed'"):
        patterns.compile_pattern("(unclosed")


def test_a_pattern_pickles_with_its_budget() -> None:  # the parse cache keeps documents pickled
    again = pickle.loads(pickle.dumps(patterns.Pattern(EVIL, 3)))
    assert (again.source, again.budget) == (EVIL, 3)
    with pytest.raises(patterns.RegexTimeout):
        again.search(EVIL_TEXT)


_PIECES = st.sampled_from(["a", "b", ".", "a*", "b+", "[ab]", "[^a]", "(a|b)", "(?:ab)?", "^", "$", r"\d", r"\w+",
                            "x{2}", "(?i)A", r"\.", "a*?", "(ab)+", "[a-c]{1,2}"])


@settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "150")), deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=5).map("".join), st.text(alphabet="abcxAB.1 \n", max_size=30))
def test_a_pattern_means_what_it_means_to_re(source: str, text: str) -> None:
    """Documents are written for Python's `re`; the `regex` module (VERSION0) must give the same answers."""
    try:
        expected = re.search(source, text) is not None
    except re.error:
        with pytest.raises(patterns.PatternError):
            patterns.compile_pattern(source, 1000)
        return
    assert patterns.compile_pattern(source, 1000).search(text) == expected


def test_the_budget_comes_from_limits_regex_timeout_ms(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("limits: {regex_timeout_ms: 7}\n", "utf-8")
    limits = load_config(tmp_path / "config.yaml", environ={}).limits
    assert limits.regex_timeout_ms == 7
    result = load(tmp_path, f"name: n\npath: /a\nexpect: {{body: [{{regex: '{EVIL}'}}], "
                            f"headers: {{X-A: {{regex: 'x+'}}}}}}\n", limits)
    (itf,) = result.interfaces
    assert itf.expect.body[0].value.budget == 7 and itf.expect.headers[0].value.budget == 7
    assert load(tmp_path, "name: n\npath: /a\nexpect: {body: [{regex: x}]}\n").interfaces[0] \
        .expect.body[0].value.budget == patterns.DEFAULT_BUDGET_MS
    for bad in ("0", "-5", "yes", "120000"):
        (tmp_path / "config.yaml").write_text(f"limits: {{regex_timeout_ms: {bad}}}\n", "utf-8")
        with pytest.raises(ConfigError, match="regex_timeout_ms"):
            load_config(tmp_path / "config.yaml", environ={})


@pytest.mark.parametrize("where", ["body", "body_path", "header", "schema"])
def test_a_regex_over_budget_is_the_documents_fault_not_the_services(tmp_path: Path, where: str) -> None:
    expect = {
        "body": f"body: [{{regex: '{EVIL}'}}]",
        "body_path": f"body: [{{path: s, regex: '{EVIL}'}}]",
        "header": f"headers: {{X-Name: {{regex: '{EVIL}'}}}}",
        "schema": f"schema: {{properties: {{s: {{pattern: '{EVIL}'}}}}}}",
    }[where]
    (itf,) = load(tmp_path, f"name: n\npath: /a\nexpect: {{{expect}}}\n", Limits(regex_timeout_ms=1)).interfaces
    out = classify(answer(json.dumps({"s": EVIL_TEXT}), {"X-Name": EVIL_TEXT}), itf.expect)
    assert (out.category, out.sub) == (Category.INVALID_DOCUMENT, "regex"), out
    assert out.reason.startswith(f"regex /{EVIL}/ took longer than 1 ms: catastrophic backtracking?")
    assert not Category.INVALID_DOCUMENT.transient  # never retried
    assert localize(out.reason, "zh").startswith(f"正则 /{EVIL}/ 匹配超过 1 ms")


def test_schema_patterns_in_pattern_properties_and_additional_properties_are_timed(tmp_path: Path) -> None:
    schema = {"type": "object", "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False}
    (itf,) = load(tmp_path, f"name: n\npath: /a\nexpect: {{schema: {json.dumps(schema)}}}\n").interfaces
    assert classify(answer('{"x-a": "1"}'), itf.expect).passed
    out = classify(answer('{"x-a": 1, "y": 2}'), itf.expect)
    assert out.sub == "schema" and "$: 'y' does not match any of the regexes: '^x-'" in out.reason
    assert "$['x-a']: 1 is not of type 'string'" in out.reason
    slow = {"type": "object", "patternProperties": {EVIL: {}}, "additionalProperties": False}
    (itf,) = load(tmp_path, f"name: n\npath: /a\nexpect: {{schema: {json.dumps(slow)}}}\n",
                  Limits(regex_timeout_ms=1)).interfaces
    assert classify(answer(json.dumps({EVIL_TEXT: 1})), itf.expect).sub == "regex"


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_the_issues_redos_run_ends_with_a_report_and_an_untouched_neighbour(pytester: pytest.Pytester,
                                                                           xdist: list[str]) -> None:
    from test_plugin import write

    with LocalServer() as srv:
        srv.route("POST", "/svc/echo", lambda r: Response(200, {"Content-Type": "text/plain"}, r.body))
        srv.route("GET", "/svc/items", lambda r: {"items": []})
        write(pytester.path, "config.yaml", f"""
            services:
              svc: {{base_url: {srv.url}/svc}}
            limits: {{regex_timeout_ms: 20}}
            report: {{json: out/report.json}}
            state: {{dir: out/state}}
        """)
        write(pytester.path, "pool/svc/r.yaml", f"""
            - name: redos
              method: POST
              path: /echo
              body: "{EVIL_TEXT}"
              expect: {{body: [{{regex: '{EVIL}'}}]}}
            - name: after
              path: /items
        """)
        result = pytester.runpytest("--apimon", "pool", "--apimon-lang", "en", *xdist)
        echoed = srv.count("/svc/echo")
    result.assert_outcomes(passed=1, failed=1)
    records = {r["name"]: r for r in json.loads((pytester.path / "out" / "report.json").read_text())["results"]}
    assert (records["redos"]["category"], records["redos"]["sub"], records["redos"]["attempts"]) == \
        ("invalid_document", "regex", 1)
    assert (records["after"]["outcome"], records["after"]["flaky"], records["after"]["attempts"]) == \
        ("passed", False, 1)
    assert echoed == 1  # sent once: a document's fault is not retried
    stdout = result.stdout.str()
    assert "took longer than 20 ms: catastrophic backtracking?" in stdout and "pytest-timeout" not in stdout


# --- expect.schema $refs -------------------------------------------------------------------------------------


def schema_files(tmp_path: Path) -> None:
    (tmp_path / "svc" / "schemas" / "common").mkdir(parents=True)
    (tmp_path / "svc" / "other.schema.json").write_text(json.dumps(
        {"type": "object", "required": ["zzz"], "properties": {"zzz": {"$ref": "schemas/common/id.yaml#/$defs/id"}}}))
    (tmp_path / "svc" / "schemas" / "common" / "id.yaml").write_text(
        "$schema: http://json-schema.org/draft-07/schema#\n$defs:\n  id: {type: integer, minimum: 1}\n")


def test_a_relative_ref_resolves_against_the_file_that_holds_it(tmp_path: Path) -> None:
    schema_files(tmp_path)
    result = load(tmp_path, "- {name: inline, path: /a, expect: {schema: {$ref: other.schema.json}}}\n"
                            "- {name: file, path: /a, expect: {schema: other.schema.json}}\n")
    assert result.errors == []
    for itf in result.interfaces:
        assert classify(answer('{"zzz": 3}'), itf.expect).passed
        out = classify(answer('{"zzz": 0}'), itf.expect)
        assert (out.category, out.sub, out.reason) == (
            Category.UNEXPECTED, "schema", "schema: $.zzz: 0 is less than the minimum of 1")
        assert classify(answer("{}"), itf.expect).reason == "schema: $: 'zzz' is a required property"


def test_checking_reads_no_file_the_refs_were_read_when_the_document_loaded(tmp_path: Path) -> None:
    schema_files(tmp_path)
    (itf,) = load(tmp_path, "name: n\npath: /a\nexpect: {schema: {$ref: other.schema.json}}\n").interfaces
    itf = pickle.loads(pickle.dumps(itf))  # as the parse cache gives it back
    (tmp_path / "svc" / "other.schema.json").unlink()
    assert classify(answer('{"zzz": 0}'), itf.expect).sub == "schema"


@pytest.mark.parametrize(("schema", "field", "message"), [
    ("{type: object, properties: {a: {$ref: 'http://127.0.0.1:{port}/remote.json'}}}",
     "expect.schema.properties.a.$ref", "$ref 'http://127.0.0.1:{port}/remote.json': a schema is never fetched"),
    ("'http://127.0.0.1:{port}/remote.json'", "expect.schema", "is a URL: a schema is never fetched over the network"),
    ("{$ref: 'file:///etc/hostname'}", "expect.schema.$ref", "schema file '/etc/hostname' is outside the pool"),
    ("../../../../../etc/passwd", "expect.schema", "schema file '../../../../../etc/passwd' is outside the pool"),
    ("{$ref: '../../outside.json'}", "expect.schema.$ref", "is outside the pool"),
    ("{$ref: 'missing.json'}", "expect.schema.$ref", "cannot read schema file 'missing.json'"),
    ("{$ref: 'other.schema.json#/nope'}", "expect.schema.$ref", "'/nope' does not exist in that schema"),
    ("{allOf: [{$ref: '#/$defs/none'}]}", "expect.schema.allOf[0].$ref", "'/$defs/none' does not exist"),
    ("{$ref: 'bad.schema.json'}", "expect.schema",  # the field holds the schema; the message names the file
     "$ref 'remote.json' in bad.schema.json at /properties/x/$ref: it names http://"),
])
def test_a_ref_that_cannot_be_read_from_the_pool_is_a_document_error_before_any_request(
        tmp_path: Path, srv: LocalServer, schema: str, field: str, message: str) -> None:
    srv.route("GET", "/remote.json", lambda r: {"type": "object"})
    port = srv.url.rsplit(":", 1)[1]
    schema_files(tmp_path)
    (tmp_path / "svc" / "bad.schema.json").write_text(json.dumps(
        {"$id": f"http://127.0.0.1:{port}/bad.json", "properties": {"x": {"$ref": "remote.json"}}}))
    (tmp_path.parent / "outside.json").write_text("{}")
    result = load(tmp_path, "name: n\npath: /a\nexpect:\n  schema: " + schema.replace("{port}", port) + "\n")
    assert result.interfaces == []
    (err,) = result.errors
    assert err.field == field and message.replace("{port}", port) in err.message, err
    assert err.line == 4 and "Wrapped" not in err.message
    assert srv.count("/remote.json") == 0  # never fetched
    assert "：" in zh_document(str(err))


def test_a_ref_inside_a_pool_reached_through_a_symlink_is_inside_the_pool(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "svc"
    shared.mkdir(parents=True)
    (shared / "s.schema.json").write_text('{"$ref": "t.schema.json"}')
    (shared / "t.schema.json").write_text('{"type": "integer"}')
    (shared / "doc.yaml").write_text("name: n\npath: /a\nexpect: {schema: s.schema.json}\n")
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "svc").symlink_to(shared)
    result = load_document(pool / "svc" / "doc.yaml", pool, environ={})
    assert result.errors == []
    assert classify(answer("3"), result.interfaces[0].expect).passed


def test_a_long_violation_keeps_its_reason_and_cuts_the_value(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"data": {"type": "object", "properties": {
        "items": {"type": "array", "maxItems": 2}, "name": {"type": "string", "maxLength": 3}}}}}
    (itf,) = load(tmp_path, f"name: n\npath: /a\nexpect: {{schema: {json.dumps(schema)}}}\n").interfaces
    items = [{"id": i, "price": 9.5, "state": "shipped"} for i in range(3)]
    out = classify(answer(json.dumps({"data": {"items": items, "name": "widget-service" * 10}})), itf.expect)
    first, second = out.reason.removeprefix("schema: ").split(", got ", 1)[0], out.reason
    assert first == "$.data.items: is too long (maxItems 2)", out.reason
    assert ', got [{"id": 0, "price": 9.5' in second
    assert "$.data.name: is too long (maxLength 3), got \"widget-service" in second
    out = classify(answer('{"data": {"name": "abcd"}}'), itf.expect)  # short: the library's own wording
    assert out.reason == "schema: $.data.name: 'abcd' is too long"


# --- impossible checks are document errors ------------------------------------------------------------------


@pytest.mark.parametrize(("expect", "field", "message"), [
    ("{body: [{regex: '(unclosed'}]}", "expect.body[0].regex", "invalid regular expression '(unclosed'"),
    ("{headers: {X Bad Name: true}}", "expect.headers.X Bad Name", "header name 'X Bad Name' can never be in a"),
    ("{headers: {'Content-Type:': {contains: json}}}", "expect.headers.Content-Type:", "can never be in a response"),
    ("{headers: {etag: true, ETAG: false}}", "expect.headers.ETAG",
     "header 'ETAG' is checked twice (also as 'etag'): header names are case-insensitive"),
])
def test_one_mistake_one_message(tmp_path: Path, expect: str, field: str, message: str) -> None:
    result = load(tmp_path, f"name: n\npath: /a\nexpect: {expect}\n")
    (err,) = result.errors
    assert (err.field, err.message.count("; ")) == (field, 0) and message in err.message, err
    assert "应为" not in zh_document(str(err))


@pytest.mark.parametrize("text", [
    "name: n\nmethod: HEAD\npath: /a\nexpect: {body: [{contains: ok}]}\n",
    "name: n\nmethod: head\npath: /a\nexpect: {schema: {type: object}}\n",
    "defaults: {method: HEAD}\ninterfaces:\n  - name: n\n    path: /a\n    expect: {body: [{path: a, exists: true}]}\n",
    "defaults: {expect: {body: [{contains: ok}]}}\ninterfaces:\n  - {name: n, method: HEAD, path: /a}\n",
])
def test_a_body_check_on_head_is_a_document_error(tmp_path: Path, text: str) -> None:
    result = load(tmp_path, text)
    (err,) = result.errors
    assert "HEAD responses have no body (RFC 9110 §9.3.2)" in err.message, err
    assert result.interfaces == []
    assert load(tmp_path, "name: n\nmethod: HEAD\npath: /a\nexpect: {headers: {ETag: true}}\n").errors == []


def test_numbers_in_text_checks_are_their_text_as_written_for_bodies_and_headers(
        tmp_path: Path, srv: LocalServer, session: requests.Session) -> None:
    result = load(tmp_path, "name: n\npath: /v\nexpect:\n  body: [{contains: 404}, {contains: 1.10}]\n"
                            "  headers: {X-Version: {contains: 1.10}, X-Build: 007}\n")
    (itf,) = result.interfaces
    assert itf.expect.body == (BodyCheck(None, "contains", "404"), BodyCheck(None, "contains", "1.10"))
    assert itf.expect.headers == (HeaderCheck("X-Version", "contains", "1.10"), HeaderCheck("X-Build", "equals", "007"))
    srv.route("GET", "/v", lambda r: Response(200, {"X-Version": "v1.10", "X-Build": "007"}, "error 404 in 1.10"))
    assert classify(send(session, Request("GET", srv.url + "/v")), itf.expect).passed
    srv.route("GET", "/w", lambda r: Response(200, {"X-Version": "v1.1", "X-Build": "007"}, "error 404 in 1.1"))
    out = classify(send(session, Request("GET", srv.url + "/w")), itf.expect)
    assert out.reason == 'header X-Version: expected to contain "1.10", got "v1.1"'
    assert classify(send(session, Request("GET", srv.url + "/w")), Expect(body=itf.expect.body)).reason == \
        'body: expected to contain "1.10"'


# --- schema files in a pool are not documents ----------------------------------------------------------------


def test_schema_files_are_not_collected_as_documents(pytester: pytest.Pytester) -> None:
    from test_plugin import write

    with LocalServer() as srv:
        srv.route("GET", "/svc/items", lambda r: {"items": [1]})
        write(pytester.path, "config.yaml", f"services:\n  svc: {{base_url: {srv.url}/svc}}\n"
                                            "state: {dir: out/state}\n")
        write(pytester.path, "pool/svc/schemas/items.schema.yaml", "type: object\nrequired: [items]\n")
        write(pytester.path, "pool/svc/schemas/plain.json", '{"type": "object", "required": ["items"]}')
        write(pytester.path, "pool/svc/schemas/part.json", '{"type": "array"}')
        write(pytester.path, "pool/svc/schemas/ref.yaml", "properties: {items: {$ref: part.json}}\n")
        write(pytester.path, "pool/svc/a.yaml", """
            - {name: yaml, path: /items, expect: {schema: schemas/items.schema.yaml}}
            - {name: plain, path: /items, expect: {schema: schemas/plain.json}}
            - {name: ref, path: /items, expect: {schema: schemas/ref.yaml}}
        """)
        result = pytester.runpytest("--apimon", "pool", "-p", "no:randomly")
        again = pytester.runpytest("--apimon", "pool", "-p", "no:randomly")  # from the parse cache
        (pytester.path / "pool/svc/schemas/part.json").write_text('{"type": "object"}')
        changed = pytester.runpytest("--apimon", "pool", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    again.assert_outcomes(passed=3)
    changed.assert_outcomes(passed=2, failed=1)  # a changed schema file is read again, not taken from the cache
    assert is_document(Path("x.yaml")) and not is_document(Path("items.schema.yml"))
