"""The JSON Schema of the document format: valid, in step with the validator, and agreeing with it."""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from pytest_apimon import documents
from pytest_apimon.documents import schema_path
from pytest_apimon.load import load_document


def _load_sibling(name: str) -> Any:
    # By file path, so this works whatever pytest import mode the project uses.
    spec = importlib.util.spec_from_file_location(f"_apimon_{name}", Path(__file__).with_name(f"{name}.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VALID_DOCUMENTS: dict[str, tuple[str, str]] = _load_sibling("test_documents").VALID_DOCUMENTS
MORE_VALID = {
    "minimal": "name: health\npath: /health\n",
    "env-and-lowercase": "name: 下单\nmethod: post\nurl: ${BASE:-https://h.example}/order\njson: [1, 'a', null]\n",
    "status-forms": "name: s\npath: /s\nexpect: {status: 4XX, body: [{path: $, type: null}, {path: x, equals: [1]}]}\n",
    "empty-list": "[]\n",
    "defaults-with-url": "defaults: {url: 'http://h/x', auth: user}\ninterfaces: [{name: a}, {name: b, skip: later}]\n",
}
INVALID_DOCUMENTS = {
    "unknown-key": "name: a\npath: /a\nheders: {A: b}\n",
    "unknown-method": "name: a\nmethod: GTE\npath: /a\n",
    "missing-name": "method: GET\npath: /a\n",
    "name-with-colons": "name: 'a::b'\npath: /a\n",
    "no-target": "name: a\nmethod: GET\n",
    "list-item-no-target": "- {name: a, path: /a}\n- {name: b}\n",
    "file-item-no-target": "defaults: {timeout: 1}\ninterfaces: [{name: a}]\n",
    "both-targets": "name: a\npath: /a\nurl: 'http://h/a'\n",
    "two-bodies": "name: a\npath: /a\njson: {}\nbody: x\n",
    "bad-url-scheme": "name: a\nurl: htp://x\n",
    "url-no-host": "name: a\nurl: 'http://'\n",
    "relative-url": "name: a\nurl: /relative\n",
    "full-url-as-path": "name: a\npath: 'http://h/a'\n",
    "status-word": "name: a\npath: /a\nexpect: {status: abc}\n",
    "status-range": "name: a\npath: /a\nexpect: {status: [200, 600]}\n",
    "check-two-ops": "name: a\npath: /a\nexpect: {body: [{path: x, equals: 1, exists: true}]}\n",
    "check-no-op": "name: a\npath: /a\nexpect: {body: [{path: x}]}\n",
    "check-bad-type": "name: a\npath: /a\nexpect: {body: [{path: x, type: str}]}\n",
    "expect-unknown-key": "name: a\npath: /a\nexpect: {max: 1}\n",
    "bad-tag": "name: a\npath: /a\ntags: [1st]\n",
    "reserved-tag": "name: a\npath: /a\ntags: skip\n",
    "negative-timeout": "name: a\npath: /a\ntimeout: -1\n",
    "headers-list": "name: a\npath: /a\nheaders: [a]\n",
    "defaults-name": "defaults: {name: x}\ninterfaces: [{name: a, path: /a}]\n",
    "defaults-in-single": "name: a\npath: /a\ndefaults: {timeout: 1}\n",
    "interfaces-mapping": "interfaces: {name: a}\n",
    "file-key-typo": "defualts: {}\ninterfaces: []\n",
    "top-level-string": "just text\n",
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft7Validator:
    return Draft7Validator(schema)


def parse(name: str, text: str) -> Any:
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


def test_schema_is_valid_draft7(schema: dict[str, Any]) -> None:
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_schema_is_packaged_resource() -> None:
    resource = importlib.resources.files("pytest_apimon") / "schema" / "interface-document.schema.json"
    assert resource.is_file()
    assert Path(str(resource)).resolve() == schema_path().resolve() == documents.SCHEMA_PATH.resolve()


@pytest.mark.parametrize("key", sorted(VALID_DOCUMENTS))
def test_shared_valid_documents_validate(validator: Draft7Validator, key: str) -> None:
    name, text = VALID_DOCUMENTS[key]
    errors = [e.message for e in validator.iter_errors(parse(name, text))]
    assert errors == []


@pytest.mark.parametrize("key", sorted(MORE_VALID))
def test_valid_documents_agree(validator: Draft7Validator, tmp_path: Path, key: str) -> None:
    text = MORE_VALID[key]
    assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []
    path = tmp_path / "svc" / "doc.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    assert load_document(path, tmp_path, environ={}).errors == []


@pytest.mark.parametrize("key", sorted(INVALID_DOCUMENTS))
def test_invalid_documents_agree(validator: Draft7Validator, tmp_path: Path, key: str) -> None:
    text = INVALID_DOCUMENTS[key]
    assert not validator.is_valid(yaml.safe_load(text)), "schema accepts a document the loader rejects"
    path = tmp_path / "svc" / "doc.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    assert load_document(path, tmp_path, environ={}).errors, "loader accepts a document the schema rejects"


def _keys(schema: dict[str, Any], definition: str) -> set[str]:
    return set(schema["definitions"][definition]["properties"])


def test_schema_keys_match_validator(schema: dict[str, Any]) -> None:
    """Fails when a key is added to the validator but not to the schema (or the other way round)."""
    assert _keys(schema, "interface") == set(documents.INTERFACE_KEYS)
    assert _keys(schema, "defaults") == set(documents.DEFAULTS_KEYS)
    assert _keys(schema, "singleInterfaceFile") == set(documents.INTERFACE_KEYS) | set(documents.SINGLE_FILE_KEYS)
    assert _keys(schema, "interfacesFile") == set(documents.FILE_KEYS)
    assert _keys(schema, "expect") == set(documents.EXPECT_KEYS)
    assert _keys(schema, "bodyCheck") == set(documents.BODY_CHECK_KEYS)


def test_schema_enums_match_validator(schema: dict[str, Any]) -> None:
    definitions = schema["definitions"]
    assert definitions["field_method"]["anyOf"][0]["enum"] == list(documents.HTTP_METHODS)
    assert set(definitions["bodyCheck"]["properties"]["type"]["enum"]) - {None} == set(documents.CHECK_TYPES)
    assert definitions["tag"]["pattern"] == documents.TAG_PATTERN.pattern
    assert set(definitions["tag"]["not"]["enum"]) == set(documents.RESERVED_TAGS)


def test_every_property_has_a_description(schema: dict[str, Any]) -> None:
    """Editors show descriptions while autocompleting: none may be missing."""
    definitions = schema["definitions"]
    missing = []
    for def_name, definition in definitions.items():
        for key, prop in definition.get("properties", {}).items():
            target = prop
            while "$ref" in target:  # follow the chain to what an editor shows
                target = definitions[target["$ref"].rsplit("/", 1)[1]]
            if not target.get("description"):
                missing.append(f"{def_name}.{key}")
    assert missing == []


# --- the overrides sidecar schema, and files in the pool that are not native documents ---------------------

SPECS = Path(__file__).parent / "specs"
SIDECAR_SCHEMA = Path(documents.__file__).parent / "schema" / "apimon-overrides.schema.json"


@pytest.fixture(scope="module")
def sidecar_schema() -> dict[str, Any]:
    return json.loads(SIDECAR_SCHEMA.read_text(encoding="utf-8"))


def test_sidecar_schema_ships_and_matches_the_validator(sidecar_schema: dict[str, Any],
                                                        schema: dict[str, Any]) -> None:
    from pytest_apimon.importers import overrides

    Draft7Validator.check_schema(sidecar_schema)
    assert (importlib.resources.files("pytest_apimon") / "schema" / "apimon-overrides.schema.json").is_file()
    assert set(sidecar_schema["properties"]) == set(overrides.FILE_KEYS)
    assert set(sidecar_schema["definitions"]["operation"]["properties"]) == set(overrides.OPERATION_KEYS)
    assert sidecar_schema["properties"]["naming"]["enum"] == list(overrides.NAMING)
    # definitions shared with the document schema are copies: they must not drift apart
    for name, definition in sidecar_schema["definitions"].items():
        if name in schema["definitions"]:
            assert definition == schema["definitions"][name], name


@pytest.mark.parametrize("path", sorted(SPECS.rglob("*.apimon.yaml")), ids=lambda p: p.name)
def test_shipped_sidecars_validate(sidecar_schema: dict[str, Any], path: Path) -> None:
    assert list(Draft7Validator(sidecar_schema).iter_errors(yaml.safe_load(path.read_text("utf-8")))) == []


@pytest.mark.parametrize("text", [
    "allow_writes: true\n",
    "allow_write: 'yes'\n",
    "naming: title\n",
    "operations:\n  getOrder: {params: {id: 1}, json: {}, body: x}\n",
    "operations:\n  getOrder: {expect: {status: 999}}\n",
    "operations:\n  getOrder: {parms: {id: 1}}\n",
    "base_path: https://h/api\n",
])
def test_invalid_sidecars_are_rejected_by_schema_and_loader(sidecar_schema: dict[str, Any], tmp_path: Path,
                                                            text: str) -> None:
    from pytest_apimon.importers.overrides import load_overrides

    assert list(Draft7Validator(sidecar_schema).iter_errors(yaml.safe_load(text)))
    (tmp_path / "s.apimon.yaml").write_text(text, encoding="utf-8")
    assert load_overrides(tmp_path / "s.json", "s.json", {}).errors


@pytest.mark.parametrize("path", sorted(p for p in SPECS.rglob("*") if p.suffix in (".json", ".yaml")),
                         ids=lambda p: str(p.relative_to(SPECS)))
def test_document_schema_leaves_specs_collections_and_sidecars_alone(validator: Draft7Validator, path: Path) -> None:
    """The recommended association maps the document schema onto the whole pool: files that are not native
    documents (recognised by content, as pytest-apimon does) must not be marked invalid."""
    data = json.loads(path.read_text("utf-8")) if path.suffix == ".json" else yaml.safe_load(path.read_text("utf-8"))
    assert list(validator.iter_errors(data)) == []


@pytest.mark.parametrize("text", [
    "path: /a\n",  # a native document without a name is still marked
    "url: 'http://h/a'\nexpect: {status: 200}\n",
    "method: GET\nresponses: {}\n",
    "interfaces: {name: a}\n",
])
def test_document_schema_still_marks_broken_native_documents(validator: Draft7Validator, text: str) -> None:
    assert list(validator.iter_errors(yaml.safe_load(text)))
