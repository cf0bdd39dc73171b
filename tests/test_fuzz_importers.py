"""Property-based tests (hypothesis) for the spec importers (pytest_apimon/importers/): OpenAPI 3 / Swagger 2
documents whose `$ref`s form any graph (cycles, self references, chains, refs to missing or odd targets,
refs from parameters, bodies, responses and schemas), huge enums, odd types in the places the importer
reads; Postman collections with deep folders and items of any shape. Each gives interfaces or
DocumentErrors, never another exception, within bounded memory; and a bad operation never hides a good one
(every well-formed operation of the spec is an interface). `APIMON_FUZZ_EXAMPLES=2000 pytest -p no:apimon
tests/test_fuzz_importers.py` hunts longer.
"""

from __future__ import annotations

import json
import os
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import check_document

from pytest_apimon.load import load_document
from pytest_apimon.loader import Limits

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "100")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# A spec with a 20 000-value enum takes ~0.25 s to import: fewer examples by default.
FUZZ_SPECS = settings(FUZZ, max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "20")))
NAMES = ["A", "B", "C", "D"]
odd = (st.none() | st.booleans() | st.integers(-5, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
       | st.text(max_size=6) | st.just([]) | st.just({}))


@st.composite
def ref_to(draw: st.DrawFn, section: str) -> dict[str, Any]:
    target = draw(st.sampled_from(NAMES + ["missing"]))
    form = draw(st.sampled_from(["ok", "ok", "ok", "other-section", "no-hash", "escaped", "deep", "external"]))
    ref = {"ok": f"#/components/{section}/{target}", "other-section": f"#/components/schemas/{target}",
           "no-hash": f"components/{section}/{target}", "escaped": f"#/components/{section}/{target}~1x~0",
           "deep": f"#/components/{section}/{target}/properties/a/items",
           "external": f"other.yaml#/components/{section}/{target}"}[form]
    return {"$ref": ref}


schemas = st.recursive(
    st.fixed_dictionaries({}, optional={"type": st.sampled_from(["object", "array", "string", "integer", "x"]) | odd,
                                        "example": odd, "enum": st.lists(odd, max_size=3) | odd,
                                        "format": st.sampled_from(["date-time", "uuid", "binary"]) | odd})
    | ref_to("schemas"),
    lambda kids: st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["object", "array"]), "properties": st.dictionaries(st.sampled_from(["a", "b"]),
                                                                                    kids, max_size=2) | odd,
        "items": kids | odd, "allOf": st.lists(kids, max_size=2) | odd, "oneOf": st.lists(kids, max_size=2),
        "required": st.lists(st.sampled_from(["a", "b", "z"]), max_size=2) | odd}),
    max_leaves=8)
parameters = st.fixed_dictionaries(
    {"name": st.sampled_from(["id", "q", "X-Key", ""]) | odd, "in": st.sampled_from(["path", "query", "header",
                                                                                       "cookie", "body", "x"]) | odd},
    optional={"required": odd, "schema": schemas, "example": odd, "examples": odd}) | ref_to("parameters")
operations = st.fixed_dictionaries({}, optional={
    "operationId": st.text(max_size=6) | odd, "parameters": st.lists(parameters, max_size=3) | odd,
    "requestBody": st.fixed_dictionaries({"content": st.dictionaries(
        st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
        st.fixed_dictionaries({}, optional={"schema": schemas, "example": odd}), max_size=2) | odd})
    | ref_to("requestBodies") | odd,
    "responses": st.dictionaries(st.sampled_from(["200", "2XX", "default", "404", "x"]),
                                 st.fixed_dictionaries({}, optional={"content": st.just(
                                     {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}})})
                                 | ref_to("responses") | odd, max_size=2) | odd,
    "security": odd,
})


@st.composite
def openapi_specs(draw: st.DrawFn) -> dict[str, Any]:
    paths = draw(st.dictionaries(st.sampled_from(["/a", "/b/{id}", "/c/{x}/{y}", "/d"]),
                                 st.dictionaries(st.sampled_from(["get", "post", "delete", "parameters"]),
                                                 operations, min_size=1, max_size=3), max_size=3))
    components = {
        "schemas": draw(st.dictionaries(st.sampled_from(NAMES), schemas, max_size=4)),
        "parameters": draw(st.dictionaries(st.sampled_from(NAMES), parameters, max_size=3)),
        "requestBodies": draw(st.dictionaries(st.sampled_from(NAMES), ref_to("requestBodies")
                                              | st.just({"content": {"application/json": {"schema": {
                                                  "$ref": "#/components/schemas/A"}}}}), max_size=3)),
        "responses": draw(st.dictionaries(st.sampled_from(NAMES), ref_to("responses"), max_size=2)),
    }
    big_enum = draw(st.booleans())
    if big_enum:
        components["schemas"]["E"] = {"type": "string", "enum": [f"v{i}" for i in range(20000)]}
    return {"openapi": draw(st.sampled_from(["3.0.3", "3.1.0"])), "info": {"title": "t", "version": "1"},
            "servers": [{"url": "http://127.0.0.1:9/api"}], "paths": paths, "components": components}


def load(folder: Path, name: str, data: Any) -> Any:
    path = folder / "svc" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, allow_nan=False), "utf-8")
    return load_document(path, folder, environ={}, limits=Limits(max_file_bytes=1024 * 1024))


@FUZZ_SPECS
@given(spec=openapi_specs())
def test_any_ref_graph_gives_interfaces_or_errors(spec: dict[str, Any]) -> None:
    good = {"/healthy": {"get": {"responses": {"200": {"description": "ok"}}}}}
    spec["paths"] = {**spec["paths"], **good}
    with tempfile.TemporaryDirectory() as folder:
        tracemalloc.start()
        try:
            result = load(Path(folder), "spec.json", spec)
            assert tracemalloc.get_traced_memory()[1] < 100 * 1024 * 1024
        finally:
            tracemalloc.stop()
    check_document(result)
    # The well-formed operation is never hidden by the others.
    assert any(itf.path == "/healthy" or (itf.url or "").endswith("/healthy") for itf in result.interfaces), \
        [e.message for e in result.errors][:5]


postman_items = st.recursive(
    st.fixed_dictionaries({"name": st.text(max_size=6) | odd}, optional={
        "request": st.fixed_dictionaries({}, optional={
            "method": st.sampled_from(["GET", "POST", "get", ""]) | odd,
            "url": st.sampled_from(["{{base}}/a", "http://127.0.0.1:9/x?y=1", "", "::"]) | odd
            | st.fixed_dictionaries({}, optional={"raw": odd, "host": odd, "path": odd, "query": odd}),
            "header": st.lists(st.fixed_dictionaries({"key": odd, "value": odd}), max_size=2) | odd,
            "body": st.fixed_dictionaries({"mode": st.sampled_from(["raw", "urlencoded", "formdata", "x"]) | odd},
                                          optional={"raw": odd, "urlencoded": odd, "options": odd}) | odd,
            "auth": odd}) | st.text(max_size=10) | odd}),
    lambda kids: st.fixed_dictionaries({"name": st.text(max_size=6) | odd, "item": st.lists(kids, max_size=3) | odd}),
    max_leaves=8)


@FUZZ
@given(items=st.lists(postman_items, max_size=4), variables=odd | st.lists(
    st.fixed_dictionaries({"key": odd, "value": odd}), max_size=2), depth=st.integers(0, 200))
def test_any_postman_collection_gives_interfaces_or_errors(items: list[Any], variables: Any, depth: int) -> None:
    good = {"name": "healthy", "request": {"method": "GET", "url": "http://127.0.0.1:9/healthy"}}
    nested: Any = {"name": "deep", "item": [good]}
    for _ in range(depth):
        nested = {"name": "f", "item": [nested]}
    collection = {"info": {"name": "c", "schema":
                           "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
                  "item": [*items, nested], "variable": variables}
    with tempfile.TemporaryDirectory() as folder:
        result = load(Path(folder), "c.postman_collection.json", collection)
    check_document(result)
    if depth < 45:  # within the document nesting limit (loader.Limits): the good request is never hidden
        assert any(itf.name.endswith("healthy") for itf in result.interfaces), \
            [e.message for e in result.errors][:5]
