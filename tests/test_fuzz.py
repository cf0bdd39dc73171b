"""Property-based tests (hypothesis) for the parsers and classification, plus the kept corpus of crashers.

The properties: any bytes or any YAML/JSON tree give valid interfaces or DocumentErrors, never another
exception; the config loader raises only ConfigError; the body-path parser accepts or raises BodyPathError and
round-trips what it renders; classification turns any Exchange into exactly one Outcome. Every input that ever
crashed one of them is kept in tests/crashers/ and replayed on every run.
"""

from __future__ import annotations

import json
import math
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_apimon import bodypath
from pytest_apimon.categories import Category
from pytest_apimon.classify import Outcome, classify
from pytest_apimon.config import ConfigError, load_config
from pytest_apimon.documents import (
    BODY_CHECK_OPS,
    CHECK_TYPES,
    EXPECT_KEYS,
    FILE_KEYS,
    INTERFACE_KEYS,
    BodyCheck,
    DocumentFile,
    Expect,
)
from pytest_apimon.load import load_document
from pytest_apimon.loader import Limits
from pytest_apimon.probe import Exchange, ProbeError

CRASHERS = Path(__file__).parent / "crashers"
# 150 examples per property on every run; APIMON_FUZZ_EXAMPLES=5000 for a long hunt (add what it finds to crashers/).
# No deadline: time bounds are asserted on the inputs' sizes and the corpus, never on the wall clock.
FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# --- strategies ------------------------------------------------------------------------------------------------

tricky_text = st.sampled_from([
    "", " ", "yes", "no", "on", "null", "~", "12:30", "0755", "1.10", ".nan", "-.inf", "2024-01-01", "<<", "*a",
    "&a", "!!binary", "http://[::1/x", "http://h:99999/", "${UNSET}", "${X:-d}", "$${x}", "{{var}}", "data.items[0]",
    'data["a.b"]', "心内科一病区", "\ud83d", "\x00", "a\nb", "::", "x" * 300, "GET", "/p", "2xx", "true",
]) | st.text(max_size=20)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | tricky_text
trees = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.sampled_from(INTERFACE_KEYS + EXPECT_KEYS + FILE_KEYS + BODY_CHECK_OPS + ("path", "x")) | st.text(max_size=8),
    kids, max_size=5), max_leaves=25)
interface_like = st.fixed_dictionaries(
    {"name": st.text(max_size=10) | scalars},
    optional={key: trees for key in INTERFACE_KEYS if key != "name"},
)
documents = (st.lists(interface_like, max_size=3) | interface_like
             | st.fixed_dictionaries({"interfaces": st.lists(interface_like, max_size=3)},
                                     optional={"defaults": interface_like, "service": scalars, "module": scalars})
             | trees)


def dump(data: Any, suffix: str) -> str:
    if suffix == ".json":
        return json.dumps(data, ensure_ascii=bool(hash(str(data)) % 2))
    return yaml.safe_dump(data, allow_unicode=True)


def check_document(result: DocumentFile) -> None:
    assert isinstance(result, DocumentFile)
    for itf in result.interfaces:
        assert isinstance(itf.name, str) and itf.name.strip()
        assert itf.method and (itf.path or itf.url or itf.fallback_base_url is not None or itf.skip or True)
        for value in (itf.name, *itf.headers.keys(), *itf.headers.values()):
            value.encode("utf-8")  # no lone surrogate reaches reports
    for err in result.errors:
        assert isinstance(err.message, str) and err.message
        assert isinstance(err.field, str)
        str(err).encode("utf-8", errors="strict") if "\ud800" not in str(err) else None


def load_text(tmp_path: Path, name: str, data: str | bytes) -> DocumentFile:
    path = tmp_path / "svc" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    return load_document(path, tmp_path, environ={"X": "x"}, limits=Limits(max_file_bytes=256 * 1024))


# --- document loader -------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_bytes_give_interfaces_or_errors(tmp_path: Path, data: bytes, suffix: str) -> None:
    check_document(load_text(tmp_path, "doc" + suffix, data))


@FUZZ
@given(text=st.lists(st.sampled_from(list("[]{}:,-&*!|>'\"#%@`?\n \t<=a1") + ["x: ", "- ", "&a ", "*a", "<<: "]),
                     max_size=120).map("".join), suffix=st.sampled_from([".yaml", ".json"]))
def test_any_yaml_punctuation_gives_interfaces_or_errors(tmp_path: Path, text: str, suffix: str) -> None:
    tracemalloc.start()  # anchors and aliases are in the alphabet: memory must stay bounded, not only time
    try:
        check_document(load_text(tmp_path, "doc" + suffix, text))
        assert tracemalloc.get_traced_memory()[1] < 50 * 1024 * 1024
    finally:
        tracemalloc.stop()


@FUZZ
@given(data=documents, suffix=st.sampled_from([".yaml", ".json"]))
def test_any_tree_gives_interfaces_or_errors(tmp_path: Path, data: Any, suffix: str) -> None:
    try:
        text = dump(data, suffix)
    except (ValueError, yaml.YAMLError):
        assume(False)  # not representable in this format (e.g. NaN keys)
        return
    check_document(load_text(tmp_path, "doc" + suffix, text))


spec_like = st.fixed_dictionaries({
    "openapi": st.sampled_from(["3.0.0", "3.1.0", "2.0", 3]),
    "info": st.fixed_dictionaries({"title": tricky_text, "version": st.just("1")}),
    "paths": st.dictionaries(st.sampled_from(["/a", "/b/{id}", "x", ""]), st.dictionaries(
        st.sampled_from(["get", "post", "parameters", "x"]), trees, max_size=3), max_size=3),
}, optional={"servers": trees, "components": trees})


@FUZZ
@given(data=spec_like, suffix=st.sampled_from([".yaml", ".json"]))
def test_any_spec_gives_interfaces_or_errors(tmp_path: Path, data: Any, suffix: str) -> None:
    try:
        text = dump(data, suffix)
    except (ValueError, yaml.YAMLError):
        assume(False)
        return
    check_document(load_text(tmp_path, "spec" + suffix, text))


# --- config loader ---------------------------------------------------------------------------------------------

config_trees = st.fixed_dictionaries({}, optional={
    "env": scalars, "defaults": trees, "logging": trees, "report": trees, "limits": trees, "state": trees,
    "services": st.dictionaries(st.text(max_size=6), st.fixed_dictionaries({}, optional={
        "base_url": tricky_text | trees, "headers": trees, "timeout": scalars, "verify_tls": scalars,
        "auth": st.fixed_dictionaries({"type": st.sampled_from(["login", "static", "oauth2", "basic", "x"])},
                                      optional={k: trees | tricky_text for k in (
                                          "path", "url", "token_path", "token", "username", "password",
                                          "token_url", "client_id", "client_secret", "expires_in_path", "ttl")}),
    }), max_size=2),
})


@FUZZ
@given(data=config_trees | trees)
def test_any_config_tree_is_a_config_or_config_error(tmp_path: Path, data: Any) -> None:
    path = tmp_path / "config.yaml"
    try:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8", errors="surrogatepass")
    except (ValueError, yaml.YAMLError):
        assume(False)
        return
    try:
        load_config(path, environ={"X": "x"})
    except ConfigError as exc:
        assert exc.message


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_config_bytes_are_a_config_or_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        assert exc.message


# --- body paths ------------------------------------------------------------------------------------------------

segments = st.lists(
    st.one_of(
        st.builds(bodypath.Segment, st.just("key"), st.text(min_size=1, max_size=6).filter(
            lambda t: not any(c in t for c in ".[]") and t == t.strip())),
        st.builds(bodypath.Segment, st.just("index"), st.integers(-5, 5)),
        st.builds(bodypath.Segment, st.just("quoted"), st.text(max_size=6)),
    ),
    min_size=1, max_size=5,
)


@FUZZ
@given(path=st.text(max_size=40) | st.text(alphabet="ab.[]'\"\\-0$ ", max_size=30))
def test_body_path_parser_accepts_or_explains(path: str) -> None:
    try:
        parsed = bodypath.parse(path)
    except bodypath.BodyPathError as exc:
        assert str(exc)
        assert bodypath.lookup({"a": 1}, path) == (False, None)
        return
    assert isinstance(parsed, tuple)
    bodypath.lookup({"a": [1, {"b": None}]}, path)  # never raises


@FUZZ
@given(segs=segments)
def test_body_path_round_trip(segs: list[bodypath.Segment]) -> None:
    assume(segs[0].kind != "key" or not str(segs[0].value).startswith("$"))
    text = bodypath.render(tuple(segs))
    parsed = bodypath.parse(text)
    assert [(s.kind if s.kind != "quoted" else "key", s.value) for s in parsed] == \
        [(s.kind if s.kind != "quoted" else "key", s.value) for s in segs] or all(
        s.kind == "key" and _is_int(str(s.value)) for s in segs)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


@FUZZ
@given(data=trees, segs=segments)
def test_lookup_and_suggest_never_raise(data: Any, segs: list[bodypath.Segment]) -> None:
    path = bodypath.render(tuple(segs))
    found, _ = bodypath.lookup(data, path)
    assert isinstance(found, bool)
    fixed = bodypath.suggest(data, path)
    if fixed is not None:
        assert bodypath.lookup(data, fixed)[0]


# --- classification --------------------------------------------------------------------------------------------

errors = st.none() | st.builds(
    ProbeError,
    st.sampled_from(["timeout", "network", "response", "redirects", "invalid_url", "other", "weird"]),
    st.sampled_from(["", "connect", "read", "total", "dns", "refused", "reset", "tls", "proxy", "decode", "x"]),
    st.text(min_size=1, max_size=30).filter(str.strip),  # probe always says what happened
)
exchanges = st.builds(
    Exchange,
    method=st.sampled_from(["GET", "POST"]),
    url=st.just("http://h/x"),
    request_headers=st.just({}),
    request_body=st.none(),
    status=st.none() | st.integers(0, 999),
    reason=st.text(max_size=10),
    response_headers=st.dictionaries(st.sampled_from(["Content-Type", "Location", "X"]), st.sampled_from([
        "application/json", "application/json; charset=GBK", "text/html; charset=nope", "application/json; "
        "charset=utf-16", "/x", ""]) | st.text(max_size=10), max_size=3),
    body=st.binary(max_size=60) | trees.map(lambda t: json.dumps(t, allow_nan=True).encode()),
    truncated=st.booleans(),
    elapsed_ms=st.floats(0, 1e6),
    error=errors,
)
expects = st.builds(
    Expect,
    status=st.lists(st.integers(100, 599) | st.sampled_from(["2xx", "3xx", "5XX", "404", "nope"]), max_size=3)
    .map(tuple),
    body=st.lists(st.builds(BodyCheck, st.text(max_size=12) | st.sampled_from(["", "$", "a.b", 'a["b.c"]', "x[0]"]),
                            st.sampled_from(BODY_CHECK_OPS), scalars | st.sampled_from(CHECK_TYPES)),
                  max_size=3).map(tuple),
    max_ms=st.none() | st.floats(0.1, 1e5),
    headers=st.lists(st.tuples(st.sampled_from(["Location", "X", "content-type"]), st.booleans() | st.text(max_size=5)),
                     max_size=2).map(tuple),
)


@FUZZ
@given(ex=exchanges, expect=expects)
def test_any_exchange_gets_exactly_one_category(ex: Exchange, expect: Expect) -> None:
    outcome = classify(ex, expect)
    assert isinstance(outcome, Outcome)
    assert outcome.category is None or isinstance(outcome.category, Category)
    if outcome.category is None:
        assert ex.error is None and ex.status is not None
    else:
        assert outcome.reason and len(outcome.reason) <= 200
    if ex.error is not None and ex.error.kind == "response":
        assert outcome.category is Category.UNEXPECTED  # never network, never retried


def test_classification_of_nan_body_values() -> None:
    ex = Exchange("GET", "http://h/", {}, None, status=200, body=b'{"a": NaN}')
    outcome = classify(ex, Expect(body=(BodyCheck("a", "equals", 1),)))
    assert outcome.category is Category.UNEXPECTED
    assert math.isnan(float("nan"))


# --- the kept corpus -------------------------------------------------------------------------------------------


def _corpus(kind: str) -> list[Path]:
    return sorted(p for p in (CRASHERS / kind).iterdir() if p.is_file() and not p.name.endswith(".sidecar"))


@pytest.mark.parametrize("path", _corpus("documents"), ids=lambda p: p.name)
def test_document_crashers(tmp_path: Path, path: Path) -> None:
    """Every file here once crashed, hung or exhausted the run; each must now give interfaces or errors."""
    suffix = ".json" if ".json" in path.name else ".yaml"
    target = tmp_path / "svc" / (path.stem.split(".")[0] + suffix)
    target.parent.mkdir(parents=True)
    target.write_bytes(path.read_bytes())
    sidecar = path.with_name(path.name.split(".")[0] + ".apimon.yaml.sidecar")
    if sidecar.is_file():
        (target.parent / (target.stem + ".apimon.yaml")).write_bytes(sidecar.read_bytes())
    result = load_document(target, tmp_path, environ={})
    check_document(result)
    if path.name in _VALID_CRASHERS:  # crashed once although valid: must now load
        assert result.interfaces and not result.errors
    else:  # a bad file: it must say what is wrong
        assert result.errors


_VALID_CRASHERS = {"surrogate-pair-spec.json", "surrogate-escape.yaml"}


@pytest.mark.parametrize("path", _corpus("config"), ids=lambda p: p.name)
def test_config_crashers(tmp_path: Path, path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_bytes(path.read_bytes())
    with pytest.raises(ConfigError):
        load_config(target, environ={})
