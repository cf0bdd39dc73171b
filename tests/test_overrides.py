"""The overrides sidecar (`<spec>.apimon.yaml`): matching, effects, and validation errors."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from pytest_apimon.documents import BodyCheck, DocumentFile, Interface
from pytest_apimon.importers.overrides import operation_key, sidecar_for
from pytest_apimon.load import load_document

SPECS = Path(__file__).parent / "specs"


def load(tmp_path: Path, spec: str, sidecar: str | None, environ: dict[str, str] | None = None,
         suffix: str = ".apimon.yaml") -> DocumentFile:
    folder = tmp_path / "pool" / "svc"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SPECS / spec, folder / spec)
    if sidecar is not None:
        (folder / (Path(spec).stem + suffix)).write_text(textwrap.dedent(sidecar).lstrip(), encoding="utf-8")
    return load_document(folder / spec, tmp_path / "pool", display=f"pool/svc/{spec}", environ=environ or {})


def by_name(doc: DocumentFile) -> dict[str, Interface]:
    return {i.name: i for i in doc.interfaces}


def test_operation_key_normalisation() -> None:
    assert operation_key("get  /pets/{id}") == "GET /pets/{id}"
    assert operation_key(" getPetById ") == "getPetById"


def test_sidecar_location(tmp_path: Path) -> None:
    spec = tmp_path / "petstore.json"
    assert sidecar_for(spec) is None
    (tmp_path / "petstore.apimon.yml").write_text("{}")
    assert sidecar_for(spec) == tmp_path / "petstore.apimon.yml"


def test_shipped_sidecar_example(tmp_path: Path) -> None:
    folder = tmp_path / "pool" / "shop"
    folder.mkdir(parents=True)
    for name in ("shop-openapi3.yaml", "shop-openapi3.apimon.yaml"):
        shutil.copy(SPECS / name, folder / name)
    doc = load_document(folder / "shop-openapi3.yaml", tmp_path / "pool", display="x.yaml", environ={})
    assert doc.errors == []
    itf = by_name(doc)
    assert (itf["health"].skip_kind, itf["health"].skip) == ("excluded", "excluded by apimon overrides (exclude: ops)")
    order = itf["getOrder"]  # by operationId: the missing path parameter, expectations and an extra tag
    assert order.skip is None and order.path == "/orders/1001" and order.tags == ("shop", "p0")
    assert order.expect.status == (200,) and order.expect.body == (BodyCheck("data.id", "equals", 1001),)
    me = itf["updateMe"]  # by "PATCH /users/me": writes enabled for this one operation only
    assert (me.skip, me.auth, me.json) == (None, True, {"nickname": "小明"})
    assert itf["createProduct"].skip_kind == "write"
    assert itf["listProducts"].params == {"page": "1", "category": "books", "sort": "name"}
    assert itf["listProducts"].timeout == 3.0 and itf["listProducts"].headers["X-Client"] == "apimon"


def test_file_level_allow_write_include_and_defaults(tmp_path: Path) -> None:
    doc = load(tmp_path, "petstore-swagger2.json", """
        allow_write: true
        include: [pet, getInventory]
        tags: smoke
        params: {password: "${PW}"}
        auth: false
        timeout: 2.5
        operations:
          deletePet: {allow_write: false}
          "get /store/order/{orderId}": {params: {orderId: 7}}
    """, environ={"PW": "hunter2"})
    assert doc.errors == []
    itf = by_name(doc)
    assert itf["addPet"].skip is None and itf["addPet"].json["name"] == "doggie"
    assert itf["updatePetWithForm"].skip is None and itf["updatePetWithForm"].form["status"] == "available"
    assert itf["deletePet"].skip_kind == "write"  # the operation's own setting wins
    assert itf["getInventory"].skip is None
    assert (itf["getOrderById"].skip_kind, itf["getOrderById"].skip) == (
        "excluded", "not in the apimon overrides include list")
    assert itf["loginUser"].skip_kind == "excluded"
    assert all(i.tags == ("smoke",) and i.auth is False and i.timeout == 2.5 for i in doc.interfaces)


def test_params_fill_missing_values_and_undeclared_become_query(tmp_path: Path) -> None:
    doc = load(tmp_path, "petstore-swagger2.json", """
        operations:
          loginUser:
            params: {password: pw, lang: zh}
            skip: false
          getOrderById:
            skip: 订单服务维护中
    """)
    itf = by_name(doc)
    assert itf["loginUser"].skip is None
    assert itf["loginUser"].params == {"username": "alice", "password": "pw", "lang": "zh"}
    assert (itf["getOrderById"].skip, itf["getOrderById"].skip_kind) == ("订单服务维护中", "document")


def test_operations_can_be_named_by_summary(tmp_path: Path) -> None:
    doc = load(tmp_path, "shop-openapi3.yaml", "operations:\n  订单详情: {params: {orderId: 5}}\nexclude: [商品详情]\n")
    assert doc.errors == []
    assert by_name(doc)["getOrder"].path == "/orders/5" and by_name(doc)["getProduct"].skip_kind == "excluded"


def test_missing_value_hint_names_the_close_override(tmp_path: Path) -> None:
    doc = load(tmp_path, "petstore-swagger2.json", "operations:\n  getOrderById: {params: {orderid: 1}}\n")
    assert by_name(doc)["getOrderById"].skip == (
        "path parameter orderId has no example — set it in apimon overrides (did you mean 'orderid'?)")


def test_body_override_naming_and_base_path(tmp_path: Path) -> None:
    doc = load(tmp_path, "shop-openapi3.yaml", """
        naming: summary
        base_path: api/
        operations:
          createProduct:
            allow_write: true
            json: {name: 监控专用商品, price: {amount: 1, currency: CNY}}
    """)
    itf = by_name(doc)
    assert "商品列表" in itf and "订单明细" in itf and "listProducts" not in itf
    created = itf["新建商品"]
    assert created.skip is None and created.json["name"] == "监控专用商品" and created.path == "/api/products"


def test_postman_variables(tmp_path: Path) -> None:
    doc = load(tmp_path, "todo.postman_collection.json", """
        variables: {ownerId: u-1, adminKey: "${ADMIN_KEY}", baseUrl: "http://127.0.0.1:9/todo"}
        exclude: [管理]
    """, environ={"ADMIN_KEY": "k-1"})
    assert doc.errors == []
    itf = by_name(doc)
    assert itf["归档列表"].skip is None and itf["归档列表"].params == {"owner": "u-1"}
    assert itf["归档列表"].fallback_base_url == "http://127.0.0.1:9/todo"
    assert itf["统计"].skip_kind == "excluded"  # by folder


@pytest.mark.parametrize(("sidecar", "line", "field", "words"), [
    ("alow_write: true\n", 1, "alow_write", "unknown key 'alow_write' (did you mean 'allow_write'?)"),
    ("allow_write: yes please\n", 1, "allow_write", "expected true or false"),
    ("naming: sumary\n", 1, "naming", "did you mean 'summary'?"),
    ("operations:\n  getPetByld: {skip: true}\n", 2, "operations.getPetByld",
     "no operation 'getPetByld' in the document (did you mean 'getPetById'?)"),
    ("operations:\n  getPetById:\n    expect: {status: 2000}\n", 3, "operations.getPetById.expect.status",
     "status code 2000 is out of range"),
    ("operations:\n  getPetById:\n    tags: [skip]\n", 3, "operations.getPetById.tags[0]", "reserved by pytest"),
    ("operations:\n  getPetById:\n    parms: {petId: 2}\n", 3, "operations.getPetById.parms",
     "did you mean 'params'?"),
    ("operations:\n  addPet: {json: {}, body: x}\n", 2, "operations.addPet.body", "at most one body"),
    ("exclude: [pets]\n", 1, "exclude[0]", "'pets' is neither a tag nor an operation of the document "
                                           "(did you mean 'pet'?)"),
    ('headers: {X-Key: "${NOPE}"}\n', 1, "headers.X-Key", "environment variable ${NOPE} is not set"),
    ("operations: [a]\n", 1, "operations", "expected a mapping of operationId or 'METHOD /path'"),
    ("operations:\n  a: {b: [\n", 3, "", "invalid YAML"),
    ("- a\n", 1, "", "expected a mapping"),
])
def test_sidecar_errors_are_actionable(tmp_path: Path, sidecar: str, line: int, field: str, words: str) -> None:
    doc = load(tmp_path, "petstore-swagger2.json", sidecar)
    assert len(doc.errors) == 1, doc.errors
    err = doc.errors[0]
    assert err.file == "pool/svc/petstore-swagger2.apimon.yaml" and err.index is None
    assert (err.line, err.field) == (line, field) and words in err.message
    assert len(doc.interfaces) == 8  # a bad sidecar never hides the spec's operations


def test_a_broken_entry_is_ignored_as_a_whole(tmp_path: Path) -> None:
    doc = load(tmp_path, "petstore-swagger2.json", "operations:\n  addPet: {allow_write: true, timeout: -1}\n")
    assert len(doc.errors) == 1 and by_name(doc)["addPet"].skip_kind == "write"  # never half-enabled


def test_yml_sidecar_and_empty_sidecar(tmp_path: Path) -> None:
    doc = load(tmp_path, "petstore-swagger2.json", "allow_write: true\n", suffix=".apimon.yml")
    assert by_name(doc)["addPet"].skip is None
    doc = load(tmp_path / "b", "petstore-swagger2.json", "# nothing yet\n")
    assert doc.errors == [] and by_name(doc)["addPet"].skip_kind == "write"


@pytest.mark.parametrize(("sidecar", "words"), [
    ("environment: nope.postman_environment.json\n", "Postman environment file nope.postman_environment.json does "
                                                     "not exist"),
    ("environment: bad.json\n", "cannot read the Postman environment file bad.json"),
    ("environment: list.json\n", "list.json is not a Postman environment export"),
    ("environment: [a]\n", "expected the path of a Postman environment file"),
])
def test_environment_file_errors(tmp_path: Path, sidecar: str, words: str) -> None:
    folder = tmp_path / "pool" / "svc"
    folder.mkdir(parents=True)
    (folder / "bad.json").write_text("{", encoding="utf-8")
    (folder / "list.json").write_text("[]", encoding="utf-8")
    doc = load(tmp_path, "todo.postman_collection.json", "variables: {x: 1}\n" + sidecar)
    assert len(doc.errors) == 1 and words in doc.errors[0].message
    assert (doc.errors[0].file, doc.errors[0].line) == ("pool/svc/todo.postman_collection.apimon.yaml", 2)
    assert doc.interfaces  # the collection still runs


def test_environment_values_and_precedence(tmp_path: Path) -> None:
    folder = tmp_path / "pool" / "svc"
    folder.mkdir(parents=True)
    (folder / "dev.json").write_text(
        '{"name": "dev", "values": [{"key": "todoId", "value": "7", "enabled": true},'
        ' {"key": "ownerId", "value": "u-env"}, {"key": "baseUrl", "value": "http://off", "enabled": false}]}',
        encoding="utf-8")
    doc = load(tmp_path, "todo.postman_collection.json", "environment: dev.json\nvariables: {ownerId: u-side}\n")
    itf = by_name(doc)
    assert itf["待办详情"].path == "/todos/7"  # the environment wins over the collection's todoId
    assert itf["归档列表"].skip is None and "u-side" in str(itf["归档列表"].params)  # the sidecar wins over it
    assert {i.fallback_base_url for i in doc.interfaces} == {"https://todo.example.com/api"}  # disabled: unused
