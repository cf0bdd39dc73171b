"""Issue 13: no input can abort, hang or exhaust the run; every fault becomes one classified result.

One regression test per kind of fault (the issue's example is the first case of each). Loader, documents and
config are tested directly; collection and the run itself with pytester.
"""

from __future__ import annotations

import json
import textwrap
import threading
import tracemalloc
from pathlib import Path

import pytest
from localserver import LocalServer

from pytest_apimon import bodypath
from pytest_apimon.classify import classify
from pytest_apimon.config import ConfigError, load_config
from pytest_apimon.documents import BodyCheck, DocumentFile, Expect, HeaderCheck, Interface
from pytest_apimon.load import load_document
from pytest_apimon.loader import Limits, ParseError, parse
from pytest_apimon.probe import Exchange
from pytest_apimon.results import InterfaceResult
from pytest_apimon.retries import RetryPolicy
from pytest_apimon.runner import Runner

PEAK_BYTES = 50 * 1024 * 1024  # the bound for a hostile file


def write(base: Path, rel: str, text: str | bytes) -> Path:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, rel: str, text: str | bytes, limits: Limits | None = None) -> DocumentFile:
    path = write(tmp_path, rel, text)
    kwargs = {"limits": limits} if limits else {}
    return load_document(path, tmp_path, environ={}, **kwargs)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ",".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\nname: bomb\npath: /x\n"


def peak(fn):  # type: ignore[no-untyped-def]
    """fn()'s result and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- §1 resource limits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "text", "needle"),
    [
        ("svc/bomb.yaml", alias_bomb(), "max_alias_nodes"),
        ("svc/deep.json", "[" * 200_000, "max_depth"),
        ("svc/deep-closed.json", "[" * 200_000 + "]" * 200_000, "max_depth"),
        ("svc/deep.yaml", "x: " + "[" * 20_000, "max_depth"),
        ("svc/deep-block.yaml", "".join("  " * i + "-\n" for i in range(3000)), "max_depth"),
        ("svc/deep-ok-for-libyaml.yaml", "x: " + "[" * 500 + "]" * 500, "max_depth"),
        ("svc/recursive.yaml", "a: &a [*a]\n", "recursive alias"),
    ],
)
def test_hostile_document_is_one_error_in_bounded_memory(tmp_path: Path, rel: str, text: str, needle: str) -> None:
    result, used = peak(lambda: load(tmp_path, rel, text))
    assert result.interfaces == [] and len(result.errors) == 1
    assert needle in result.errors[0].message
    assert used < PEAK_BYTES


def test_seven_level_bomb_with_a_higher_limit_is_still_bounded(tmp_path: Path) -> None:
    result = load(tmp_path, "svc/b.yaml", alias_bomb(7), Limits(max_alias_nodes=1_000_000))
    assert "max_alias_nodes" in result.errors[0].message  # 9^7 nodes: far over any sane limit


def test_small_aliases_are_fine(tmp_path: Path) -> None:
    text = """
        defaults_anchor: &h {X-App: apimon}
    """
    result = load(tmp_path, "svc/a.yaml", "interfaces:\n  - {name: a, path: /a, headers: &h {X-App: m}}\n"
                                           "  - {name: b, path: /b, headers: *h}\n")
    assert text and [i.headers for i in result.interfaces] == [{"X-App": "m"}, {"X-App": "m"}]


def test_file_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    result = load(tmp_path, "svc/big.yaml", "name: a\npath: /a\ndescription: " + "x" * 5000 + "\n",
                  Limits(max_file_bytes=1000))
    assert "over the limit of 1000 bytes" in result.errors[0].message
    assert "limits.max_file_size" in result.errors[0].message


def test_interfaces_per_file_limit(tmp_path: Path) -> None:
    text = "".join(f"- {{name: i{n}, path: /{n}}}\n" for n in range(3))
    result = load(tmp_path, "svc/many.yaml", text, Limits(max_interfaces=2))
    assert result.interfaces == [] and "3 interfaces in one file, over the limit of 2" in result.errors[0].message
    assert len(load(tmp_path, "svc/many.yaml", text, Limits(max_interfaces=3)).interfaces) == 3


@pytest.mark.parametrize("rel", ["svc/k.yaml", "svc/k.json", "svc/k-alias.yaml"])
def test_keys_per_mapping_limit_names_field_and_line(tmp_path: Path, rel: str) -> None:
    """200 000 headers in a 2.6 MB file (under every other limit) made the check hang and be retried: now one
    invalid_document at load time naming the field, its line and the limit."""
    keys = {f"X-{n}": "v" for n in range(6)}
    if rel.endswith(".json"):
        text = '{"name": "a", "path": "/a",\n"headers": ' + json.dumps(keys) + "}"
    elif "alias" in rel:
        text = "name: a\npath: /a\nparams: &p " + json.dumps(keys) + "\nheaders: *p\n"
    else:
        text = "name: a\npath: /a\nheaders:\n" + "".join(f"  {k}: v\n" for k in keys)
    result = load(tmp_path, rel, text, Limits(max_keys=5))
    assert result.interfaces == [] and len(result.errors) == 1
    err = result.errors[0]
    assert "6 keys in one mapping, over the limit of 5" in err.message
    assert "limits.max_keys_per_mapping" in err.message and err.line in (2, 3)
    assert len(load(tmp_path, rel, text, Limits(max_keys=6)).interfaces) == 1


def test_many_headers_cost_one_error_in_bounded_memory(tmp_path: Path) -> None:
    text = "name: a\npath: /a\nheaders:\n" + "".join(f"  X-{n}: v\n" for n in range(50_000))
    result, used = peak(lambda: load(tmp_path, "svc/many.yaml", text))
    assert "50000 keys in one mapping" in result.errors[0].message and result.errors[0].line == 3
    assert used < PEAK_BYTES


def test_limits_apply_to_imported_specs_and_sidecars(tmp_path: Path) -> None:
    spec = write(tmp_path, "svc/spec.yaml", "openapi: 3.0.0\ninfo: {title: t, version: '1'}\n" + alias_bomb()
                 .replace("name: bomb\npath: /x\n", "paths: {}\n"))
    result = load_document(spec, tmp_path, environ={})
    assert "max_alias_nodes" in result.errors[0].message
    ok_spec = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"},
               "paths": {f"/p{n}": {"get": {"responses": {"200": {"description": "ok"}}}} for n in range(3)}}
    path = write(tmp_path, "svc/ok.json", json.dumps(ok_spec))
    assert "3 operations in one file" in load_document(path, tmp_path, environ={},
                                                        limits=Limits(max_interfaces=2)).errors[0].message
    write(tmp_path, "svc/ok.apimon.yaml", "x: " + "[" * 20_000)
    errors = load_document(path, tmp_path, environ={}).errors
    assert any("max_depth" in e.message and e.file.endswith("ok.apimon.yaml") for e in errors)


def test_config_has_the_same_limits(tmp_path: Path) -> None:
    for text in (alias_bomb().replace("name: bomb\npath: /x\n", ""), "services: " + "[" * 20_000):
        path = write(tmp_path, "config.yaml", text)
        with pytest.raises(ConfigError, match="built-in limit for the config file"):
            load_config(path, environ={})


def test_limits_are_configurable(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yaml", """
        limits:
          max_file_size: 2MiB
          max_depth: 40
          max_alias_nodes: 10
          max_interfaces_per_file: 100
          max_keys_per_mapping: 50
    """)
    assert load_config(path, environ={}).limits == Limits(2 * 1024 * 1024, 40, 10, 100, 50)
    write(tmp_path, "config.yaml", "limits: {max_deep: 3}\n")
    with pytest.raises(ConfigError, match=r"limits\.max_deep.*did you mean 'max_depth'"):
        load_config(path, environ={})


# --- §2 collection never aborts --------------------------------------------------------------------------------


def test_bad_ipv6_url_is_a_document_error(tmp_path: Path) -> None:
    result = load(tmp_path, "svc/a.yaml", '- {name: v6, url: "http://[::1/x"}\n- {name: ok, path: /ok}\n')
    assert [i.name for i in result.interfaces] == ["ok"]
    assert "Invalid IPv6 URL" in result.errors[0].message and result.errors[0].field == "[0].url"


@pytest.mark.parametrize("escape", [r"\ud83d\udc4d", r"\ud83d", r"\udc4d"])
def test_surrogate_escapes_in_json_and_yaml(tmp_path: Path, escape: str) -> None:
    spec = ('{"openapi": "3.0.0", "info": {"title": "t ESC", "version": "1"}, "paths": {"/a": {"get": '
            '{"summary": "like ESC", "responses": {"200": {"description": "ok"}}}}}}').replace("ESC", escape)
    result = load(tmp_path, "svc/spec.json", spec)
    (itf,) = result.interfaces
    itf.name.encode("utf-8")  # no lone surrogate survives into names, reports or JUnit
    assert itf.line == 1
    native = load(tmp_path, "svc/n.yaml", f'name: "n {escape}"\npath: /n\n')
    native.interfaces[0].name.encode("utf-8")


# --- §3 impossible values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "needle"),
    [
        ("http://[::1/x", "Invalid IPv6 URL"),
        ("http://h:70000", "between 1 and 65535"),
        ("http://h:0/api", "between 1 and 65535"),
        ("http://h/api?x=1", "query string or fragment"),
        ("http://h/api#frag", "query string or fragment"),
    ],
)
def test_config_rejects_impossible_base_url(tmp_path: Path, base_url: str, needle: str) -> None:
    path = write(tmp_path, "config.yaml", f'services:\n  user:\n    base_url: "{base_url}"\n')
    with pytest.raises(ConfigError, match=needle) as info:
        load_config(path, environ={})
    assert info.value.field == "services.user.base_url" and info.value.line == 3


def test_config_accepts_ipv6_base_url(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yaml", 'services:\n  user:\n    base_url: "http://[::1]:8080/api/"\n')
    assert load_config(path, environ={}).services["user"].base_url == "http://[::1]:8080/api"


@pytest.mark.parametrize("token_path", ["data..token", "data[token]", 'data["x', "]"])
def test_config_rejects_malformed_token_path(tmp_path: Path, token_path: str) -> None:
    path = write(tmp_path, "config.yaml", f"""
        services:
          user:
            base_url: http://h
            auth: {{type: login, path: /login, token_path: '{token_path}'}}
    """)
    with pytest.raises(ConfigError, match="malformed path") as info:
        load_config(path, environ={})
    assert info.value.field == "services.user.auth.token_path"


@pytest.mark.parametrize(
    ("rel", "text", "field"),
    [
        ("svc/a.yaml", "name: a\npath: /a\njson: {v: .nan}\n", "json.v"),
        ("svc/a.yaml", "name: a\npath: /a\njson: [-.inf]\n", "json[0]"),
        ("svc/a.json", '{"name": "a", "path": "/a", "json": {"v": 1e400}}', "json.v"),
    ],
)
def test_nan_and_infinity_in_json_body(tmp_path: Path, rel: str, text: str, field: str) -> None:
    err = load(tmp_path, rel, text).errors[0]
    assert err.field == field and "NaN or Infinity" in err.message


def test_nan_literal_in_json_file(tmp_path: Path) -> None:
    err = load(tmp_path, "svc/a.json", '{"name": "a", "path": "/a", "json": {"v": NaN}}').errors[0]
    assert "NaN is not valid JSON" in err.message


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("X-Ward-Name: 心内科一病区", "'%E5%BF%83%E5%86%85%E7%A7%91%E4%B8%80%E7%97%85%E5%8C%BA'"),
        ('X-Note: "a\\nb"', "line break"),
        ('"X Bad": v', "header name 'X Bad' cannot be sent"),
        ('"名字": v', "cannot be sent"),
    ],
)
def test_headers_that_cannot_be_sent(tmp_path: Path, header: str, needle: str) -> None:
    err = load(tmp_path, "svc/a.yaml", f"name: a\npath: /a\nheaders:\n  {header}\n").errors[0]
    assert err.field.startswith("headers.") and needle in err.message


def test_latin1_header_value_is_sent(tmp_path: Path) -> None:
    (itf,) = load(tmp_path, "svc/a.yaml", "name: a\npath: /a\nheaders: {X-Name: café, X-N: 1.10}\n").interfaces
    assert itf.headers == {"X-Name": "café", "X-N": "1.10"}


# --- §4 YAML means what the user wrote -------------------------------------------------------------------------


def test_values_are_sent_as_written(tmp_path: Path) -> None:
    text = """
        name: a
        path: /a
        params: {at: 12:30, mode: 0755, version: 1.10, on: yes, flag: true, off: False, n: 7, ids: [007, 1.0]}
        headers: {X-Mode: 0755, X-At: 12:30}
    """
    (itf,) = load(tmp_path, "svc/a.yaml", text).interfaces
    assert itf.params == {"at": "12:30", "mode": "0755", "version": "1.10", "on": "yes", "flag": "true",
                          "off": "false", "n": "7", "ids": ["007", "1.0"]}
    assert itf.headers == {"X-Mode": "0755", "X-At": "12:30"}
    (form,) = load(tmp_path, "svc/f.yaml", "name: f\npath: /f\nform: {v: 1.10, ok: true, d: 2024-01-01}\n").interfaces
    assert form.form == {"v": "1.10", "ok": "true", "d": "2024-01-01"}


def test_json_numbers_in_params_as_written(tmp_path: Path) -> None:
    (itf,) = load(tmp_path, "svc/a.json", '{"name": "a", "path": "/a", "params": {"v": 1.10, "b": true}}').interfaces
    assert itf.params == {"v": "1.10", "b": "true"}


def test_yaml_12_core_schema() -> None:
    data = parse("a: 12:30\nb: 0755\nc: 1.10\nd: yes\ne: 2024-01-01\nf: 0o17\ng: 0x1F\nh: ~\ni: TRUE\n", ".yaml").data
    assert data == {"a": "12:30", "b": 755, "c": 1.1, "d": "yes", "e": "2024-01-01", "f": 15, "g": 31, "h": None,
                    "i": True}


def test_merge_keys_explicit_keys_win(tmp_path: Path) -> None:
    text = """
        base: &base
          method: POST
          path: /base
          headers: {X-App: apimon}
        interfaces:
          - <<: *base
            name: a
            path: /a
          - <<: *base
            name: b
    """
    result = load(tmp_path, "svc/a.yaml", text.replace("base: &base", "x-base: &base"))
    # 'x-base' is not a file key: the merge must still not be reported as duplicate keys.
    assert not any("duplicate key" in e.message for e in result.errors)
    data = parse(textwrap.dedent(text), ".yaml").data
    assert data["interfaces"][0] == {"method": "POST", "path": "/a", "headers": {"X-App": "apimon"}, "name": "a"}


def test_merge_keys_in_a_document(tmp_path: Path) -> None:
    text = """
        - &base {name: a, method: POST, path: /base, headers: {X-App: apimon}}
        - <<: *base
          name: b
          path: /b
    """
    result = load(tmp_path, "svc/a.yaml", text)
    assert result.errors == []
    assert [(i.name, i.method, i.path) for i in result.interfaces] == [("a", "POST", "/base"), ("b", "POST", "/b")]


# --- §7 body paths ---------------------------------------------------------------------------------------------


BODY = {"data": {"spring.datasource.url": "jdbc:x", "feature.flags": {"new-ui": True}, "用户 名": "张三",
                 "a[0]": 1, "items": [{"id": 1}, {"id": 2}]}}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ('data["spring.datasource.url"]', "jdbc:x"),
        ("data['feature.flags']['new-ui']", True),
        ('data["用户 名"]', "张三"),
        ("data.用户 名", "张三"),
        ('data["a[0]"]', 1),
        ("data.items[-1].id", 2),
        ("$.data.items.0.id", 1),
        ('data["items"][1]["id"]', 2),
    ],
)
def test_quoted_bracket_paths_reach_any_key(path: str, value: object) -> None:
    assert bodypath.lookup(BODY, path) == (True, value)


def test_dotted_miss_suggests_the_quoted_form() -> None:
    ex = Exchange("GET", "http://x/", {}, None, status=200, body=json.dumps(BODY).encode())
    outcome = classify(ex, Expect(body=(BodyCheck("data.spring.datasource.url", "equals", "jdbc:x"),)))
    assert 'write data["spring.datasource.url"]' in outcome.reason
    outcome = classify(ex, Expect(body=(BodyCheck("data.feature.flags.new-ui", "exists", True),)))
    assert 'write data["feature.flags"].new-ui' in outcome.reason


@pytest.mark.parametrize("path", ["data..id", "data[x]", 'data["x', "data]", ".data", "a['b'c]"])
def test_malformed_body_path_is_a_document_error(tmp_path: Path, path: str) -> None:
    text = f"name: a\npath: /a\nexpect:\n  body:\n    - {{path: {json.dumps(path)}, exists: true}}\n"
    err = load(tmp_path, "svc/a.yaml", text).errors[0]
    assert err.field == "expect.body[0].path" and "malformed body path" in err.message


def test_quoted_body_path_is_a_valid_document(tmp_path: Path) -> None:
    text = "name: a\npath: /a\nexpect:\n  body:\n    - {path: 'data[\"spring.datasource.url\"]', exists: true}\n"
    (itf,) = load(tmp_path, "svc/a.yaml", text).interfaces
    assert itf.expect.body[0].path == 'data["spring.datasource.url"]'


# --- §8 the runner's own deadline ------------------------------------------------------------------------------


def test_runner_deadline_answers_for_a_hung_check() -> None:
    release = threading.Event()
    now = [0.0]

    def check(itf: Interface) -> InterfaceResult:
        if itf.name == "hangs":
            release.wait(30)  # a check stuck outside any socket deadline
        return InterfaceResult(nodeid="", service=itf.service, module=itf.module, name=itf.name)

    def clock() -> float:
        now[0] += 1.0  # every look at the clock is one second later: the deadline passes without real waiting
        return now[0]

    itfs = [Interface(name=n, service="s", module="m", method="GET", path="/" + n) for n in ("hangs", "fine")]
    runner = Runner(check, concurrency=2, max_per_host=2, retry=RetryPolicy(retries=0), host=lambda i: "h",
                    clock=clock, deadline=lambda itf: 5.0, poll=0.01)
    runner.start([(i.name, i) for i in itfs])
    try:
        hung = runner.result("hangs")
        assert hung is not None and (hung.outcome, hung.category, hung.sub) == ("failed", "timeout", "hang")
        assert "hang guard" in hung.reason
        fine = runner.result("fine")
        assert fine is not None and fine.outcome == "passed"
    finally:
        release.set()
        runner.close()


# --- the whole run (pytester) ----------------------------------------------------------------------------------


def workspace(pytester: pytest.Pytester, srv: LocalServer) -> None:
    srv.route("GET", "/svc/ok", lambda r: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          svc:
            base_url: {srv.url}/svc
    """)
    write(pytester.path, "pool/svc/ok.yaml", "name: ok\npath: /ok\n")


def results(pytester: pytest.Pytester) -> list[dict[str, object]]:
    return json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))["results"]


@pytest.mark.parametrize("extra", [pytest.param([], id="inprocess"), pytest.param(["-n", "2"], id="xdist")])
def test_run_survives_every_bad_file(pytester: pytest.Pytester, local_server: LocalServer, extra: list[str]) -> None:
    workspace(pytester, local_server)
    pool = pytester.path / "pool" / "svc"
    write(pool, "bomb.yaml", alias_bomb())
    write(pool, "deep.json", "[" * 200_000)
    write(pool, "deep.yaml", "x: " + "[" * 20_000)
    write(pool, "v6.yaml", 'name: v6\nurl: "http://[::1/x"\n')
    write(pool, "spec.json", '{"openapi": "3.0.0", "info": {"title": "t \\ud83d\\udc4d", "version": "1"}, "paths": '
                             '{"/a": {"post": {"summary": "\\ud83d", "responses": {"200": {"description": "ok"}}}}}}')
    write(pool, "binary.yaml", b"\x00\xff\xfe garbage")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out.json", "-p", "no:cacheprovider", *extra)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    records = {r["file"].rsplit("/", 1)[-1]: r for r in results(pytester)}
    assert records["ok.yaml"]["outcome"] == "passed"
    assert records["spec.json"]["outcome"] == "skipped"  # POST not monitored: skipped with its reason
    for name in ("bomb.yaml", "deep.json", "deep.yaml", "v6.yaml", "binary.yaml"):
        assert records[name]["category"] == "invalid_document", name


def test_exception_while_collecting_a_file_is_one_invalid_document(
    pytester: pytest.Pytester, local_server: LocalServer
) -> None:
    workspace(pytester, local_server)
    write(pytester.path, "pool/svc/cursed.yaml", "name: c\npath: /c\n")
    pytester.makeconftest("""
        import pytest_apimon.parsecache as pc

        real = pc.load_document

        def load_document(path, *args, **kwargs):
            if path.name == "cursed.yaml":
                raise RuntimeError("simulated bug")
            return real(path, *args, **kwargs)

        pc.load_document = load_document
    """)
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out.json", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    by_file = {r["file"].rsplit("/", 1)[-1]: r for r in results(pytester)}
    assert by_file["ok.yaml"]["outcome"] == "passed"
    assert by_file["cursed.yaml"]["category"] == "invalid_document"
    assert "RuntimeError: simulated bug" in str(by_file["cursed.yaml"]["reason"])


def test_thread_timeout_method_is_refused(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    workspace(pytester, local_server)
    result = pytester.runpytest("--apimon", "pool", "--timeout", "5", "--timeout-method", "thread")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--timeout-method thread*os._exit*"])
    assert pytester.runpytest("--apimon", "pool", "--timeout", "5", "--timeout-method", "signal").ret == 0


def test_bad_base_url_is_usage_error_4(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    workspace(pytester, local_server)
    write(pytester.path, "config.yaml", 'services:\n  svc:\n    base_url: "http://[::1/x"\n')
    result = pytester.runpytest("--apimon", "pool")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*services.svc.base_url*Invalid IPv6 URL*"])


def test_report_header_names_the_proxy(pytester: pytest.Pytester, local_server: LocalServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    workspace(pytester, local_server)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the local service stays direct; the header still says it
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          svc: {{base_url: "{local_server.url}/svc"}}
          other: {{base_url: "http://other.invalid"}}
    """)
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out.json", "--apimon-lang", "en")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*via proxy http://proxy.invalid:3128*"])
    assert json.loads((pytester.path / "out.json").read_text())["proxy"] == "http://proxy.invalid:3128"


def test_parse_error_has_line() -> None:
    with pytest.raises(ParseError) as info:
        parse("a: 1\nb: " + "[" * 2000, ".yaml")
    assert info.value.line == 2


def test_sidecar_values_as_written_and_expect_headers(tmp_path: Path) -> None:
    spec = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {"/a/{id}": {"get": {
        "operationId": "getA", "parameters": [{"name": "id", "in": "path", "required": True},
                                              {"name": "v", "in": "query"}],
        "responses": {"302": {"description": "redirect"}}}}}}
    path = write(tmp_path, "svc/s.json", json.dumps(spec))
    write(tmp_path, "svc/s.apimon.yaml", "params: {v: 1.10}\noperations:\n  getA:\n    params: {id: 0755}\n"
                                         "    expect: {status: 302, headers: {Location: /x}}\n")
    result = load_document(path, tmp_path, environ={})
    (itf,) = result.interfaces
    assert (itf.path, itf.params) == ("/a/0755", {"v": "1.10"})
    assert itf.expect.headers == (HeaderCheck("Location", "equals", "/x"),) and not itf.expect.follow_redirects


def test_config_headers_that_cannot_be_sent(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yaml", "services:\n  user:\n    base_url: http://h\n    headers:\n"
                                          "      X-Ward: 心内科\n")
    with pytest.raises(ConfigError, match="ISO-8859-1") as info:
        load_config(path, environ={})
    assert info.value.field == "services.user.headers.X-Ward"


@pytest.mark.parametrize("value", [".inf", "1e300", "100000"])
def test_timeouts_that_would_overflow_timers_are_rejected(tmp_path: Path, value: str) -> None:
    err = load(tmp_path, "svc/a.yaml", f"name: a\npath: /a\ntimeout: {value}\n").errors[0]
    assert err.field == "timeout" and ("at most 86400" in err.message or "positive number" in err.message)
    path = write(tmp_path, "config.yaml", f"defaults: {{timeout: {value}}}\n")
    with pytest.raises(ConfigError, match=r"defaults\.timeout"):
        load_config(path, environ={})
    write(tmp_path, "config.yaml", "defaults: {backoff_factor: 1e300}\n")
    with pytest.raises(ConfigError, match="at most 100"):
        load_config(path, environ={})


@pytest.mark.parametrize(("url", "needle"), [("http://a..b/x", "empty label"), ("http://h\x01/x", "control character")])
def test_urls_that_cannot_be_requested(tmp_path: Path, url: str, needle: str) -> None:
    err = load(tmp_path, "svc/a.json", json.dumps({"name": "a", "url": url})).errors[0]
    assert err.field == "url" and needle in err.message


def test_imported_header_that_cannot_be_sent_is_a_document_error(tmp_path: Path) -> None:
    collection = {"info": {"_postman_id": "x", "name": "c", "schema":
                           "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
                  "item": [{"name": "ward", "request": {"method": "GET", "url": "http://h/a",
                                                        "header": [{"key": "X-Ward", "value": "心内科"}]}},
                           {"name": "ok", "request": {"method": "GET", "url": "http://h/b"}}]}
    result = load(tmp_path, "svc/c.postman_collection.json", json.dumps(collection))
    assert [i.name for i in result.interfaces] == ["ok"]
    assert result.errors[0].name == "ward" and "ISO-8859-1" in result.errors[0].message


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_a_pipe_or_device_is_never_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "svc" / "pipe.yaml"
    fifo.parent.mkdir()
    os.mkfifo(fifo)  # opening it for reading would block forever
    assert "not a regular file" in load_document(fifo, tmp_path, environ={}).errors[0].message
    link = tmp_path / "svc" / "zero.yaml"
    link.symlink_to("/dev/zero")  # would never end
    assert "not a regular file" in load_document(link, tmp_path, environ={}).errors[0].message


def test_referenced_fragment_is_read_within_the_limits(tmp_path: Path) -> None:
    spec = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {"/a": {"get": {
        "parameters": [{"$ref": "frag.yaml#/p"}], "responses": {"200": {"description": "ok"}}}}}}
    write(tmp_path, "svc/frag.yaml", alias_bomb().replace("name: bomb\npath: /x\n", "p: {name: id, in: query}\n"))
    path = write(tmp_path, "svc/spec.json", json.dumps(spec))
    result, used = peak(lambda: load_document(path, tmp_path, environ={}))
    assert any("max_alias_nodes" in e.message for e in result.errors), result.errors
    assert used < PEAK_BYTES


def test_hang_guard_failure_is_not_retried() -> None:
    """The hang guard fired: local work outlasted every deadline; a retry costs the budget again and fixes nothing."""
    release = threading.Event()
    now = [0.0]
    calls: list[str] = []

    def check(itf: Interface) -> InterfaceResult:
        calls.append(itf.name)
        release.wait(30)
        return InterfaceResult(nodeid="", service=itf.service, module=itf.module, name=itf.name)

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    policy = RetryPolicy(retries=3, delay=0.0)
    itf = Interface(name="hangs", service="s", module="m", method="GET", path="/hangs")
    runner = Runner(check, concurrency=2, max_per_host=2, retry=policy, host=lambda i: "h",
                    clock=clock, deadline=lambda itf: 5.0, poll=0.01)
    runner.start([("hangs", itf)])
    try:
        hung = runner.result("hangs")
        assert hung is not None and hung.sub == "hang" and not policy.wants_retry(hung, 1)
        # pytest-rerunfailures reruns only a TransientFailure (retries.RerunDriver): the item must not raise one
        from pytest_apimon.failures import InterfaceFailure, TransientFailure
        assert not isinstance(InterfaceFailure.of(hung, ""), TransientFailure)
    finally:
        release.set()
        runner.close()
    assert calls == ["hangs"]
    timeout = InterfaceResult(nodeid="", service="s", module="m", name="t", outcome="failed", category="timeout",
                              sub="read")
    assert policy.wants_retry(timeout, 1)  # an ordinary timeout still is


@pytest.mark.parametrize(("rel", "text", "field", "line"), [
    ("svc/a.yaml", "name: a\npath: /a\njson:\n  a: " + "9" * 5000 + "\n", "json.a", 4),
    ("svc/a.json", '{"name": "a", "path": "/a",\n"json": {"a": ' + "9" * 5000 + "}}", "json.a", 2),
    ("svc/b.yaml", "name: a\npath: /a\njson: {x: [1, " + "9" * 5000 + "]}\n", "json.x", 3),
])
def test_overlong_integer_names_field_line_and_the_fix(tmp_path: Path, rel: str, text: str, field: str,
                                                       line: int) -> None:
    """Python's int() digit limit used to surface as its own advice (sys.set_int_max_str_digits), without a line."""
    result = load(tmp_path, rel, text)
    assert result.interfaces == [] and len(result.errors) == 1
    err = result.errors[0]
    assert err.line == line and f"{field}: " in err.message and "quote it" in err.message
    assert "set_int_max_str_digits" not in err.message


@pytest.mark.parametrize("text", [
    "".join("  " * i + "a:\n" for i in range(3000)) + "  " * 3000 + "b: 1\n",
    "".join("  " * i + "-\n" for i in range(3000)),
], ids=["block-mapping", "block-sequence"])
def test_deep_block_nesting_is_reported_where_it_passes_the_limit(tmp_path: Path, text: str) -> None:
    """Past libyaml's own cap (1000 levels) the error was reported at line 1000, not where max_depth was passed."""
    err = load(tmp_path, "svc/deep.yaml", text).errors[0]
    assert "max_depth" in err.message and err.line == 101
