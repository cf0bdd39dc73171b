"""The importers' shared model: what a spec is (Source, detect; the cheap first look, `sniff`, is in the
package's __init__), the Draft of one operation, the conversion Context, and Draft -> Interface (finalize).
The converters (openapi.py, postman.py) build on it."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._document_fields import HTTP_METHODS
from ..documents import DocumentError, Expect, HeaderCheck, Interface
from ..loader import Path_, did_you_mean
from ..response_schema import SchemaProblem, place, prepare
from .overrides import Overrides
from .refs import EXT, Fragment, is_ext, line_map

__all__ = ["MISSING", "TEMPLATE", "WRITE_METHODS", "Context", "Draft", "Param", "Source", "detect", "fill_path",
           "finalize", "method_of", "pointer"]

MISSING: Any = object()  # "the spec gives no value" (None is a valid JSON value)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
TEMPLATE = re.compile(r"\{([^{}/?#]+)\}")  # an OpenAPI path template variable: /pets/{petId}
_MAX_LINE_MAP_CHARS = 20_000_000  # beyond this, items carry no line numbers (the map is the slow part)


def pointer(path: Path_) -> str:
    """('paths', '/pets/{id}', 'get') -> '#/paths/~1pets~1{id}/get' (RFC 6901 in a URI fragment); () -> ''.

    Inside a fragment file (first element `refs.ext(name)`): 'resources/pet.yml#/get'."""
    if is_ext(path):
        return str(path[0])[len(EXT):] + (pointer(path[1:]) or "#")
    return "" if not path else "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass
class Source:
    """A parsed spec: its data, which format, and field path -> line (computed only when needed)."""

    kind: str  # "openapi" | "swagger" | "postman" | "environment" (a Postman environment export: no items)
    version: str
    data: Any
    text: str
    problem: str | None = None  # set when the format is recognised but not supported (e.g. openapi 4.0)
    problem_at: Path_ = ()
    root: Path_ = ()  # where `data` sits in the file (Postman API exports wrap it in "collection")
    _lines: dict[Path_, int] | None = None

    def line(self, path: Path_) -> int | None:
        if self._lines is None:
            self._lines = line_map(self.text) if len(self.text) <= _MAX_LINE_MAP_CHARS else {}
        path = self.root + tuple(str(p) if not isinstance(p, int) else p for p in path)
        while path not in self._lines and path:
            path = path[:-1]
        return self._lines.get(path)


def detect(data: Any, text: str = "") -> Source | None:
    """Which spec format `data` is, with a problem for recognised but unsupported versions."""
    if not isinstance(data, dict):
        return None
    if "openapi" in data and any(k in data for k in ("info", "paths", "components", "webhooks")):
        version = str(data["openapi"]).strip()
        source = Source("openapi", version, data, text)
        if not re.match(r"^3\.[01](\.\d+)?(-[\w.]+)?$", version):
            source.problem, source.problem_at = (
                f"unsupported OpenAPI version '{version}': supported are OpenAPI 3.0.x and 3.1.x and Swagger 2.0",
                ("openapi",),
            )
        return source
    if "swagger" in data and any(k in data for k in ("info", "paths")):
        version = str(data["swagger"]).strip()
        source = Source("swagger", version, data, text)
        if version not in ("2", "2.0"):
            source.problem, source.problem_at = (
                f"unsupported Swagger version '{version}': supported are Swagger 2.0 and OpenAPI 3.0.x/3.1.x "
                "(convert older specs with swagger2openapi or the Swagger editor)",
                ("swagger",),
            )
        return source
    if isinstance(data.get("values"), list) and data.get("_postman_variable_scope") in ("environment", "globals"):
        return Source("environment", "", data, text)  # variables for a collection (sidecar `environment`)
    root: Path_ = ()
    if set(data) == {"collection"} and isinstance(data["collection"], dict):
        data, root = data["collection"], ("collection",)  # the Postman API wraps exports in {"collection": ...}
    info = data.get("info")
    if isinstance(info, dict) and ("item" in data or "_postman_id" in info) and (
        "postman" in str(info.get("schema", "")) or "_postman_id" in info
    ):
        schema = str(info.get("schema", ""))
        match = re.search(r"/v(\d+\.\d+)(?:\.\d+)?/", schema)
        version = match.group(1) if match else "2.1"
        source = Source("postman", version, data, text, root=root)
        if version not in ("2.0", "2.1"):
            source.problem, source.problem_at = (
                f"unsupported Postman collection schema '{schema}': export the collection as v2.1", ("info", "schema")
            )
        return source
    if isinstance(data.get("requests"), list) and ("order" in data or "folders" in data):
        source = Source("postman", "1", data, text)
        source.problem = "Postman Collection v1 is not supported: re-export it from Postman as Collection v2.1"
        return source
    return None


@dataclass
class Param:
    """A declared request parameter; `value` is MISSING when the spec gives no usable example."""

    name: str
    location: str  # path | query | header | cookie | form
    required: bool
    value: Any = MISSING
    explode: bool = True  # arrays: repeated parameter (True) or comma-joined (False)


@dataclass
class Draft:
    """One operation as the spec describes it, before the overrides decide what is sent."""

    name: str
    module: str
    method: str
    path: str  # template: /pets/{id} (OpenAPI) or /pets/:id (Postman)
    keys: tuple[str, ...]  # what overrides and include/exclude may call it: operationId, "GET /pets/{id}", name
    at: Path_  # where the operation is in the spec (lines, pointers)
    tags: tuple[str, ...] = ()  # spec tags / Postman folders (include/exclude by tag)
    params: list[Param] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body_kind: str | None = None  # "json" | "form" | "body" (raw text) | None
    body: Any = MISSING
    body_required: bool = False
    status: tuple[int | str, ...] = ()
    auth: bool | str | None = None
    fallback_base_url: str | None = None
    # The JSON Schema of the operation's 2xx JSON responses (OpenAPI/Swagger), refs inlined; None: none declared.
    response_schema: Any = None
    description: str | None = None
    skip: str | None = None  # decided by the importer (unresolved variable, unsupported method...)
    skip_kind: str | None = None
    index: int = 0  # position in the file (item order)
    error: tuple[Path_, str] | None = None  # (where, what): the operation becomes one failing item
    follow_redirects: bool = True
    verify_tls: bool | None = None  # None: the service's verify_tls decides


@dataclass
class Context:
    """What the importers need to know about the file being imported."""

    source: Source
    display: str
    path: Path
    service: str
    module: str  # default module (file-derived) for operations without a tag / folder
    environ: Mapping[str, str]
    overrides: Overrides
    pool_root: Path | None = None
    errors: list[DocumentError] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)  # unsupported feature -> how many operations use it
    fragments: dict[str, Fragment] = field(default_factory=dict)  # external $ref files read, by name
    # Credential values the importer put into a request (Postman auth, an OpenAPI apiKey parameter's example):
    # masked by value in every output, whatever the header or parameter is called.
    secrets: list[str] = field(default_factory=list, repr=False)

    def note(self, feature: str) -> None:
        """Something the file uses that is not done (listed once per file, with the number of operations)."""
        self.notes[feature] = self.notes.get(feature, 0) + 1

    def error(self, at: Path_, message: str, name: str | None = None, index: int | None = None) -> None:
        fragment = self.fragments.get(str(at[0])[len(EXT):]) if is_ext(at) else None
        if fragment is not None:  # a problem inside a referenced file: name that file, its line and pointer
            display = posixpath.normpath(posixpath.join(posixpath.dirname(self.display.replace("\\", "/")),
                                                        fragment.name))
            self.errors.append(DocumentError(display, fragment.line(at[1:]), pointer(at[1:]) or "#", message, name,
                                             index))
            return
        self.errors.append(DocumentError(self.display, self.source.line(at), pointer(at), message, name, index))


def _unique_names(drafts: list[Draft]) -> None:
    """Names are test ids: single line, no '::', unique per file (disambiguated by method and path)."""
    for d in drafts:
        d.name = " ".join(d.name.split()).replace("::", ":") or f"{d.method} {d.path}"
    counts: dict[str, int] = {}
    for d in drafts:
        counts[d.name] = counts.get(d.name, 0) + 1
    seen: set[str] = set()
    for d in drafts:
        name = d.name if counts[d.name] == 1 else f"{d.name} ({d.method} {d.path})"
        base, n = name, 2
        while name in seen:
            name, n = f"{base} #{n}", n + 1
        seen.add(name)
        d.name = name


def finalize(ctx: Context, d: Draft) -> Interface:
    """Apply the overrides and decide: a request to send, or a skip with the first reason that applies."""
    ov = ctx.overrides
    op = ov.for_draft(d)
    values = {**ov.params, **op.get("params", {})}
    reason = kind = None
    excluded = ov.excluded(d)
    allow_write = op.get("allow_write", ov.allow_write)
    if excluded:
        reason, kind = excluded, "excluded"
    elif op.get("skip"):
        reason, kind = op["skip"], "document"
    elif d.method in WRITE_METHODS and not allow_write:
        reason, kind = (
            f"data-changing operation ({d.method}) not monitored; enable with overrides `allow_write: true`",
            "write",
        )
    elif d.skip:
        reason, kind = d.skip, d.skip_kind or "unsupported"

    path = (ov.base_path or "") + d.path
    query: dict[str, Any] = {}
    headers = dict(d.headers)
    cookies: list[str] = []
    missing: list[Param] = []
    declared = {p.name for p in d.params}
    # A `{name}` in the path is a path parameter whatever the spec declares (or forgets to declare): it is
    # filled from the overrides or the declared parameter's example, never sent as a literal or moved to the query.
    templated = set(TEMPLATE.findall(path))
    for p in d.params:
        value = values.get(p.name, p.value)
        in_path = p.location == "path" or p.name in templated
        if in_path and value is not MISSING and TEMPLATE.search(_text(value)):
            value = MISSING  # an "example" such as "{petId}" is the template again, not a value
        if value is MISSING:
            if p.required or in_path:
                missing.append(Param(p.name, "path", True) if in_path else p)
            continue
        if in_path:
            path = fill_path(path, p.name, value)
        elif p.location == "header":
            headers[p.name] = _text(value)
        elif p.location == "cookie":
            cookies.append(f"{p.name}={_text(value)}")
        else:
            query[p.name] = _query_value(value, p.explode)
    for name in sorted(templated - declared, key=d.path.find):  # templated but never declared
        if name in values:
            path = fill_path(path, name, values[name])
        else:
            missing.append(Param(name, "path", True))
    for name, value in op.get("params", {}).items():  # an operation's other undeclared names: query parameters
        if name not in declared and name not in templated:
            query[name] = _query_value(value, True)
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    headers.update(ov.headers)
    headers.update(op.get("headers", {}))

    body_kind, body = d.body_kind, d.body
    for key in ("json", "form", "body"):
        if key in op:
            body_kind, body = key, op[key]
    if reason is None and missing:
        first = missing[0]
        hint = did_you_mean(first.name, list(values))
        reason, kind = (
            f"{first.location} parameter {first.name} has no example — set it in apimon overrides{hint}",
            "no_example",
        )
    elif reason is None and body is MISSING and d.body_required:
        reason, kind = "request body has no example — set it in apimon overrides (json, form or body)", "no_example"

    expect = op.get("expect", {})
    extra: dict[str, Any] = {}
    if body is not MISSING and body_kind == "json":
        extra["json"] = body
    elif body is not MISSING and body_kind == "form" and isinstance(body, dict):
        extra["form"] = {k: _text(v) for k, v in body.items()}
    elif body is not MISSING and body_kind in ("form", "body"):
        extra["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    description = op.get("description", d.description)
    # (schema or False, its SchemaContext): the sidecar's expect.schema (or false) wins
    schema = expect.get("schema", (None, None))
    if "schema" not in expect and ov.response_schema and d.response_schema is not None and d.method != "HEAD":
        try:  # HEAD: no body to check (RFC 9110 §9.3.2)
            schema = (d.response_schema, prepare(d.response_schema, None, place.get()))
        except SchemaProblem:  # a spec schema the library rejects: no check rather than a false alert
            schema = (None, None)
    return Interface(
        name=d.name,
        service=ctx.service,
        module=d.module or ctx.module,
        method=d.method,
        path=path if path.startswith("/") else "/" + path,
        params=query,
        headers=headers,
        auth=op.get("auth", ov.auth if ov.auth is not None else d.auth),
        expect=Expect(
            status=expect.get("status", d.status), body=expect.get("body", ()), max_ms=expect.get("max_ms"),
            headers=tuple(HeaderCheck(n, op_, want) for n, (op_, want) in expect.get("headers", {}).items()),
            warn_ms=expect.get("warn_ms"), schema=schema[0], schema_context=schema[1],
            cert_days=expect.get("cert_days"),
        ),
        timeout=op.get("timeout", ov.timeout),
        tags=tuple(dict.fromkeys(ov.tags + op.get("tags", ()))),
        skip=reason,
        skip_kind=kind,
        description=description,
        file=ctx.display,
        line=ctx.source.line(d.at),
        index=d.index,
        fallback_base_url=d.fallback_base_url,
        follow_redirects=d.follow_redirects,
        verify_tls=d.verify_tls,
        **extra,
    )


def fill_path(path: str, name: str, value: Any) -> str:
    """Put a percent-encoded value into `{name}` (OpenAPI) and `:name` (Postman) path segments."""
    text = quote(_text(value), safe=",;=:@")
    path = path.replace("{" + name + "}", text)
    return re.sub(rf"(?<=/):{re.escape(name)}(?=[/.;]|$)", lambda _m: text, path)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _query_value(value: Any, explode: bool) -> Any:
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value] if explode else _text(value)
    return _text(value)


def method_of(raw: Any) -> str | None:
    method = str(raw).strip().upper()
    return method if method in HTTP_METHODS else None
