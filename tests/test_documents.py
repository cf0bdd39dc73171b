"""Interface documents: the three forms, defaults, env substitution and every error kind."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pytest_apimon.documents import (
    BodyCheck,
    DocumentError,
    DocumentFile,
    Expect,
    Interface,
    NameRegistry,
    is_document,
    schema_path,
    service_and_module,
)
from pytest_apimon.load import load_document

# Valid documents, shared with test_schema.py: name -> (file name, text). Each YAML has a JSON twin.
SINGLE_YAML = """\
# yaml-language-server: $schema=../../schema.json
name: 获取用户信息
method: get
path: api/users/me
params: {lang: zh-CN, ids: [1, 2]}
headers: {X-Trace: 1, Accept: application/json}
expect:
  status: [200, 3xx]
  body:
    - {path: data.name, equals: 张三}
    - {path: data.id, type: integer}
    - {path: data.deleted, exists: false}
  max_ms: 800
timeout: 5
tags: smoke
description: 查询当前用户
"""
SINGLE_JSON = json.dumps(
    {
        "$schema": "../../schema.json",
        "name": "获取用户信息",
        "method": "get",
        "path": "api/users/me",
        "params": {"lang": "zh-CN", "ids": [1, 2]},
        "headers": {"X-Trace": 1, "Accept": "application/json"},
        "expect": {
            "status": [200, "3xx"],
            "body": [
                {"path": "data.name", "equals": "张三"},
                {"path": "data.id", "type": "integer"},
                {"path": "data.deleted", "exists": False},
            ],
            "max_ms": 800,
        },
        "timeout": 5,
        "tags": "smoke",
        "description": "查询当前用户",
    },
    ensure_ascii=False,
    indent=2,
)
LIST_YAML = """\
- name: health
  url: https://api.example.com/health
  auth: false
- name: login
  method: POST
  path: /login
  json: {user: alice, remember: true, roles: [admin], extra: null}
  auth: other
  skip: true
"""
LIST_JSON = """\
[
  {"name": "health", "url": "https://api.example.com/health", "auth": false},
  {"name": "login", "method": "POST", "path": "/login",
   "json": {"user": "alice", "remember": true, "roles": ["admin"], "extra": null},
   "auth": "other", "skip": true}
]
"""
FILE_YAML = """\
service: account-svc
module: core
defaults:
  headers: {X-App: apimon, X-Env: test}
  params: {v: 1}
  expect: {status: 200, max_ms: 1000}
  tags: [smoke]
  timeout: 3
interfaces:
  - name: a
    path: /a
    headers: {X-Env: prod}
    expect: {max_ms: 200}
    tags: [p0, smoke]
  - name: b
    method: post
    path: /b
    form: {k: v}
    timeout: 10
"""
FILE_JSON = """\
{
  "service": "account-svc",
  "module": "core",
  "defaults": {
    "headers": {"X-App": "apimon", "X-Env": "test"},
    "params": {"v": 1},
    "expect": {"status": 200, "max_ms": 1000},
    "tags": ["smoke"],
    "timeout": 3
  },
  "interfaces": [
    {"name": "a", "path": "/a", "headers": {"X-Env": "prod"}, "expect": {"max_ms": 200}, "tags": ["p0", "smoke"]},
    {"name": "b", "method": "post", "path": "/b", "form": {"k": "v"}, "timeout": 10}
  ]
}
"""
VALID_DOCUMENTS = {
    "single": ("single.yaml", SINGLE_YAML),
    "single-json": ("single.json", SINGLE_JSON),
    "list": ("list.yml", LIST_YAML),
    "list-json": ("list.json", LIST_JSON),
    "file": ("file.yaml", FILE_YAML),
    "file-json": ("file.json", FILE_JSON),
}


def load(tmp_path: Path, rel: str, text: str | bytes, environ: dict[str, str] | None = None) -> DocumentFile:
    pool = tmp_path / "Interface-pool"
    path = pool / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return load_document(path, pool, display=f"Interface-pool/{rel}", environ=environ or {})


def only_error(result: DocumentFile) -> DocumentError:
    assert result.interfaces == []
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def one_error(result: DocumentFile) -> DocumentError:
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def portable(itf: Interface) -> Interface:
    """What must be equal between a YAML file and its JSON twin."""
    return dataclasses.replace(itf, file="", line=None)


# --- the three forms -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_single_interface(tmp_path: Path, suffix: str) -> None:
    text = SINGLE_YAML if suffix == "yaml" else SINGLE_JSON
    result = load(tmp_path, f"user/profile.{suffix}", text)
    assert result.errors == []
    (itf,) = result.interfaces
    assert itf == Interface(
        name="获取用户信息",
        service="user",
        module="profile",
        method="GET",
        path="/api/users/me",
        params={"lang": "zh-CN", "ids": ["1", "2"]},
        headers={"X-Trace": "1", "Accept": "application/json"},
        expect=Expect(
            status=(200, "3xx"),
            body=(
                BodyCheck("data.name", "equals", "张三"),
                BodyCheck("data.id", "type", "integer"),
                BodyCheck("data.deleted", "exists", False),
            ),
            max_ms=800.0,
        ),
        timeout=5.0,
        tags=("smoke",),
        description="查询当前用户",
        file=f"Interface-pool/user/profile.{suffix}",
        line=2 if suffix == "yaml" else 1,
        index=0,
    )
    assert not itf.has_json
    assert itf.key == "user/获取用户信息"


def test_list_of_interfaces(tmp_path: Path) -> None:
    result = load(tmp_path, "user/list.yml", LIST_YAML)
    assert result.errors == []
    health, login = result.interfaces
    assert (health.url, health.path, health.auth) == ("https://api.example.com/health", None, False)
    assert health.method == "GET"
    assert (health.line, health.index) == (1, 0)
    assert login.json == {"user": "alice", "remember": True, "roles": ["admin"], "extra": None}
    assert login.has_json and login.auth == "other" and login.skip == "skipped in document"
    assert (login.line, login.index) == (4, 1)


def test_interfaces_with_defaults(tmp_path: Path) -> None:
    result = load(tmp_path, "user/account/file.yaml", FILE_YAML)
    assert result.errors == []
    a, b = result.interfaces
    assert (a.service, a.module) == ("account-svc", "core")  # file-level override
    assert a.headers == {"X-App": "apimon", "X-Env": "prod"}  # merged, interface wins
    assert a.params == {"v": "1"}
    assert a.expect == Expect(status=(200,), max_ms=200.0)  # merged per key
    assert a.tags == ("smoke", "p0")  # union, defaults first, no duplicates
    assert a.timeout == 3.0
    assert (b.method, b.form, b.timeout, b.tags) == ("POST", {"k": "v"}, 10.0, ("smoke",))
    assert b.expect == Expect(status=(200,), max_ms=1000.0)
    assert (a.line, b.line, b.index) == (10, 15, 1)


@pytest.mark.parametrize("stem", ["single", "list", "file"])
def test_yaml_and_json_twins_are_equal(tmp_path: Path, stem: str) -> None:
    yaml_name, yaml_text = VALID_DOCUMENTS[stem]
    json_name, json_text = VALID_DOCUMENTS[f"{stem}-json"]
    from_yaml = load(tmp_path, f"svc/{yaml_name}", yaml_text)
    from_json = load(tmp_path, f"svc/{json_name}", json_text)
    assert from_yaml.errors == from_json.errors == []
    assert [portable(i) for i in from_yaml.interfaces] == [portable(i) for i in from_json.interfaces]


def test_defaults_do_not_alias_between_interfaces(tmp_path: Path) -> None:
    text = "defaults: {json: {a: [1]}, path: /p}\ninterfaces:\n  - {name: x}\n  - {name: y, url: 'http://h/y'}\n"
    x, y = load(tmp_path, "s/f.yaml", text).interfaces
    assert x.json == y.json == {"a": [1]} and x.json is not y.json
    assert (x.path, y.path, y.url) == ("/p", None, "http://h/y")  # path/url is one slot: the interface wins


def test_bom_and_chinese_values(tmp_path: Path) -> None:
    text = "\ufeffname: 下单\npath: /订单\nparams: {城市: 北京}\n"
    (itf,) = load(tmp_path, "订单服务/下单.yaml", text).interfaces
    assert (itf.name, itf.service, itf.module, itf.path) == ("下单", "订单服务", "下单", "/订单")
    assert itf.params == {"城市": "北京"}


# --- service and module --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("user/x.yaml", ("user", "x")),
        ("user/account/profile.yaml", ("user", "account")),
        ("user/account/deep/more.yaml", ("user", "account")),
        ("user/account.yaml", ("user", "account")),
        ("health.json", ("health", "health")),
    ],
)
def test_service_and_module(tmp_path: Path, rel: str, expected: tuple[str, str]) -> None:
    pool = tmp_path / "Interface-pool"
    assert service_and_module(pool / rel, pool) == expected


def test_service_and_module_from_loaded_file(tmp_path: Path) -> None:
    (itf,) = load(tmp_path, "user/account/profile.yaml", "name: a\npath: /a\n").interfaces
    assert (itf.service, itf.module) == ("user", "account")
    (itf,) = load(tmp_path, "user/account/p.yaml", "service: 用户中心\nmodule: 资料\nname: a\npath: /a\n").interfaces
    assert (itf.service, itf.module) == ("用户中心", "资料")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.yaml", True),
        ("a.YML", True),
        ("b.json", True),
        ("README.md", False),
        (".DS_Store", False),
        (".hidden.yaml", False),
        ("logo.png", False),
        ("notes.txt", False),
    ],
)
def test_is_document(tmp_path: Path, name: str, expected: bool) -> None:
    path = tmp_path / name
    path.write_text("x")
    assert is_document(path) is expected


def test_directory_is_not_a_document(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").mkdir()
    assert not is_document(tmp_path / "odd.yaml")


def test_schema_path_is_packaged() -> None:
    assert schema_path().is_file()
    assert json.loads(schema_path().read_text(encoding="utf-8"))["$schema"].startswith(
        "http://json-schema.org/draft-07"
    )


# --- environment variables -----------------------------------------------------------------------


def test_env_substitution(tmp_path: Path) -> None:
    text = (
        "defaults:\n  headers: {Authorization: 'Bearer ${TOKEN}'}\n"
        "interfaces:\n"
        "  - name: ${PREFIX:-用户}-health\n    url: ${BASE}/health\n    json: {k: '${TOKEN}', n: 1, lit: '$${NOPE}'}\n"
    )
    (itf,) = load(tmp_path, "s/env.yaml", text, environ={"TOKEN": "t0k", "BASE": "https://h.example"}).interfaces
    assert itf.name == "用户-health"
    assert itf.url == "https://h.example/health"
    assert itf.headers == {"Authorization": "Bearer t0k"}
    assert itf.json == {"k": "t0k", "n": 1, "lit": "${NOPE}"}


def test_env_missing_in_interface_names_variable_and_field(tmp_path: Path) -> None:
    text = "- name: ok\n  path: /ok\n- name: needs-token\n  url: ${BASE}/x\n  headers:\n    Authorization: ${TOKEN}\n"
    result = load(tmp_path, "s/env.yaml", text, environ={"BASE": "http://h"})
    assert [i.name for i in result.interfaces] == ["ok"]
    err = one_error(result)
    assert (err.file, err.line, err.field, err.name, err.index) == (
        "Interface-pool/s/env.yaml",
        6,
        "[1].headers.Authorization",
        "needs-token",
        1,
    )
    assert "${TOKEN}" in err.message and "not set" in err.message


def test_env_missing_var_is_not_reported_twice(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/env.yaml", "name: x\nurl: ${BASE}/x\n"))
    assert err.field == "url"
    assert "${BASE}" in err.message and "malformed" not in err.message


def test_env_missing_in_defaults_fails_the_file(tmp_path: Path) -> None:
    text = "defaults:\n  headers:\n    X-Key: ${API_KEY}\ninterfaces:\n  - {name: a, path: /a}\n"
    err = only_error(load(tmp_path, "s/env.yaml", text))
    assert (err.line, err.field, err.name, err.index) == (3, "defaults.headers.X-Key", None, None)
    assert "${API_KEY}" in err.message


# --- file-level errors: exactly one error, no interfaces -----------------------------------------


def test_yaml_syntax_error(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/bad.yaml", "name: a\npath: /a\nheaders: {X: 1\nmethod: GET\n"))
    assert err.file == "Interface-pool/s/bad.yaml"
    assert err.line == 4 and err.field == ""
    assert err.message.startswith("invalid YAML:")


def test_json_syntax_error(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/bad.json", '{\n  "name": "a",\n  "path": "/a",\n}\n'))
    assert (err.line, err.field) == (4, "")
    assert err.message.startswith("invalid JSON:") and "double quotes" in err.message


@pytest.mark.parametrize("text", ["", "   \n\n", "# just a comment\n# another\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    err = only_error(load(tmp_path, "s/empty.yaml", text))
    assert err.message == "empty document: expected an interface (a mapping with 'name') or a list of interfaces"
    assert err.field == ""


def test_empty_json_file(tmp_path: Path) -> None:
    assert only_error(load(tmp_path, "s/empty.json", " \n")).message.startswith("empty document")


def test_not_utf8(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/gbk.yaml", b"\xff\xfename: a\n"))
    assert err.message == "file is not valid UTF-8 text (invalid byte 0xff at offset 0); save it as UTF-8"
    err = only_error(load(tmp_path, "s/gbk2.yaml", b"name: a\npath: /" + "用户".encode("gbk")))
    assert "invalid byte 0xd3 at offset 15" in err.message and err.line == 2


@pytest.mark.parametrize(("text", "got"), [("just text\n", "got string 'just text'"), ("42\n", "got integer 42")])
def test_top_level_of_wrong_type(tmp_path: Path, text: str, got: str) -> None:
    err = only_error(load(tmp_path, "s/x.yaml", text))
    assert err.message.startswith("expected an interface (a mapping with 'name'), a list of interfaces")
    assert got in err.message


def test_unknown_file_level_key(tmp_path: Path) -> None:
    text = "service: s\ndefualts: {timeout: 1}\ninterfaces:\n  - {name: a, path: /a}\n"
    err = only_error(load(tmp_path, "s/x.yaml", text))
    assert (err.line, err.field) == (2, "defualts")
    assert err.message == "unknown key 'defualts' (did you mean 'defaults'?)"


def test_interface_key_at_file_level_hints_defaults(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/x.yaml", "headers: {A: b}\ninterfaces: []\n"))
    assert err.field == "headers" and "under 'defaults'" in err.message


@pytest.mark.parametrize(
    ("defaults", "field", "message"),
    [
        ("[1, 2]", "defaults", "expected a mapping of interface fields"),
        ("{name: x}", "defaults.name", "'name' is not allowed in defaults"),
        ("{methd: GET}", "defaults.methd", "unknown key 'methd' (did you mean 'method'?)"),
        ("{timeout: -1}", "defaults.timeout", "expected a positive number of seconds, got integer -1"),
        ("{path: /a, url: 'http://h'}", "defaults.url", "not both"),
    ],
)
def test_bad_defaults_fail_the_file(tmp_path: Path, defaults: str, field: str, message: str) -> None:
    err = only_error(load(tmp_path, "s/x.yaml", f"defaults: {defaults}\ninterfaces:\n  - {{name: a, path: /a}}\n"))
    assert (err.line, err.field, err.index) == (1, field, None)
    assert message in err.message


def test_interfaces_not_a_list(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/x.yaml", "interfaces:\n  name: a\n"))
    assert (err.field, err.message) == ("interfaces", "expected a list of interfaces, got a mapping")


def test_bad_service_override(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/x.yaml", "service: [a]\nname: a\npath: /a\n"))
    assert (err.line, err.field) == (1, "service")
    assert "expected a non-empty string, got a list" in err.message


# --- interface-level errors ----------------------------------------------------------------------


def interface_error(tmp_path: Path, body: str, suffix: str = "yaml") -> DocumentError:
    """Load a form-3 file: a good interface, then the bad one at interfaces[1] (line 4)."""
    text = "interfaces:\n  - name: good\n    path: /good\n" + body
    result = load(tmp_path, f"user/x.{suffix}", text)
    assert [i.name for i in result.interfaces] == ["good"]
    err = one_error(result)
    assert err.file == f"Interface-pool/user/x.{suffix}" and err.index == 1
    return err


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    err = interface_error(tmp_path, "  - name: 获取用户信息\n    path: /u\n    heders: {A: b}\n")
    assert (err.line, err.field, err.name) == (6, "interfaces[1].heders", "获取用户信息")
    assert err.message == "unknown key 'heders' (did you mean 'headers'?)"


def test_unknown_key_without_close_match_lists_keys(tmp_path: Path) -> None:
    err = interface_error(tmp_path, "  - name: n\n    path: /u\n    zzz: 1\n")
    assert err.message.startswith("unknown key 'zzz'; expected one of name, method, path, url")


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("timeout: fast", "interfaces[1].timeout", "expected a positive number of seconds, got string 'fast'"),
        ("headers: [a]", "interfaces[1].headers", "expected a mapping of header names to values, got a list"),
        ("headers: {X-On: true}", "interfaces[1].headers.X-On", "got boolean true (quote it in YAML)"),
        ("params: {q: {a: 1}}", "interfaces[1].params.q", "expected a string, number, boolean or a list"),
        ("auth: 0", "interfaces[1].auth", "expected true, false or the name of the service"),
        ("skip: 1", "interfaces[1].skip", "expected a reason (string) or true, got integer 1"),
        ("description: !!timestamp 2024-01-01", "interfaces[1].description", "date 2024-01-01 (quote it"),
        ("json: {when: !!timestamp 2024-01-01}", "interfaces[1].json.when", "expected a JSON value, got date"),
        ("body: {a: 1}", "interfaces[1].body", "expected a string, got a mapping"),
        ("expect: [200]", "interfaces[1].expect", "expected a mapping with status, body, headers and/or max_ms"),
        ("expect: {max_ms: 0}", "interfaces[1].expect.max_ms", "expected a positive number of milliseconds"),
        ("expect: {stauts: 200}", "interfaces[1].expect.stauts", "unknown key 'stauts' (did you mean 'status'?)"),
    ],
)
def test_wrong_type(tmp_path: Path, line: str, field: str, message: str) -> None:
    err = interface_error(tmp_path, f"  - name: n\n    path: /u\n    {line}\n")
    assert (err.line, err.field, err.name) == (6, field, "n")
    assert message in err.message


def test_missing_name(tmp_path: Path) -> None:
    err = interface_error(tmp_path, "  - path: /u\n    method: GET\n")
    assert (err.line, err.field, err.name) == (4, "interfaces[1].name", None)
    assert err.message == "missing required field 'name'"


@pytest.mark.parametrize(
    ("name", "message"),
    [("''", "must not be empty"), ("'a::b'", "must not contain '::'"), ("123", "got integer 123")],
)
def test_bad_name(tmp_path: Path, name: str, message: str) -> None:
    err = interface_error(tmp_path, f"  - name: {name}\n    path: /u\n")
    assert (err.field, err.name) == ("interfaces[1].name", None)
    assert message in err.message


def test_missing_name_in_single_form(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/x.yaml", "# c\nmethod: GET\npath: /u\n"))
    assert (err.line, err.field, err.index) == (2, "name", 0)
    assert err.message == "missing required field 'name'"


def test_unknown_method(tmp_path: Path) -> None:
    err = interface_error(tmp_path, "  - name: n\n    method: GTE\n    path: /u\n")
    assert (err.line, err.field) == (5, "interfaces[1].method")
    assert err.message == (
        "unknown HTTP method 'GTE' (did you mean 'GET'?); expected one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
    )


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("url: htp://x", "url", "malformed URL 'htp://x': scheme 'htp' is not http or https (did you mean 'http'?)"),
        ("url: 'http://'", "url", "malformed URL 'http://': missing host"),
        ("url: /relative", "url", "malformed URL '/relative': expected an absolute URL starting with http:// or"),
        ("url: example.com/x", "url", "malformed URL 'example.com/x': expected an absolute URL"),
        ("url: 'http://h:99999/x'", "url", "the port is not a number"),
        ("url: 'http://h/a b'", "url", "contains whitespace"),
        ("path: 'https://api.example.com/x'", "path", "must not be a full URL"),
    ],
)
def test_malformed_url(tmp_path: Path, value: str, field: str, message: str) -> None:
    err = interface_error(tmp_path, f"  - name: n\n    {value}\n")
    assert (err.line, err.field) == (5, f"interfaces[1].{field}")
    assert message in err.message


def test_relative_url_suggests_path_and_full_path_suggests_url(tmp_path: Path) -> None:
    assert "use 'path'" in interface_error(tmp_path, "  - name: n\n    url: /relative\n").message
    assert "use 'url'" in interface_error(tmp_path, "  - name: n\n    path: http://h/x\n").message


def test_missing_path_or_url(tmp_path: Path) -> None:
    err = interface_error(tmp_path, "  - name: n\n    method: GET\n")
    assert (err.line, err.field, err.message) == (4, "interfaces[1].path", "missing required field: path or url")


def test_both_path_and_url(tmp_path: Path) -> None:
    err = interface_error(tmp_path, "  - name: n\n    path: /a\n    url: 'http://h/a'\n")
    assert (err.line, err.field) == (6, "interfaces[1].url")
    assert "either 'path'" in err.message and "not both" in err.message


def test_two_bodies(tmp_path: Path) -> None:
    err = interface_error(tmp_path, "  - name: n\n    path: /a\n    json: {a: 1}\n    form: {a: 1}\n")
    assert (err.line, err.field) == (7, "interfaces[1].form")
    assert err.message == "at most one body is allowed (json, form or body), got 'json' and 'form'"


@pytest.mark.parametrize(
    ("status", "line", "field", "message"),
    [
        ("abc", 7, "status", "expected a list of status codes or a single code (100-599 or a pattern like '2xx'), "
                             "got string 'abc'"),
        ("[200, abc]", 7, "status[1]", "expected a status code (100-599) or a pattern like '2xx', got string 'abc'"),
        ("600", 7, "status", "status code 600 is out of range: expected 100-599"),
        ("[200, true]", 7, "status[1]", "expected a status code (100-599) or a pattern like '2xx', got boolean true"),
    ],
)  # fmt: skip
def test_bad_status(tmp_path: Path, status: str, line: int, field: str, message: str) -> None:
    err = interface_error(tmp_path, f"  - name: n\n    path: /a\n    expect:\n      status: {status}\n")
    assert (err.line, err.field) == (line, f"interfaces[1].expect.{field}")
    assert err.message == message


def test_status_string_forms_are_normalised(tmp_path: Path) -> None:
    (itf,) = load(tmp_path, "s/x.yaml", "name: n\npath: /\nexpect: {status: ['201', 4XX]}\n").interfaces
    assert itf.expect.status == (201, "4xx")


@pytest.mark.parametrize(
    ("check", "field", "message"),
    [
        ("{path: data.id}", "body[0]", "missing check: expected exactly one of equals, not_equals, exists"),
        ("{path: a, equals: 1, exists: true}", "body[0].exists", "got 'equals' and 'exists'"),
        ("{path: a, type: str}", "body[0].type", "unknown type string 'str' (did you mean 'string'?)"),
        ("{path: a, exists: 'yes'}", "body[0].exists", "expected true or false, got string 'yes'"),
        ("{path: 'data..id', exists: true}", "body[0].path", "malformed body path 'data..id'"),
        ("{equals: 1}", "body[0].path", "missing required field 'path'"),
        ("{path: a, equal: 1}", "body[0].equal", "unknown key 'equal' (did you mean 'equals'?)"),
        ("data.id", "body[0]", "expected a body check"),
    ],
)
def test_bad_body_check(tmp_path: Path, check: str, field: str, message: str) -> None:
    err = interface_error(tmp_path, f"  - name: n\n    path: /a\n    expect:\n      body:\n        - {check}\n")
    assert (err.line, err.field) == (8, f"interfaces[1].expect.{field}")
    assert message in err.message


def test_body_check_path_forms(tmp_path: Path) -> None:
    text = (
        "name: n\npath: /\nexpect:\n  body:\n    - {path: '$.data.items[0].id', exists: true}\n"
        "    - {path: '$', type: object}\n    - {path: '', equals: {ok: true}}\n    - {path: '[0]', type: null}\n"
    )
    (itf,) = load(tmp_path, "s/x.yaml", text).interfaces
    assert [c.path for c in itf.expect.body] == ["data.items[0].id", "$", "", "[0]"]
    assert itf.expect.body[2].value == {"ok": True}


@pytest.mark.parametrize(
    ("tags", "field", "message"),
    [
        ("smoke test", "tags", "invalid tag string 'smoke test'"),
        ("[ok, 1st]", "tags[1]", "invalid tag string '1st'"),
        ("[ok, skip]", "tags[1]", "tag 'skip' is reserved by pytest"),
        ("{a: 1}", "tags", "expected a tag or a list of tags, got a mapping"),
    ],
)
def test_bad_tag(tmp_path: Path, tags: str, field: str, message: str) -> None:
    err = interface_error(tmp_path, f"  - name: n\n    path: /a\n    tags: {tags}\n")
    assert (err.line, err.field) == (6, f"interfaces[1].{field}")
    assert message in err.message


def test_all_problems_of_an_interface_in_one_error(tmp_path: Path) -> None:
    text = (
        '{"interfaces": [\n  {"name": "good", "path": "/g"},\n'
        '  {"name": "n",\n   "method": "GTE",\n   "path": "/a",\n   "timeout": "x"}\n]}\n'
    )
    result = load(tmp_path, "s/x.json", text)
    assert [i.name for i in result.interfaces] == ["good"]
    err = one_error(result)
    assert (err.line, err.field, err.name, err.index) == (4, "interfaces[1].method", "n", 1)
    assert err.message.startswith("unknown HTTP method 'GTE'")
    assert err.message.endswith("; interfaces[1].timeout: expected a positive number of seconds, got string 'x'")


def test_duplicate_name_within_file(tmp_path: Path) -> None:
    text = "- name: 获取用户信息\n  path: /a\n- name: other\n  path: /b\n- name: 获取用户信息\n  path: /c\n"
    result = load(tmp_path, "user/a.yaml", text)
    assert [i.name for i in result.interfaces] == ["获取用户信息", "other"]
    err = one_error(result)
    assert (err.line, err.field, err.name, err.index) == (5, "[2].name", "获取用户信息", 2)
    assert err.message == (
        "duplicate interface name '获取用户信息' in service 'user' (first defined at Interface-pool/user/a.yaml:1)"
    )


def test_duplicate_name_across_files() -> None:
    registry = NameRegistry()
    first = Interface("获取用户信息", "user", "m", "GET", path="/a", file="Interface-pool/user/a.yaml", line=3)
    again = dataclasses.replace(first, file="Interface-pool/user/b.yaml", line=7, index=2)
    other_service = dataclasses.replace(first, service="order")
    assert registry.claim(first) is None
    assert registry.claim(other_service) is None
    err = registry.claim(again)
    assert err == DocumentError(
        "Interface-pool/user/b.yaml",
        7,
        "name",
        "duplicate interface name '获取用户信息' in service 'user' (first defined at Interface-pool/user/a.yaml:3)",
        "获取用户信息",
        2,
    )
    assert str(err).startswith("Interface-pool/user/b.yaml:7: name: duplicate interface name")


def test_duplicate_name_across_loaded_files(tmp_path: Path) -> None:
    registry = NameRegistry()
    a = load(tmp_path, "user/a.yaml", "# first\nname: 获取用户信息\npath: /a\n").interfaces[0]
    b = load(tmp_path, "user/sub/b.json", '{"name": "获取用户信息", "path": "/b"}').interfaces[0]
    assert registry.claim(a) is None
    err = registry.claim(b)
    assert err is not None and "(first defined at Interface-pool/user/a.yaml:2)" in err.message


def test_bad_interface_next_to_good_ones(tmp_path: Path) -> None:
    text = (
        "interfaces:\n"
        "  - {name: one, path: /1}\n"
        "  - name: two\n    path: /2\n    expect: {status: abc}\n"
        "  - 5\n"
        "  - {name: three, path: /3}\n"
    )
    result = load(tmp_path, "s/mixed.yaml", text)
    assert [(i.name, i.index, i.line) for i in result.interfaces] == [("one", 0, 2), ("three", 3, 7)]
    two, five = result.errors
    assert (two.name, two.index, two.line, two.field) == ("two", 1, 5, "interfaces[1].expect.status")
    assert (five.name, five.index, five.line, five.field) == (None, 2, 6, "interfaces[2]")
    assert five.message == "expected an interface (a mapping with 'name' and 'path' or 'url'), got integer 5"


def test_defaults_key_in_single_form(tmp_path: Path) -> None:
    err = only_error(load(tmp_path, "s/x.yaml", "name: a\npath: /a\ndefaults: {timeout: 1}\n"))
    assert (err.field, err.line) == ("defaults", 3)
    assert "only allowed next to 'interfaces'" in err.message


def test_error_str() -> None:
    err = DocumentError("f.yaml", 3, "interfaces[0].method", "bad")
    assert str(err) == "f.yaml:3: interfaces[0].method: bad"
    assert str(DocumentError("f.yaml", None, "", "empty")) == "f.yaml: empty"


# -- issue 12 red team L7: a ${VAR} that reads like a key is a secret wherever it is substituted -----------
def test_l7_key_like_substituted_values_are_secrets_and_ordinary_ones_are_not(tmp_path) -> None:
    from pytest_apimon.redact import looks_like_key

    folder = tmp_path / "pool" / "svc"
    folder.mkdir(parents=True)
    (folder / "d.yaml").write_text('- {name: a, path: "/fail/${SEG_VAL}/x/${ORDER}/${REGION}"}\n', encoding="utf-8")
    doc = load_document(folder / "d.yaml", tmp_path / "pool", environ={
        "SEG_VAL": "Onyx-Seg-4471", "ORDER": "order-2024", "REGION": "prod-eu-west-1", "UNUSED": "Zz9-unused-1"})
    assert not doc.errors and doc.secrets == ["Onyx-Seg-4471"]
    for ordinary in ("order-2024", "user_123", "prod-eu-west-1", "v1.2.3", "api.example.com", "Mozilla/5.0",
                     "2024-01-01", "production", "127.0.0.1:8080"):
        assert not looks_like_key(ordinary), ordinary
    for key in ("Onyx-Seg-4471", "a3f9c2e1b7", "sk_live_51HxYzAbCdEf", "k-93jd82hd"):
        assert looks_like_key(key), key


def test_l4_document_errors_show_the_variable_for_escaped_and_partial_values(tmp_path) -> None:
    folder = tmp_path / "pool" / "svc"
    folder.mkdir(parents=True)
    (folder / "d.yaml").write_text('- {name: a, path: /x, method: "${M}", timeout: "x${T}"}\n', encoding="utf-8")
    doc = load_document(folder / "d.yaml", tmp_path / "pool",
                        environ={"M": 'Zq"7\\\\密码-Lx42', "T": "Pumice-Secret-7788"})
    text = str([e.message for e in doc.errors]).lower()
    assert doc.errors and "lx42" not in text and "pumice" not in text and "7788" not in text, text
    assert "${m}" in text and "${t}" in text, text
