"""OpenAPI 3.0/3.1, Swagger 2.0 and Postman v2.x documents in the pool: detection, conversion, errors, end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from localserver import LocalServer, Response
from test_plugin import XDIST, write

from pytest_apimon.config import load_config
from pytest_apimon.documents import DocumentFile, Interface, is_document, load_document
from pytest_apimon.engine import Engine
from pytest_apimon.importers import detect, pointer, sniff

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
        return [{"id": 42, "name": "三体"}] if ok else Response(400, {}, {"query": req.query})

    srv.route("POST", "/api/login", login)
    srv.route("GET", "/api/health", lambda r: {"status": "UP"})
    srv.route("GET", "/api/products", authed(products))
    srv.route("GET", "/api/products/42", authed(lambda r: {"id": 42, "name": "三体"}))
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
    result.stdout.fnmatch_lines(["*data-changing operation (POST) not monitored*"])


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
