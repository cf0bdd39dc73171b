"""OpenAPI 3.0/3.1, Swagger 2.0 and Postman v2.x documents in the pool: detection, conversion, errors, end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from localserver import LocalServer, Response
from test_plugin import XDIST, write

from pytest_apimon.config import load_config
from pytest_apimon.documents import DocumentFile, Interface, is_document
from pytest_apimon.engine import Engine
from pytest_apimon.importers import detect, pointer, sniff
from pytest_apimon.load import load_document

SPECS = Path(__file__).parent / "specs"
WRITE_REASON = "data-changing operation ({}) not monitored; enable with overrides `allow_write: true`"


def load(tmp_path: Path, name: str, *, sidecar: bool = False, environ: dict[str, str] | None = None,
         service: str = "svc") -> DocumentFile:
    """Copy a spec (and optionally its sidecar) into a pool folder and load it as the plugin would."""
    folder = tmp_path / "pool" / service
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SPECS / name, folder / name)
    if sidecar:
        stem = name.rsplit(".", 1)[0]
        shutil.copy(SPECS / f"{stem}.apimon.yaml", folder / f"{stem}.apimon.yaml")
    return load_document(folder / name, tmp_path / "pool", display=f"pool/{service}/{name}", environ=environ or {})


def by_name(doc: DocumentFile) -> dict[str, Interface]:
    return {i.name: i for i in doc.interfaces}


def load_text(tmp_path: Path, name: str, text: str, environ: dict[str, str] | None = None) -> DocumentFile:
    path = write(tmp_path, f"pool/svc/{name}", text)
    return load_document(path, tmp_path / "pool", display=f"pool/svc/{name}", environ=environ or {})


# --- detection ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind", "version"), [
    ("shop-openapi3.yaml", "openapi", "3.0.3"),
    ("library-openapi31.json", "openapi", "3.1.0"),
    ("petstore-swagger2.json", "swagger", "2.0"),
    ("todo.postman_collection.json", "postman", "2.1"),
])
def test_specs_are_recognised_by_content(tmp_path: Path, name: str, kind: str, version: str) -> None:
    renamed = tmp_path / ("api" + Path(name).suffix)  # no naming convention needed
    shutil.copy(SPECS / name, renamed)
    source = sniff(renamed.read_text(encoding="utf-8"), renamed.suffix)
    assert source is not None and (source.kind, source.version, source.problem) == (kind, version, None)


@pytest.mark.parametrize("text", [
    "name: x\npath: /x\n",
    "- {name: x, path: /x, description: our swagger docs}\n",
    "interfaces:\n  - {name: openapi, path: /openapi.json}\n",
])
def test_native_documents_are_not_taken_for_specs(text: str) -> None:
    assert sniff(text, ".yaml") is None


def test_postman_v20_and_api_wrapper_are_recognised() -> None:
    v20 = {"info": {"name": "x", "schema": "https://schema.getpostman.com/json/collection/v2.0.0/collection.json"},
           "item": []}
    assert detect(v20).version == "2.0"
    wrapped = detect({"collection": {"info": {"_postman_id": "1", "name": "x"}, "item": []}})
    assert wrapped is not None and wrapped.kind == "postman" and wrapped.root == ("collection",)


@pytest.mark.parametrize(("text", "field", "words"), [
    ('{"openapi": "4.0.0", "info": {}, "paths": {}}', "#/openapi", "unsupported OpenAPI version '4.0.0'"),
    ('{"swagger": "1.2", "info": {}, "paths": {}}', "#/swagger", "unsupported Swagger version '1.2'"),
    ('{"info": {"name": "x", "schema": "https://schema.getpostman.com/json/collection/v3.0.0/c.json"}, "item": []}',
     "#/info/schema", "export the collection as v2.1"),
    ('{"id": "1", "name": "old", "order": [], "requests": []}', "", "Postman Collection v1 is not supported"),
])
def test_unknown_versions_are_one_error(tmp_path: Path, text: str, field: str, words: str) -> None:
    doc = load_text(tmp_path, "api.json", text)
    assert doc.interfaces == [] and len(doc.errors) == 1
    err = doc.errors[0]
    assert err.file == "pool/svc/api.json" and err.field == field and words in err.message and err.index is None


def test_invalid_json_spec_is_one_error_with_line(tmp_path: Path) -> None:
    doc = load_text(tmp_path, "api.json", '{\n  "openapi": "3.0.0",\n  "paths": {,}\n}\n')
    assert [(e.line, e.message.startswith("invalid JSON")) for e in doc.errors] == [(3, True)]


def test_invalid_yaml_spec_is_one_error_with_line(tmp_path: Path) -> None:
    doc = load_text(tmp_path, "api.yaml", "openapi: 3.0.0\npaths:\n  /x: [\n")
    assert len(doc.errors) == 1 and doc.errors[0].message.startswith("invalid YAML") and doc.errors[0].line


def test_sidecar_is_not_a_document() -> None:
    assert not is_document(Path("pool/svc/petstore.apimon.yaml"))
    assert not is_document(Path("pool/svc/petstore.APIMON.yml"))
    assert is_document(Path("pool/svc/petstore.yaml"))


def test_pointer_escapes() -> None:
    assert pointer(("paths", "/pets/{id}", "get", "responses", "200", "$ref")) == \
        "#/paths/~1pets~1{id}/get/responses/200/$ref"
    assert pointer(("a~b", 0)) == "#/a~0b/0"


# --- OpenAPI 3.0 --------------------------------------------------------------------------------------


def test_openapi3_operations_become_interfaces(tmp_path: Path) -> None:
    doc = load(tmp_path, "shop-openapi3.yaml")
    assert doc.errors == []
    names = [i.name for i in doc.interfaces]
    assert names == ["health", "listProducts", "createProduct", "getProduct", "deleteProduct", "getOrder", "订单明细",
                     "me", "updateMe"]
    itf = by_name(doc)
    assert {i.service for i in doc.interfaces} == {"svc"}
    assert itf["listProducts"].module == "products" and itf["getOrder"].module == "orders"
    assert itf["health"].auth is False  # security: [] -> explicitly public
    lp = itf["listProducts"]
    # page from a $ref'd parameter's schema example; category from the first enum (required); the optional
    # 'sort' has only a default, which the server applies anyway: not sent.
    assert lp.params == {"page": "1", "category": "books"} and lp.headers == {"X-Tenant": "acme"}
    assert lp.expect.status == (200,) and lp.skip is None and lp.line == 29
    assert lp.description == "商品列表"
    assert itf["getProduct"].path == "/products/42"  # path-level parameter -> $ref -> schema $ref -> example
    assert itf["订单明细"].path == "/orders/1001/items/7"  # examples -> components/examples $ref
    assert itf["getOrder"].expect.status == ("2xx",)
    assert itf["me"].expect.status == ()  # only 'default' declared: any 2xx
    for i in doc.interfaces:
        assert i.fallback_base_url == "https://shop.example.com/api"  # server variables substituted


def test_openapi3_missing_values_and_writes_are_skipped(tmp_path: Path) -> None:
    itf = by_name(load(tmp_path, "shop-openapi3.yaml"))
    order = itf["getOrder"]
    assert order.skip == "path parameter orderId has no example — set it in apimon overrides"
    assert order.skip_kind == "no_example" and order.path == "/orders/{orderId}"
    for name, method in (("createProduct", "POST"), ("deleteProduct", "DELETE"), ("updateMe", "PATCH")):
        assert (itf[name].skip, itf[name].skip_kind) == (WRITE_REASON.format(method), "write")
    # The body is still composed from the nested $refs, ready for when writes are enabled.
    assert itf["createProduct"].json == {"name": "三体", "price": {"amount": 9.9, "currency": "CNY"}}
    assert itf["updateMe"].json == {"nickname": "小明"}


# --- OpenAPI 3.1 --------------------------------------------------------------------------------------


def test_openapi31_examples_refs_and_errors(tmp_path: Path) -> None:
    doc = load(tmp_path, "library-openapi31.json")
    itf = by_name(doc)
    assert itf["图书列表"].params == {"q": "三体", "lang": "zh"}  # schema 'examples' list and 'const'
    assert itf["图书列表"].module == "图书" and itf["stats"].module == "运维"
    assert itf["图书详情"].path == "/books/9787536692930"
    assert itf["更新图书"].json == {"title": "三体", "year": 2008} and itf["更新图书"].skip_kind == "write"
    # Same summary twice: disambiguated by method and path; the recursive Node schema does not hang.
    assert "书架 (GET /shelves/{shelfId}/tree)" in itf
    assert all(i.fallback_base_url is None for i in doc.interfaces)  # relative server: base_url needed

    op_errors = [e for e in doc.errors if e.index is not None]
    file_errors = [e for e in doc.errors if e.index is None]
    assert len(op_errors) == 1 and op_errors[0].name == "书架 (GET /shelves/{shelfId})"
    assert op_errors[0].field == "#/components/parameters/ShelfId/schema/$ref"
    assert "broken $ref '#/components/schemas/ShelfKey'" in op_errors[0].message and op_errors[0].line == 61
    # A broken ref that no operation needs (a response schema) is still reported, once, for the file.
    assert [e.field for e in file_errors] == [
        "#/paths/~1stats/get/responses/200/content/application~1json/schema/$ref"]
    assert "stats" in itf  # ...and does not cost the operation


def test_broken_ref_in_operation_and_cycles(tmp_path: Path) -> None:
    spec = {
        "openapi": "3.0.0", "info": {"title": "t", "version": "1"},
        "paths": {
            "/pets/{id}": {"get": {"operationId": "getPet", "parameters": [{"$ref": "#/components/parameters/Idd"}],
                                   "responses": {"200": {"$ref": "#/components/responses/Nope"}}}},
            "/loop": {"get": {"operationId": "loop", "parameters": [{"$ref": "#/components/parameters/A"}],
                              "responses": {"200": {"description": "ok"}}}},
            "/ext": {"get": {"operationId": "ext", "parameters": [{"$ref": "other.yaml#/Id"}],
                             "responses": {"200": {"description": "ok"}}}},
            "/remote": {"get": {"operationId": "remote",
                                "parameters": [{"$ref": "https://example.com/common.yaml#/Id"}],
                                "responses": {"200": {"description": "ok"}}}},
            "/fine": {"get": {"operationId": "fine", "responses": {"200": {"description": "ok"}}}},
        },
        "components": {"parameters": {"Id": {"name": "id", "in": "path", "required": True, "example": 1},
                                      "A": {"$ref": "#/components/parameters/B"},
                                      "B": {"$ref": "#/components/parameters/A"}}},
    }
    doc = load_text(tmp_path, "api.json", json.dumps(spec, indent=2))
    errors = {e.name: e for e in doc.errors if e.name}
    assert errors["getPet"].field == "#/paths/~1pets~1{id}/get/parameters/0/$ref"
    assert "did you mean 'Id'?" in errors["getPet"].message
    assert "circular $ref" in errors["loop"].message
    assert "referenced file other.yaml does not exist" in errors["ext"].message
    assert "remote $ref 'https://example.com/common.yaml' is not supported" in errors["remote"].message
    assert [i.name for i in doc.interfaces] == ["fine"]
    # The broken response ref of getPet (not needed to send it) is reported for the file.
    assert [e.field for e in doc.errors if e.index is None] == ["#/paths/~1pets~1{id}/get/responses/200/$ref"]
    assert [e.index for e in doc.errors if e.name] == [0, 1, 2, 3] and doc.interfaces[0].index == 4


@pytest.mark.parametrize("spec", [
    {"openapi": "3.0.0", "info": {}, "paths": []},
    {"openapi": "3.0.0", "info": {}, "paths": {"/x": "nope"}},
    {"openapi": "3.0.0", "info": {}, "paths": {"/x": {"get": "nope"}}},
    {"openapi": "3.0.0", "info": {}, "paths": {"/x": {"get": {"parameters": "x"}}}},
    {"openapi": "3.0.0", "info": {}, "paths": {"/x": {"get": {"parameters": [{"in": "query"}]}}}},
    {"openapi": "3.0.0", "info": {}, "paths": {"/x": {"get": {"requestBody": [], "responses": []}}}},
    {"openapi": "3.0.0", "info": {}, "paths": {"/x": {"get": {"parameters": [{"$ref": 5}]}}}},
    {"swagger": "2.0", "info": {}, "paths": {"/x/{a}": {"get": {"parameters": [None, 3]}}}, "host": 5},
])
def test_malformed_specs_never_raise(tmp_path: Path, spec: dict) -> None:
    doc = load_text(tmp_path, "api.json", json.dumps(spec))
    assert doc.errors and all(e.file == "pool/svc/api.json" and e.field.startswith("#") for e in doc.errors)


def test_yaml_dates_and_int_status_keys(tmp_path: Path) -> None:
    doc = load_text(tmp_path, "api.yaml", """
        openapi: 3.0.1
        info: {title: t, version: "1"}
        paths:
          /reports/{day}:
            get:
              parameters:
                - {name: day, in: path, required: true, schema: {type: string, format: date, example: 2024-05-01}}
              responses:
                200: {description: ok}
                201: {description: ok too}
    """)
    itf = doc.interfaces[0]
    assert (itf.name, itf.path, itf.expect.status) == ("GET /reports/{day}", "/reports/2024-05-01", (200, 201))


# --- Swagger 2.0 --------------------------------------------------------------------------------------


def test_swagger2_operations(tmp_path: Path) -> None:
    doc = load(tmp_path, "petstore-swagger2.json")
    assert doc.errors == []
    itf = by_name(doc)
    assert {i.fallback_base_url for i in doc.interfaces} == {"https://petstore.example.com/v2"}
    find = itf["findPetsByStatus"]
    assert find.params == {"status": ["available"], "limit": "20"}  # multi: repeated parameter; x-example
    assert find.description == "按状态查找宠物" and find.module == "pet"
    assert itf["getPetById"].path == "/pet/1"  # #/parameters/PetId with x-example
    assert itf["updatePetWithForm"].form == {"name": "doggie", "status": "available"}
    assert itf["addPet"].json["category"] == {"id": 1, "name": "狗"}  # body param -> definitions -> nested $ref
    assert itf["deletePet"].skip_kind == "write" and itf["deletePet"].expect.status == ()
    assert itf["getOrderById"].skip_kind == "no_example"
    assert itf["loginUser"].skip == "query parameter password has no example — set it in apimon overrides"


# --- Postman -------------------------------------------------------------------------------------------


def test_postman_collection(tmp_path: Path) -> None:
    doc = load(tmp_path, "todo.postman_collection.json", environ={"adminPassword": "s3cret"})
    assert doc.errors == []
    itf = by_name(doc)
    assert [i.module for i in doc.interfaces] == ["todo.postman_collection"] + ["待办"] * 5 + ["管理"] * 2
    health = itf["health"]
    assert (health.path, health.auth, health.expect.status) == ("/health", False, (200,))
    assert {i.fallback_base_url for i in doc.interfaces} == {"https://todo.example.com/api"}
    todos = itf["待办列表"]
    # Folder variable, and a collection variable that refers to another one; disabled header left out.
    assert (todos.path, todos.params, todos.headers) == ("/lists/inbox/todos", {"page": "1", "size": "20"},
                                                         {"Accept": "application/json"})
    assert todos.auth is True  # collection auth: bearer {{token}} -> the service's token
    assert todos.description is None  # unsupported features are listed once for the file, not per request
    assert doc.notes == ["Postman scripts (tests, pre-request) are JavaScript and are not run; the status is checked "
                         "(1 request)"]
    assert itf["待办详情"].path == "/todos/1" and itf["待办详情"].expect.status == (200,)
    created = itf["新建待办"]
    assert created.json == {"title": "买牛奶", "list": "inbox"} and created.skip_kind == "write"
    archive = itf["归档列表"]
    assert archive.skip_kind == "unresolved" and "{{ownerId}}" in archive.skip
    assert itf["统计"].skip_kind == "unresolved"  # apikey auth with an unknown {{adminKey}}
    whoami = itf["登录"]  # basic auth; the password comes from the environment
    assert whoami.skip is None and whoami.headers == {"Authorization": "Basic YWRtaW46czNjcmV0"}
    assert whoami.auth is False


def test_postman_v20_shapes(tmp_path: Path) -> None:
    collection = {
        "info": {"name": "v2.0", "schema": "https://schema.getpostman.com/json/collection/v2.0.0/collection.json"},
        "auth": {"type": "bearer", "bearer": {"token": "literal-token"}},
        "item": [
            {"name": "plain url", "request": "http://127.0.0.1:9/api/items?tag=a&tag=b"},
            {"name": "header string", "request": {"method": "get", "header": "X-A: 1\nX-B: two",
                                                  "url": {"protocol": "http", "host": ["127", "0", "0", "1"],
                                                          "port": "9", "path": ["v", "x"]}}},
            {"name": "odd", "request": {"method": "PURGE", "url": "/cache"}},
            "not an item",
        ],
    }
    doc = load_text(tmp_path, "c.json", json.dumps(collection))
    itf = by_name(doc)
    plain = itf["plain url"]
    assert (plain.fallback_base_url, plain.path, plain.params) == ("http://127.0.0.1:9", "/api/items",
                                                                   {"tag": ["a", "b"]})
    assert plain.headers == {"Authorization": "Bearer literal-token"} and plain.auth is False
    header = itf["header string"]
    assert (header.fallback_base_url, header.path, header.method) == ("http://127.0.0.1:9", "/v/x", "GET")
    assert header.headers["X-B"] == "two"
    assert itf["odd"].skip_kind == "unsupported" and itf["odd"].fallback_base_url is None
    assert [(e.index, e.field) for e in doc.errors] == [(3, "#/item/3")]


# --- engine: the spec's server is a fallback only -------------------------------------------------------


def test_fallback_base_url_only_without_configured_base_url(tmp_path: Path) -> None:
    itf = Interface(name="x", service="svc", module="m", method="GET", path="/pets/1",
                    fallback_base_url="http://127.0.0.1:9/v2")
    bare = load_config(write(tmp_path, "a.yaml", "services: {}\n"))
    assert Engine(bare).build_request(itf).url == "http://127.0.0.1:9/v2/pets/1"
    configured = load_config(write(tmp_path, "b.yaml", "services:\n  svc: {base_url: 'http://127.0.0.1:8/api'}\n"))
    assert Engine(configured).build_request(itf).url == "http://127.0.0.1:8/api/pets/1"


# --- end to end: a spec dropped into the pool, against a local implementation ----------------------------


def serve_shop(srv: LocalServer) -> None:
    """A small implementation of shop-openapi3.yaml under /api."""
    def login(req):
        return {"token": "tok-shop"} if req.json() == {"user": "monitor"} else Response(401, {}, "no")

    def authed(handler):
        def wrapped(req):
            if req.headers.get("authorization") != "Bearer tok-shop":
                return Response(401, {}, {"msg": "login first"})
            return handler(req)
        return wrapped

    def products(req):
        ok = req.query.get("category") == ["books"] and req.headers.get("x-tenant") == "acme"
        # Bodies conform to the spec's response schemas: imported operations are validated against them (issue 16).
        price = {"amount": 23.5, "currency": "CNY"}
        return [{"id": 42, "name": "三体", "price": price}] if ok else Response(400, {}, {"query": req.query})

    srv.route("POST", "/api/login", login)
    srv.route("GET", "/api/health", lambda r: {"status": "UP"})
    srv.route("GET", "/api/products", authed(products))
    srv.route("GET", "/api/products/42", authed(lambda r: {"id": 42, "name": "三体",
                                                            "price": {"amount": 23.5, "currency": "CNY"}}))
    srv.route("GET", "/api/orders/1001", authed(lambda r: {"data": {"id": 1001}}))
    srv.route("GET", "/api/orders/1001/items/7", authed(lambda r: {"id": 7}))
    srv.route("GET", "/api/users/me", authed(lambda r: {"nickname": "小明"}))
    srv.route("PATCH", "/api/users/me", authed(lambda r: r.json()))
    for method, path in (("POST", "/api/products"), ("DELETE", "/api/products/42")):
        srv.route(method, path, lambda r: Response(500, {}, "monitoring must never call this"))


@pytest.mark.parametrize("extra", XDIST)
def test_end_to_end_openapi_with_overrides(pytester: pytest.Pytester, local_server: LocalServer, extra) -> None:
    serve_shop(local_server)
    base = pytester.path
    write(base, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          shop:
            base_url: {local_server.url}/api
            auth: {{type: login, path: /login, json: {{user: monitor}}, token_path: token}}
    """)
    (base / "pool" / "shop").mkdir(parents=True)
    shutil.copy(SPECS / "shop-openapi3.yaml", base / "pool/shop/shop-openapi3.yaml")
    shutil.copy(SPECS / "shop-openapi3.apimon.yaml", base / "pool/shop/shop-openapi3.apimon.yaml")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", "-rs", *extra)
    result.assert_outcomes(passed=6, skipped=3)
    records = json.loads((base / "out/r.json").read_text(encoding="utf-8"))["results"]
    got = {r["name"]: r["outcome"] for r in records}
    assert got == {"health": "skipped", "listProducts": "passed", "createProduct": "skipped", "getProduct": "passed",
                   "deleteProduct": "skipped", "getOrder": "passed", "订单明细": "passed", "me": "passed",
                   "updateMe": "passed"}
    assert local_server.count("/api/health") == 0  # excluded by the sidecar
    assert not [r for r in local_server.requests if r.method in ("POST", "DELETE") and r.path != "/api/login"]
    # requests run concurrently: pick the PATCH (allowed by the sidecar), not whichever came last
    put = [r for r in local_server.requests if r.method == "PATCH" and r.path == "/api/users/me"]
    assert [r.json() for r in put] == [{"nickname": "小明"}]
    result.stdout.fnmatch_lines(["*数据变更接口（POST）不监控*"])  # the skip reason, in the report language


def test_end_to_end_servers_without_base_url(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    local_server.route("GET", "/v1/ping", lambda r: {"pong": True})
    local_server.route("GET", "/v1/items/5", lambda r: Response(404, {}, "gone"))
    write(pytester.path, "config.yaml", "defaults: {retries: 0}\n")
    write(pytester.path, "pool/edge/api.yaml", f"""
        openapi: 3.1.0
        info: {{title: edge, version: "1"}}
        servers: [{{url: "{local_server.url}/v1"}}]
        paths:
          /ping:
            get: {{operationId: ping, summary: 探活, responses: {{"200": {{description: ok}}}}}}
          /items/{{id}}:
            get:
              operationId: item
              parameters: [{{name: id, in: path, required: true, schema: {{type: integer, examples: [5]}}}}]
              responses: {{"200": {{description: ok}}}}
    """)
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json")
    result.assert_outcomes(passed=1, failed=1)
    records = {r["name"]: r for r in json.loads((pytester.path / "out/r.json").read_text("utf-8"))["results"]}
    assert records["item"]["category"] == "not_found" and records["ping"]["url"].endswith("/v1/ping")


def test_end_to_end_postman_and_broken_specs(pytester: pytest.Pytester, local_server: LocalServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    local_server.route("GET", "/todo/health", lambda r: {"status": "UP"})
    local_server.route("GET", "/todo/todos/3", lambda r: {"id": 3})
    local_server.route("GET", "/todo/archive", lambda r: {"owner": r.query["owner"][0]})
    monkeypatch.setenv("OWNER_ID", "u-9")
    collection = {
        "info": {"_postman_id": "x", "name": "todo",
                 "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "variable": [{"key": "baseUrl", "value": f"{local_server.url}/todo"}, {"key": "todoId", "value": "3"}],
        "item": [
            {"name": "health", "request": {"method": "GET", "url": "{{baseUrl}}/health"}},
            {"name": "todos", "item": [
                {"name": "detail", "request": {"method": "GET", "url": {
                    "raw": "{{baseUrl}}/todos/:id", "variable": [{"key": "id", "value": "{{todoId}}"}]}}},
                {"name": "archive", "request": {"method": "GET", "url": "{{baseUrl}}/archive?owner={{OWNER_ID}}"}},
                {"name": "secret", "request": {"method": "GET", "url": "{{baseUrl}}/s?k={{missingKey}}"}},
                {"name": "create", "request": {"method": "POST", "url": "{{baseUrl}}/todos"}},
            ]},
        ],
    }
    write(pytester.path, "config.yaml", "defaults: {retries: 0}\n")
    write(pytester.path, "pool/todo/todo.json", json.dumps(collection, ensure_ascii=False))
    write(pytester.path, "pool/bad/broken.json", '{"openapi": "3.0.0", "paths": {\n')
    write(pytester.path, "pool/bad/future.yaml", "openapi: 4.0.0\ninfo: {title: x}\npaths: {}\n")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json")
    result.assert_outcomes(passed=3, skipped=2, failed=2)
    records = json.loads((pytester.path / "out/r.json").read_text("utf-8"))["results"]
    failed = [r for r in records if r["outcome"] == "failed"]
    assert {r["category"] for r in failed} == {"invalid_document"}
    assert any("unsupported OpenAPI version '4.0.0'" in r["reason"] for r in failed)
    assert local_server.last("/todo/archive").query == {"owner": ["u-9"]}


# --- realistic shapes (tests/specs): what a server receives ---------------------------------------------


def pool_with(base: Path, service: str, *names: str) -> Path:
    """Copy spec files (or a folder's content) from tests/specs into pool/<service>/."""
    folder = base / "pool" / service
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = SPECS / name
        if source.is_dir():
            shutil.copytree(source, folder, dirs_exist_ok=True)
        else:
            shutil.copy(source, folder / name)
    return folder


def config_for(base: Path, service: str, url: str) -> None:
    write(base, "config.yaml", f"defaults: {{retries: 0}}\nservices:\n  {service}: {{base_url: '{url}'}}\n")


def no_template_sent(srv: LocalServer) -> None:
    paths = [r.path for r in srv.requests]
    assert paths and not [p for p in paths if "{" in p or "%7b" in p.lower() or "%7d" in p.lower()], paths


def test_path_templates_are_filled_from_overrides_and_declared_values(tmp_path: Path) -> None:
    pool_with(tmp_path, "bin", "bin-swagger2.yaml", "bin-swagger2.apimon.yaml")
    doc = load_document(tmp_path / "pool/bin/bin-swagger2.yaml", tmp_path / "pool", display="bin.yaml", environ={})
    assert doc.errors == []
    got = {i.path: (i.params, i.skip) for i in doc.interfaces}
    assert got == {
        "/get": ({}, None),
        "/etag/abc": ({}, None),  # undeclared template, operation-level value: the path, not the query
        "/anything/foo": ({}, None),
        "/delay/0": ({}, None),  # undeclared template, file-level value
        "/bytes/16": ({}, None),  # declared path parameter: its default
        "/base64/SFRUUEJJTiBpcyBhd2Vzb21l": ({}, None),  # x-example
        "/links/10/2": ({}, None),  # declared default + undeclared from the operation's overrides
        "/status/{codes}": ({}, "path parameter codes has no example — set it in apimon overrides"),
    }


def test_undeclared_template_without_value_is_skipped_and_query_names_stay_query(tmp_path: Path) -> None:
    spec = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {
        "/etag/{etag}": {"get": {"operationId": "etag", "responses": {"200": {"description": "ok"}}}},
        # declared in the query by mistake, but templated in the path: it fills the path
        "/items/{id}": {"get": {"operationId": "item", "parameters": [
            {"name": "id", "in": "query", "required": True, "example": 7}], "responses": {}}},
        "/search": {"get": {"operationId": "search", "responses": {}}},
        "/pets/{petId}": {"get": {"operationId": "pet", "parameters": [  # an "example" that is the template again
            {"name": "petId", "in": "path", "required": True, "schema": {"type": "string", "example": "{petId}"}}],
            "responses": {}}},
        "x-vendor-groups": [{"name": "all"}],  # an extension, not a path: no item, no error
    }}
    write(tmp_path, "pool/svc/api.apimon.yaml", "operations:\n  search: {params: {q: x}}\n")
    doc = load_text(tmp_path, "api.json", json.dumps(spec))
    itf = by_name(doc)
    assert sorted(itf) == ["etag", "item", "pet", "search"] and doc.errors == []
    assert itf["pet"].skip == "path parameter petId has no example — set it in apimon overrides"
    assert itf["etag"].skip == "path parameter etag has no example — set it in apimon overrides"
    assert (itf["item"].path, itf["item"].params) == ("/items/7", {})
    assert (itf["search"].path, itf["search"].params) == ("/search", {"q": "x"})


def test_engine_never_sends_a_url_holding_a_template(tmp_path: Path, local_server: LocalServer) -> None:
    local_server.route("GET", "/etag/%7Betag%7D", lambda r: {"ok": True})  # the false PASS of the issue
    config = load_config(write(tmp_path, "c.yaml", f"services:\n  svc: {{base_url: '{local_server.url}'}}\n"))
    engine = Engine(config)
    for path in ("/etag/{etag}", "/todos/{{todoId}}", "/a/{}/b"):
        result = engine.check(Interface(name="x", service="svc", module="m", method="GET", path=path))
        assert (result.outcome, result.category, result.sub) == ("failed", "invalid_document", "template")
        assert "template variable" in result.reason
    # the same percent-encoded (what the false PASS sent) is never sent either
    encoded = engine.check(Interface(name="z", service="svc", module="m", method="GET", path="/etag/%7betag%7D"))
    assert (encoded.outcome, encoded.sub) == ("failed", "template")
    # braces in the query (a JSON filter) are data, not a template
    local_server.route("GET", "/search", lambda r: {"ok": True})
    ok = engine.check(Interface(name="y", service="svc", module="m", method="GET", path="/search",
                                params={"filter": '{"a": 1}'}))
    assert ok.outcome == "passed"
    assert [r.path for r in local_server.requests] == ["/search"]


@pytest.mark.parametrize("extra", XDIST)
def test_end_to_end_bin_spec_sends_filled_paths_only(pytester: pytest.Pytester, local_server: LocalServer,
                                                     extra) -> None:
    for path in ("/get", "/etag/abc", "/anything/foo", "/delay/0", "/bytes/16", "/base64/SFRUUEJJTiBpcyBhd2Vzb21l",
                 "/links/10/2"):
        local_server.route("GET", path, lambda r: {"args": r.query})
    pool_with(pytester.path, "bin", "bin-swagger2.yaml", "bin-swagger2.apimon.yaml")
    config_for(pytester.path, "bin", local_server.url)
    result = pytester.runpytest("--apimon", "pool", "-rs", *extra)
    result.assert_outcomes(passed=7, skipped=1)
    result.stdout.fnmatch_lines(["*path 参数 codes 没有示例值，请在 apimon overrides 中设置*"])
    no_template_sent(local_server)
    assert local_server.last("/anything/foo").query == {}


def vendor_pool(base: Path) -> Path:
    folder = pool_with(base, "billing", "vendor-split")
    write(base, "outside-the-pool.yaml", "operationId: stolen\nresponses: {'200': {description: x}}\n")
    return folder


def test_external_refs_to_path_items_and_operations(tmp_path: Path) -> None:
    folder = vendor_pool(tmp_path)
    doc = load_document(folder / "billing-openapi.yaml", tmp_path / "pool", display="pool/billing/billing-openapi.yaml",
                        environ={})
    itf = by_name(doc)
    assert sorted(itf) == ["closeAccount", "createAccount", "getAccount", "getInvoice", "listAccounts", "ping"]
    listed = itf["listAccounts"]  # an operation in a fragment: its parameters (one via another fragment) and status
    assert (listed.path, listed.params, listed.expect.status, listed.module) == (
        "/accounts", {"limit": "5", "status": "active"}, (200,), "accounts")
    assert itf["getAccount"].path == "/accounts/acc_1001"  # path-item fragment, path-level parameter
    assert itf["getInvoice"].path == "/accounts/acc_1001/invoices/inv_7"  # the sidecar names a fragment's operation
    assert itf["createAccount"].skip_kind == "write" and itf["createAccount"].json == {
        "id": "acc_1001", "name": "监控账户", "balance": {"amount": 1999, "currency": "CNY"}}  # fragment -> root
    assert itf["getAccount"].line == 19 and itf["listAccounts"].line == 15  # lines in the root spec
    errors = {e.name: e for e in doc.errors}
    assert set(errors) == {"GET /usage", "GET /exports"}
    remote = "remote $ref 'https://specs.billing.example.com/v1/usage.yaml' is not supported"
    assert remote in errors["GET /usage"].message
    assert "points outside the pool" in errors["GET /exports"].message
    assert all(e.index is not None for e in doc.errors)  # each costs its operation: collected == operations


def test_external_ref_problems_name_the_fragment(tmp_path: Path) -> None:
    write(tmp_path, "pool/svc/parts/a.yaml", "$ref: b.yaml\n")
    write(tmp_path, "pool/svc/parts/b.yaml", "$ref: a.yaml\n")
    write(tmp_path, "pool/svc/parts/op.yaml", """
        operationId: op
        parameters:
          - $ref: '#/components/parameters/Idd'
        responses: {'200': {description: ok}}
    """)
    write(tmp_path, "pool/svc/parts/bad.yaml", "operationId: [unclosed\n")
    doc = load_text(tmp_path, "api.yaml", """
        openapi: 3.0.3
        info: {title: t, version: "1"}
        paths:
          /loop: {$ref: parts/a.yaml}
          /op:
            get: {$ref: parts/op.yaml}
          /bad:
            get: {$ref: parts/bad.yaml}
          /fine:
            get: {operationId: fine, responses: {'200': {description: ok}}}
        components: {parameters: {Id: {name: id, in: query, example: 1}}}
    """)
    assert [i.name for i in doc.interfaces] == ["fine"]
    messages = [str(e) for e in doc.errors]
    assert any("circular $ref" in m for m in messages), messages
    # a broken pointer inside a fragment: named by the fragment's file, line and pointer
    assert any(m.startswith("pool/svc/parts/op.yaml:3: #/parameters/0/$ref: broken $ref") and "did you mean 'Id'?" in m
               for m in messages), messages
    assert any("referenced file parts/bad.yaml is not valid YAML (line 2)" in m for m in messages), messages
    assert len(messages) == 3, messages


@pytest.mark.parametrize("extra", XDIST)
def test_end_to_end_split_spec(pytester: pytest.Pytester, local_server: LocalServer, extra) -> None:
    local_server.route("GET", "/v1/accounts", lambda r: [{"id": "acc_1001", "name": "监控账户"}])
    local_server.route("GET", "/v1/accounts/acc_1001", lambda r: {"id": "acc_1001", "name": "监控账户"})
    local_server.route("GET", "/v1/accounts/acc_1001/invoices/inv_7", lambda r: {"total": {"amount": 1}})
    local_server.route("GET", "/v1/ping", lambda r: Response(204, {}, b""))
    vendor_pool(pytester.path)
    write(pytester.path, "config.yaml",
          f"defaults: {{retries: 0}}\nservices:\n  billing: {{base_url: '{local_server.url}/v1'}}\n")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", "--apimon-coverage", *extra)
    # 8 operations: 4 checked, 2 writes skipped, the remote and the escaping $ref one error each; the fragment
    # files are not documents of their own (no invalid_document item for paths/, operations/, components/).
    result.assert_outcomes(passed=4, skipped=2, failed=2)
    records = json.loads((pytester.path / "out/r.json").read_text("utf-8"))["results"]
    assert {r["file"] for r in records} == {"pool/billing/billing-openapi.yaml"}
    assert local_server.last("/v1/accounts").query == {"limit": ["5"], "status": ["active"]}
    no_template_sent(local_server)
    result.stdout.fnmatch_lines(["*billing: *8*"])  # coverage: 8 documented


def newman_server(srv: LocalServer) -> None:
    def ok(req):
        return {"seen": True}

    srv.route("GET", "/oauth/tokeninfo", ok)
    srv.route("GET", "/search", lambda r: {"hits": []} if r.json() == {"query": {"match": {"title": "monitor"}}}
              else Response(400, {}, "body expected"))
    srv.route("HEAD", "/oauth/revoke", ok)
    srv.route("GET", "/legacy", lambda r: Response(302, {"Location": "/new"}, b""))
    srv.route("GET", "/new", ok)
    srv.route("GET", "/users/u-42", ok)
    srv.route("GET", "/status", ok)
    srv.route("GET", "/v1/me", ok)
    srv.route("GET", "/internal/health", ok)


def test_postman_environment_file_and_inherited_auth(tmp_path: Path) -> None:
    pool_with(tmp_path, "nm", "newman-like.postman_collection.json", "newman-like.postman_collection.apimon.yaml",
              "newman-like.postman_environment.json")
    folder = tmp_path / "pool" / "nm"
    env_doc = load_document(folder / "newman-like.postman_environment.json", tmp_path / "pool", environ={})
    assert (env_doc.interfaces, env_doc.errors) == ([], [])  # an environment export is not a document
    doc = load_document(folder / "newman-like.postman_collection.json", tmp_path / "pool", environ={})
    assert doc.errors == []
    itf = by_name(doc)
    token = itf["Token info"]  # folder bearer from the environment file; the saved OAuth form body is pruned
    assert (token.headers, token.form, token.body, token.has_json) == (
        {"Authorization": "Bearer at-456"}, None, None, False)
    assert itf["Search (GET with a body)"].json == {"query": {"match": {"title": "monitor"}}}
    assert itf["Search (GET with a body)"].params == {"size": "25"}  # the environment wins over the collection
    assert itf["Revoke (basic, own auth)"].body is None
    assert itf["Profile"].headers == {"X-Api-Key": "k-123"} and itf["Profile"].path == "/users/u-42"
    assert itf["Public status"].headers == {} and itf["Public status"].auth is False
    legacy, follows = itf["Legacy link"], itf["Follows anyway"]
    assert (legacy.follow_redirects, legacy.expect.status) == (False, (302,))
    assert (follows.follow_redirects, follows.expect.status) == (True, ())
    assert itf["Internal (self-signed)"].verify_tls is False
    assert all("not run" not in (i.description or "") for i in doc.interfaces)
    assert doc.notes == [
        "Postman scripts (tests, pre-request) are JavaScript and are not run; the status is checked (10 requests)",
        "Postman auth type 'oauth1' is not mapped: configure the service's auth in config.yaml (1 request)",
        "Postman form-data file uploads are not sent (1 request)",
        "Postman form-data bodies are sent URL-encoded, not as multipart/form-data (1 request)",
        "Postman protocolProfileBehavior 'followOriginalHttpMethod' is not supported (1 request)",
    ]


def test_postman_credentials_saved_in_the_collection(tmp_path: Path) -> None:
    def collection(token: str) -> str:
        return json.dumps({
            "info": {"name": "c", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
            "variable": [{"key": "token", "value": token}],
            "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{token}}"}]},
            "item": [{"name": "f", "item": [{"name": "r", "request": {"method": "GET", "url": "/x"}}]}],
        })
    saved = load_text(tmp_path, "a.json", collection("t-1")).interfaces[0]
    # sent as newman would; a service auth configured in config.yaml still replaces it (auth None)
    assert (saved.headers, saved.auth) == ({"Authorization": "Bearer t-1"}, None)
    empty = load_text(tmp_path, "b.json", collection("")).interfaces[0]  # set by a login script: the service's token
    assert (empty.headers, empty.auth) == ({}, True)
    write(tmp_path, "pool/svc/c.apimon.yaml", "variables: {token: t-side}\n")
    user = load_text(tmp_path, "c.json", collection("")).interfaces[0]  # set by the user: sent, no service token
    assert (user.headers, user.auth) == ({"Authorization": "Bearer t-side"}, False)


def test_postman_oauth2_sends_the_saved_access_token(tmp_path: Path) -> None:
    def collection(extra: list[dict[str, str]]) -> str:
        auth = {"type": "oauth2", "oauth2": [{"key": "accessToken", "value": "{{access_token}}"},
                                             {"key": "grant_type", "value": "client_credentials"}, *extra]}
        return json.dumps({
            "info": {"name": "c", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
            "variable": [{"key": "access_token", "value": "at-9"}], "auth": auth,
            "item": [{"name": "r", "request": {"method": "GET", "url": "/x"}}],
        })
    header = load_text(tmp_path, "a.json", collection([]))
    assert header.interfaces[0].headers == {"Authorization": "Bearer at-9"} and header.notes == []
    query = load_text(tmp_path, "b.json", collection([{"key": "addTokenTo", "value": "queryParams"}]))
    assert (query.interfaces[0].headers, query.interfaces[0].params) == ({}, {"access_token": "at-9"})


@pytest.mark.parametrize("extra", XDIST)
def test_end_to_end_newman_like_collection(pytester: pytest.Pytester, local_server: LocalServer, extra) -> None:
    newman_server(local_server)
    pool_with(pytester.path, "nm", "newman-like.postman_collection.json", "newman-like.postman_collection.apimon.yaml",
              "newman-like.postman_environment.json")
    config_for(pytester.path, "nm", local_server.url)
    result = pytester.runpytest("--apimon", "pool", *extra)
    result.assert_outcomes(passed=9, skipped=1)  # the environment file is not collected
    info = local_server.last("/oauth/tokeninfo")
    assert info.body == b"" and "content-length" not in info.headers  # no leftover client_secret form
    assert info.headers["authorization"] == "Bearer at-456" and "x-api-key" not in info.headers
    assert local_server.last("/search").json() == {"query": {"match": {"title": "monitor"}}}
    assert local_server.last("/oauth/revoke").body == b""
    assert local_server.last("/users/u-42").headers["x-api-key"] == "k-123"
    assert "x-api-key" not in local_server.last("/status").headers
    assert local_server.count("/legacy") == 2 and local_server.count("/new") == 1  # only one follows
    no_template_sent(local_server)
    warnings = [line for line in result.outlines if line.startswith("警告：pool/nm/")]
    assert len(warnings) == 5 and "（10 个请求）" in warnings[0]  # once per file, not once per request


def test_end_to_end_strict_ssl(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory) -> None:
    from localserver import make_self_signed_cert

    cert = make_self_signed_cert(Path(tmp_path_factory.mktemp("tls")))
    if cert is None:
        pytest.skip("openssl CLI not available")
    with LocalServer(tls=cert) as srv:
        srv.route("GET", "/health", lambda r: {"ok": True})
        collection = {
            "info": {"name": "tls", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
            "item": [
                {"name": "self-signed ok", "protocolProfileBehavior": {"strictSSL": False},
                 "request": {"method": "GET", "url": "{{baseUrl}}/health"}},
                {"name": "verified", "request": {"method": "GET", "url": "{{baseUrl}}/health"}},
            ],
        }
        write(pytester.path, "pool/tls/c.json", json.dumps(collection))
        write(pytester.path, "config.yaml", f"defaults: {{retries: 0}}\nservices:\n  tls: {{base_url: '{srv.url}'}}\n")
        result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json")
    result.assert_outcomes(passed=1, failed=1)
    records = {r["name"]: r for r in json.loads((pytester.path / "out/r.json").read_text("utf-8"))["results"]}
    assert (records["verified"]["category"], records["verified"]["sub"]) == ("network", "tls")


def test_native_document_with_a_template_fails_without_sending(pytester: pytest.Pytester,
                                                                 local_server: LocalServer) -> None:
    local_server.route("GET", "/users/%7Bid%7D", lambda r: {"ok": True})
    config_for(pytester.path, "u", local_server.url)
    write(pytester.path, "pool/u/users.yaml", "name: user\npath: /users/{id}\n")
    result = pytester.runpytest("--apimon", "pool")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*接口文档错误*模板变量 {id}*"])
    assert local_server.requests == []


# --- property: whatever the spec and the overrides say, no template reaches the wire ---------------------

_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)
_VALUES = st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.lists(st.integers(), max_size=3))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(names=st.lists(_NAMES, min_size=1, max_size=3, unique=True), data=st.data())
def test_property_filled_paths_hold_no_template(tmp_path: Path, names: list[str], data: st.DataObject) -> None:
    path = "/r" + "".join(f"/{{{n}}}" for n in names)
    declared = data.draw(st.lists(st.sampled_from(names), unique=True))
    params = [{"name": n, "in": data.draw(st.sampled_from(["path", "query"])), "required": True,
               **({"example": data.draw(_VALUES)} if data.draw(st.booleans()) else {})} for n in declared]
    file_level = data.draw(st.dictionaries(st.sampled_from([*names, "other"]), _VALUES, max_size=2))
    op_level = data.draw(st.dictionaries(st.sampled_from([*names, "extra"]), _VALUES, max_size=2))
    spec = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"},
            "paths": {path: {"get": {"operationId": "op", "parameters": params, "responses": {}}}}}
    sidecar = {"params": file_level, "operations": {"op": {"params": op_level}}}
    write(tmp_path, "pool/svc/p.apimon.yaml", json.dumps(sidecar))
    doc = load_text(tmp_path, "p.json", json.dumps(spec))
    if any(e.file.endswith("p.apimon.yaml") for e in doc.errors):
        return  # a value the sidecar rejects (e.g. a list of lists): reported, nothing else to check
    (itf,) = doc.interfaces
    if itf.skip is None:
        assert "{" not in itf.path and "}" not in itf.path, itf.path
        config = load_config(write(tmp_path, "c.yaml", "services:\n  svc: {base_url: 'http://127.0.0.1:9'}\n"))
        Engine(config).build_request(itf)  # the engine's guard agrees: no UnfilledTemplate
        assert not set(itf.params) & set(names)  # a template variable never ends up in the query
    else:
        assert itf.skip_kind == "no_example" and "has no example" in itf.skip


def test_external_refs_with_a_single_file_as_the_pool(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    local_server.route("GET", "/v1/accounts/acc_1001", lambda r: {"id": "acc_1001", "name": "监控账户"})
    vendor_pool(pytester.path)
    config_for(pytester.path, "billing", f"{local_server.url}/v1")
    result = pytester.runpytest("--apimon", "pool/billing/billing-openapi.yaml", "-k", "getAccount")
    result.assert_outcomes(passed=1)


def test_a_symlink_out_of_the_pool_is_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "secret/op.yaml", "operationId: leaked\nresponses: {'200': {description: ok}}\n")
    (tmp_path / "pool" / "svc").mkdir(parents=True)
    (tmp_path / "pool" / "svc" / "parts").symlink_to(tmp_path / "secret")
    doc = load_text(tmp_path, "api.yaml", """
        openapi: 3.0.3
        info: {title: t, version: "1"}
        paths:
          /x:
            get: {$ref: parts/op.yaml}
    """)
    assert doc.interfaces == [] and "points outside the pool" in doc.errors[0].message


def test_postman_generated_shapes(tmp_path: Path) -> None:
    """openapi-to-postman output (type placeholders instead of values) and v2.0 variables keyed by "id"."""
    collection = {
        "info": {"name": "gen", "schema": "https://schema.getpostman.com/json/collection/v2.0.0/collection.json"},
        "variable": [{"id": "baseUrl", "value": "http://petstore.example/v1", "type": "string"}],
        "item": [
            {"name": "Info for a specific pet", "request": {"method": "GET", "url": {
                "raw": "{{baseUrl}}/pets/:petId", "host": ["{{baseUrl}}"], "path": ["pets", ":petId"],
                "variable": [{"key": "petId", "value": "<string>", "description": "(Required) The id of the pet"}]}}},
            {"name": "List all pets", "request": {"method": "GET", "header": [{"key": "X-Trace", "value": "<uuid>"}],
                                                  "url": "{{baseUrl}}/pets?limit=<integer>"}},
            {"name": "List with a real value", "request": {"method": "GET", "url": "{{baseUrl}}/pets?limit=5"}},
            {"name": "Placeholder", "request": {"method": "GET", "header": []}},
        ],
    }
    doc = load_text(tmp_path, "gen.json", json.dumps(collection))
    itf = by_name(doc)
    assert itf["Info for a specific pet"].skip == "path parameter petId has no example — set it in apimon overrides"
    assert itf["List all pets"].skip_kind == "no_example"
    assert "limit has no example" in itf["List all pets"].skip
    real = itf["List with a real value"]
    assert (real.skip, real.params, real.fallback_base_url) == (None, {"limit": "5"}, "http://petstore.example/v1")
    assert (itf["Placeholder"].skip, itf["Placeholder"].skip_kind) == ("the request has no URL", "unsupported")


def test_postman_structured_url_wins_over_raw(tmp_path: Path) -> None:
    """As postman-collection builds it: a disabled query parameter stays in `raw` but is not sent."""
    collection = {
        "info": {"name": "u", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "variable": [{"key": "baseUrl", "value": "http://h.example"}, {"key": "tag", "value": "b"}],
        "item": [{"name": "list", "request": {"method": "GET", "url": {
            "raw": "{{baseUrl}}/pets?limit=<integer>&tag=a&tag={{tag}}&q=x%26y",
            "host": ["{{baseUrl}}"], "path": ["pets"],
            "query": [{"key": "limit", "value": "<integer>", "disabled": True}, {"key": "tag", "value": "a"},
                      {"key": "tag", "value": "{{tag}}"}, {"key": "q", "value": "x&y"}]}}}],
    }
    itf = load_text(tmp_path, "u.json", json.dumps(collection)).interfaces[0]
    assert (itf.skip, itf.path, itf.params) == (None, "/pets", {"tag": ["a", "b"], "q": "x&y"})


@pytest.mark.parametrize("extra", XDIST)
def test_environment_secret_values_are_masked(pytester: pytest.Pytester, local_server: LocalServer, extra) -> None:
    local_server.route("GET", "/echo/s3cr3t-env-value", lambda r: Response(500, {}, "echo s3cr3t-env-value"))
    collection = {
        "info": {"name": "c", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": [{"name": "echo", "request": {"method": "GET", "url": "{{baseUrl}}/echo/{{hook}}?v={{hook}}"}}],
    }
    environment = {"name": "e", "_postman_variable_scope": "environment",
                   "values": [{"key": "hook", "value": "s3cr3t-env-value", "type": "secret", "enabled": True}]}
    write(pytester.path, "pool/svc/c.json", json.dumps(collection))
    write(pytester.path, "pool/svc/c.apimon.yaml", "environment: e.json\n")
    write(pytester.path, "pool/svc/e.json", json.dumps(environment))
    config_for(pytester.path, "svc", local_server.url)
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", *extra)
    result.assert_outcomes(failed=1)
    assert local_server.count("/echo/s3cr3t-env-value") >= 1
    assert "s3cr3t-env-value" not in result.stdout.str()
    assert "s3cr3t-env-value" not in (pytester.path / "out/r.json").read_text("utf-8")


# -- issue 12 red team L8: every importer auth path registers the credential values it sends -------------
def _pm_item(name: str, auth: dict, path: str) -> dict:
    return {"name": name, "request": {"auth": auth, "method": "GET",
                                      "url": {"raw": "{{baseUrl}}/" + path, "host": ["{{baseUrl}}"], "path": [path]}}}


def test_l8_postman_auth_values_are_secrets_whatever_they_are_sent_as(tmp_path: Path) -> None:
    def kv(**values: str) -> list[dict]:
        return [{"key": k, "value": v} for k, v in values.items()]

    items = [
        _pm_item("apikey q", {"type": "apikey", "apikey": kv(key="q", value="PmApi-Key-7171", **{"in": "query"})}, "q"),
        _pm_item("apikey h", {"type": "apikey", "apikey": kv(key="X-Gw", value="PmApi-Key-8282")}, "h"),
        _pm_item("bearer", {"type": "bearer", "bearer": kv(token="PmBearer-3131")}, "b"),
        _pm_item("basic", {"type": "basic", "basic": kv(username="u", password="PmBasic-4141")}, "s"),
        _pm_item("oauth2", {"type": "oauth2", "oauth2": kv(accessToken="PmOauth-5151", addTokenTo="queryParams",
                                                            clientSecret="PmClient-6161")}, "o"),
        {"name": "var", "request": {"method": "GET", "header": [{"key": "X-Plain", "value": "{{apiKey}}"}],
                                    "url": {"raw": "{{baseUrl}}/v", "host": ["{{baseUrl}}"], "path": ["v"]}}},
    ]
    pm = {"info": {"name": "x", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
          "item": items, "variable": [{"key": "baseUrl", "value": "http://example.invalid"},
                                      {"key": "apiKey", "value": "PmVar-7272"}]}
    doc = load_text(tmp_path, "x.postman_collection.json", json.dumps(pm))
    assert not doc.errors
    for value in ("PmApi-Key-7171", "PmApi-Key-8282", "PmBearer-3131", "PmBasic-4141", "PmOauth-5151",
                  "PmClient-6161", "PmVar-7272"):
        assert value in doc.secrets, value
    from pytest_apimon.redact import MASK, Redactor

    assert Redactor(doc.secrets).text("GET http://h/q?q=PmApi-Key-7171") == f"GET http://h/q?q={MASK}"


def test_l8_openapi_api_key_scheme_parameter_example_is_a_secret(tmp_path: Path) -> None:
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "http://h"}],
            "components": {"securitySchemes": {"k": {"type": "apiKey", "name": "q", "in": "query"}}},
            "paths": {"/x": {"get": {"parameters": [
                {"name": "q", "in": "query", "required": True, "schema": {"type": "string"},
                 "example": "OaKey-9393"},
                {"name": "page", "in": "query", "required": True, "schema": {"type": "string"}, "example": "two"}],
                "responses": {"200": {"description": "ok"}}}}}}
    doc = load_text(tmp_path, "api.json", json.dumps(spec))
    assert not doc.errors and doc.secrets == ["OaKey-9393"]


def test_postman_malformed_or_non_urls_are_errors_not_rebased(tmp_path: Path) -> None:
    """A malformed raw URL was rebased onto the configured base_url and sent; a string request that is no URL
    went to the base URL's root. Both are invalid_document with their JSON pointer; real URLs still load."""
    items = [
        {"name": "bad-ipv6", "request": {"url": {"raw": "http://[::1/x"}, "method": "GET"}},
        {"name": "bad-port", "request": {"url": "http://api.example.com:99999/x", "method": "GET"}},
        {"name": "plain-word", "request": "not-a-dict"},
        {"name": "string-url", "request": "https://api.example.com/ping"},
        {"name": "docker-host", "request": "backend:8080/health"},
        {"name": "var-host", "request": {"url": "{{host}}/x", "method": "GET"}},
    ]
    text = json.dumps({"info": {"name": "p", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/"
                                                        "collection.json"}, "item": items, "variable": [
        {"key": "host", "value": "backend"}]})
    doc = load_text(tmp_path, "c.postman_collection.json", text)
    errors = {e.name: e for e in doc.errors}
    assert set(errors) == {"bad-ipv6", "bad-port", "plain-word"}, doc.errors
    assert "Invalid IPv6 URL" in errors["bad-ipv6"].message and "#/item/0/request/url" in errors["bad-ipv6"].field
    assert "port" in errors["bad-port"].message
    assert "'not-a-dict' is not a URL" in errors["plain-word"].message
    assert errors["plain-word"].field.endswith("#/item/2/request")
    assert set(by_name(doc)) == {"string-url", "docker-host", "var-host"}
