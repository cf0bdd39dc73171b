"""OpenAPI 3.0/3.1 and Swagger 2.0 -> Drafts: one per operation, values only from the spec's examples.

Values come from `example`, `examples`, `default` or the first `enum` (on the parameter or its
schema); request bodies from media examples or from property examples composed along the schema.
Nothing is invented: what has none of these stays MISSING and `finalize` skips the operation.
Local `$ref`s are followed with cycle protection; a broken one costs the operation that needs it
(or, when nothing needs it, one file-level error), never the run.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any

from .._document_fields import describe
from ..errors import ApimonError
from ..loader import Path_, did_you_mean
from .model import MISSING, Context, Draft, Param, method_of, pointer
from .refs import EXT, REMOTE, Fragment, RefProblem, ext, fragment_name, is_ext, load_fragment, split_ref, target_path

OPERATION_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_IGNORED_HEADERS = ("authorization", "accept", "content-type")  # the service auth / the client set these
_MAX_DEPTH = 12
_MAX_REF_ERRORS = 20


class SpecError(ApimonError):
    """A problem at a place in the spec (the pointer goes into DocumentError.field)."""

    def __init__(self, at: Path_, message: str, chain: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.at = at
        self.chain = chain or (pointer(at),)  # every $ref followed on the way: reported once, not per entry


class Resolver:
    """`$ref` lookup: local (`#/...`) over the whole document, and into fragment files in the pool.

    A node read from a fragment has a location whose first element is `refs.ext(name)`; a `#/...`
    inside a fragment refers to that fragment (JSON Reference), and falls back to the root spec
    when the fragment has no such pointer (hand-split specs often mean the root's components).
    """

    def __init__(self, root: Any, spec: Path | None = None, pool_root: Path | None = None,
                 fragments: dict[str, Fragment] | None = None) -> None:
        self.root = root
        self.spec = spec
        self.pool_root = pool_root
        self.fragments: dict[str, Fragment] = {} if fragments is None else fragments
        self._by_path: dict[Path, Fragment] = {}

    def deref(self, node: Any, at: Path_) -> tuple[Any, Path_]:
        """Follow a chain of `$ref`s: (target, where it is). SpecError at the `$ref` that fails."""
        chain: list[str] = []
        try:
            return self._deref(node, at, chain)
        except SpecError as exc:
            raise SpecError(exc.at, str(exc), tuple(chain) + (pointer(exc.at),)) from None

    def _deref(self, node: Any, at: Path_, chain: list[str]) -> tuple[Any, Path_]:
        refs: list[str] = []
        while isinstance(node, dict) and "$ref" in node:
            ref, ref_at = node["$ref"], at + ("$ref",)
            chain.append(pointer(ref_at))
            if not isinstance(ref, str):
                raise SpecError(ref_at, f"expected a $ref string like '#/components/schemas/Pet', got {describe(ref)}")
            target, fragment = split_ref(ref)
            doc = self._document(target, ref, ref_at)
            key = f"{doc.name if doc else ''}#{fragment}"
            if key in refs:
                raise SpecError(ref_at, f"circular $ref: {' -> '.join([*refs, key])}")
            refs.append(key)
            if fragment and not fragment.startswith("/"):
                raise SpecError(ref_at, f"$ref '{ref}': the part after '#' must be a JSON pointer such as "
                                        "'#/components/schemas/Pet'")
            parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in fragment.split("/")[1:])
            if doc is None:
                node, at = self._lookup(self.root, parts, ref, ref_at), parts
            else:
                try:
                    node, at = self._lookup(doc.data, parts, ref, ref_at), (ext(doc.name), *parts)
                except SpecError:
                    if target or not parts:  # 'x.yml#/a' names its file; only a bare '#/a' may mean the root
                        raise
                    node, at = self._lookup(self.root, parts, ref, ref_at), parts
        return node, at

    def _document(self, target: str, ref: str, ref_at: Path_) -> Fragment | None:
        """The fragment a reference points into; None for the root spec."""
        holder = self.fragments.get(ref_at[0][len(EXT):]) if is_ext(ref_at) else None  # type: ignore[index]
        if not target:
            return holder
        if self.spec is None or self.pool_root is None:
            raise SpecError(ref_at, f"external $ref '{ref}' is not supported here")
        try:
            path = target_path(target, holder.path if holder else self.spec, self.pool_root)
            if os.path.realpath(path) == os.path.realpath(self.spec):
                return None
            doc = self._by_path.get(path)
            if doc is None:
                doc = load_fragment(path, fragment_name(path, self.spec))
                self._by_path[path] = self.fragments[doc.name] = doc
            return doc
        except RefProblem as exc:
            raise SpecError(ref_at, str(exc)) from None

    def _lookup(self, root: Any, parts: Path_, ref: str, ref_at: Path_) -> Any:
        node: Any = root
        done: tuple[str, ...] = ()
        for part in parts:
            key = str(part)
            if isinstance(node, dict) and (key in node or (key.isdigit() and int(key) in node)):
                node = node[key] if key in node else node[int(key)]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                choices = [str(k) for k in node] if isinstance(node, dict) else []
                hint = did_you_mean(key, choices)
                raise SpecError(ref_at, f"broken $ref '{ref}': no '{key}' in {pointer(done) or '#'}{hint}")
            done += (key,)
        return node

    def example(self, schema: Any, at: Path_, *, explicit: bool = False, depth: int = 0,
                seen: tuple[str, ...] = ()) -> Any:
        """An example value for `schema`, or MISSING. `explicit`: only example/examples, no default/enum."""
        if depth > _MAX_DEPTH:
            return MISSING
        if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            # Keyed by the file holding the $ref too: '#/Node' in two fragments are two different schemas.
            key = f"{at[0] if is_ext(at) else ''}{schema['$ref']}"
            if key in seen:
                return MISSING  # a recursive schema (Node.children: [Node]) ends here
            seen = (*seen, key)
        schema, at = self.deref(schema, at)
        if not isinstance(schema, dict):
            return MISSING
        for key in ("example", "x-example", "const"):
            if key in schema:
                return plain(schema[key])
        examples = schema.get("examples")
        if isinstance(examples, list) and examples:
            return plain(examples[0])
        if explicit:
            return MISSING
        if "default" in schema:
            return plain(schema["default"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return plain(schema["enum"][0])
        for key in ("oneOf", "anyOf"):
            for i, sub in enumerate(_list(schema.get(key))):
                value = self.example(sub, at + (key, i), depth=depth + 1, seen=seen)
                if value is not MISSING:
                    return value
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {}
            for i, sub in enumerate(schema["allOf"]):
                value = self.example(sub, at + ("allOf", i), depth=depth + 1, seen=seen)
                if value is MISSING or not isinstance(value, dict):
                    return value if len(schema["allOf"]) == 1 else MISSING
                merged.update(value)
            return merged or MISSING
        if isinstance(schema.get("properties"), dict):
            listed = schema.get("required")
            required = listed if isinstance(listed, list) else []
            out: dict[str, Any] = {}
            for name, sub in schema["properties"].items():
                value = self.example(sub, at + ("properties", str(name)), depth=depth + 1, seen=seen)
                if value is MISSING:
                    if name in required:
                        return MISSING
                    continue
                out[str(name)] = value
            return out or MISSING  # {} would be invented, not an example
        if schema.get("type") == "array" or "items" in schema:
            value = self.example(schema.get("items"), at + ("items",), depth=depth + 1, seen=seen)
            return MISSING if value is MISSING else [value]
        return MISSING


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def plain(value: Any) -> Any:
    """JSON-able: YAML turns unquoted 2024-01-01 into a date, and keys may be numbers."""
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def drafts(ctx: Context) -> list[Draft]:
    data = ctx.source.data
    resolver = Resolver(data, ctx.path, ctx.pool_root, ctx.fragments)
    paths = data.get("paths")
    paths = {} if paths is None else paths
    out: list[Draft] = []
    reported: set[str] = set()  # $ref locations already behind an error
    if not isinstance(paths, dict):
        ctx.error(("paths",), f"expected a mapping of paths to path items, got {describe(paths)}")
        return out
    for raw_path, item in paths.items():
        if str(raw_path).startswith("x-"):
            continue  # a specification extension of the Paths Object, not a path (OpenAPI 3 §4.8.8, Swagger 2)
        item_at: Path_ = ("paths", str(raw_path))
        siblings = {k: v for k, v in item.items() if k != "$ref"} if isinstance(item, dict) and "$ref" in item else {}
        try:
            item, item_at = resolver.deref(item, item_at)
        except SpecError as exc:
            reported.update(exc.chain)
            ctx.error(exc.at, str(exc))
            continue
        if siblings and isinstance(item, dict):  # OpenAPI 3.1 allows fields next to a path item's $ref
            item = {**item, **siblings}
        if not isinstance(item, dict):
            ctx.error(item_at, f"expected a path item (a mapping of methods to operations), got {describe(item)}")
            continue
        for method in OPERATION_METHODS:
            if method not in item:
                continue
            try:
                draft = _operation(ctx, resolver, str(raw_path), item, item_at, method, len(out), reported)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
                # A shape this reader did not foresee costs this operation only, never the file or the run.
                at = item_at + (method,) if not is_ext(item_at) else ("paths", str(raw_path))
                draft = Draft(f"{method.upper()} {raw_path}", "", method.upper(), str(raw_path), (), at,
                              index=len(out), error=(at, f"cannot read this operation: {exc!r}"))
            out.append(draft)
    _scan_refs(ctx, resolver, reported)
    return out


def _operation(ctx: Context, r: Resolver, raw_path: str, item: dict[str, Any], item_at: Path_, method: str,
               index: int, reported: set[str]) -> Draft:
    at = item_at + (method,)
    upper = method.upper()
    path = raw_path if raw_path.startswith("/") else "/" + raw_path
    anchor = at if not is_ext(at) else ("paths", raw_path)  # where the item's line is: always in the spec itself
    try:
        op, at = r.deref(item[method], at)  # `get: {$ref: resources/pet-get.yml}`: an operation in a fragment
    except SpecError as exc:
        reported.update(exc.chain)
        return Draft(f"{upper} {path}", "", upper, path, (f"{upper} {raw_path}",), anchor, index=index,
                     error=(exc.at, str(exc)))
    raw_op = op
    op = op if isinstance(op, dict) else {}
    op_id = op.get("operationId") if isinstance(op.get("operationId"), str) else None
    summary = op.get("summary") if isinstance(op.get("summary"), str) else None
    names = (summary, op_id) if ctx.overrides.naming == "summary" else (op_id, summary)
    tags = tuple(str(t) for t in _list(op.get("tags")) if isinstance(t, (str, int)))
    keys = tuple(k for k in (op_id, f"{upper} {raw_path}", summary) if k)  # what overrides may call it
    draft = Draft(next((n for n in names if n and n.strip()), f"{upper} {path}"), tags[0] if tags else "", upper,
                  path, keys, anchor, tags, index=index)
    notes = [summary] if summary and summary != draft.name else []
    if op.get("deprecated") is True:
        notes.append("deprecated")
    draft.status = _statuses(op.get("responses"))
    draft.response_schema = _response_schema(ctx, r, op, at)
    draft.auth = False if op.get("security") == [] else None  # explicitly public: send no token
    draft.fallback_base_url = _server(ctx, item, op)
    if not isinstance(raw_op, dict):
        draft.error = (at, f"expected an operation (a mapping), got {describe(raw_op)}")
    elif method_of(upper) is None:
        draft.skip, draft.skip_kind = f"{upper} operations are not monitored", "unsupported"
    else:
        try:
            _parameters(ctx, r, draft, item, item_at, op, at)
            if ctx.source.kind == "openapi" and "requestBody" in op:
                _request_body(r, draft, op["requestBody"], at + ("requestBody",))
        except SpecError as exc:
            draft.error = (exc.at, str(exc))
            reported.update(exc.chain)
    draft.description = " — ".join(notes) or None
    return draft


_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]*\+)?json\s*(?:;.*)?$", re.IGNORECASE)
_DRAFT4 = "http://json-schema.org/draft-04/schema#"  # OpenAPI 3.0 and Swagger 2.0 schemas are draft 4 based
_DRAFT2020 = "https://json-schema.org/draft/2020-12/schema"  # OpenAPI 3.1
_MAX_SCHEMA_NODES = 20_000
# Annotations that are not JSON Schema validation keywords in the spec's dialect (examples may even be invalid).
_DROP = frozenset(("example", "examples", "xml", "discriminator", "externalDocs", "nullable", "x-nullable"))


def _response_schema(ctx: Context, r: Resolver, op: dict[str, Any], at: Path_) -> Any:
    """The JSON Schema every declared 2xx JSON response conforms to, $refs inlined, or None.

    Conservative, so a healthy service never fails it: None when a 2xx response declares no schema, a
    non-JSON media type, or a $ref that cannot be resolved. Several 2xx schemas combine as anyOf. OpenAPI 3.0's
    `nullable: true` (Swagger's `x-nullable`) becomes "or null"; a recursive schema accepts anything where it
    recurses. The dialect is draft 4 for Swagger 2.0 / OpenAPI 3.0 and 2020-12 for OpenAPI 3.1.
    """
    responses = op.get("responses")
    if not isinstance(responses, dict):
        return None
    swagger = ctx.source.kind == "swagger"
    found: list[Any] = []
    try:
        for key, raw in responses.items():
            code = str(key).strip().upper()
            if not (re.fullmatch(r"2\d\d", code) or code == "2XX"):
                continue
            resp, resp_at = r.deref(raw, at + ("responses", key))
            if not isinstance(resp, dict):
                return None
            if swagger:
                if "schema" not in resp:
                    return None
                node, node_at = resp["schema"], resp_at + ("schema",)
            else:
                content = resp.get("content")
                if not isinstance(content, dict) or not content or not all(
                        _JSON_MEDIA.match(str(m)) for m in content):
                    return None
                media = [m for m in content.values() if isinstance(m, dict) and "schema" in m]
                if len(media) != len(content):
                    return None
                node, node_at = media[0]["schema"], resp_at + ("content", next(iter(content)), "schema")
            budget = [_MAX_SCHEMA_NODES]
            found.append(_inline(r, node, node_at, (), budget))
    except (SpecError, _TooBig, RecursionError):
        return None
    if not found:
        return None
    version = str(ctx.source.data.get("openapi", "")) if isinstance(ctx.source.data, dict) else ""
    unique = [s for i, s in enumerate(found) if s not in found[:i]]
    schema: dict[str, Any] = dict(unique[0]) if len(unique) == 1 and isinstance(unique[0], dict) else {
        "anyOf": unique}
    schema["$schema"] = _DRAFT2020 if version.startswith("3.1") else _DRAFT4
    return schema


class _TooBig(Exception):
    """A response schema too large to inline (_MAX_SCHEMA_NODES): no default schema check."""


def _inline(r: Resolver, node: Any, at: Path_, seen: tuple[str, ...], budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if isinstance(node, dict) and "$ref" in node:
        target, target_at = r.deref(node, at)
        key = pointer(target_at)
        if key in seen:
            return {}  # recursion: accept anything below this point rather than loop
        return _inline(r, target, target_at, seen + (key,), budget)
    if isinstance(node, list):
        return [_inline(r, item, at + (i,), seen, budget) for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or (isinstance(key, str) and key.startswith("x-")):
            continue
        if key in ("properties", "patternProperties", "definitions", "$defs") and isinstance(value, dict):
            # property *names* are data, not keywords: never drop "example" or "x-id" properties
            out[key] = {k: _inline(r, v, at + (key, k), seen, budget) for k, v in value.items()}
        else:
            out[key] = _inline(r, value, at + (key,), seen, budget)
    if node.get("nullable") is True or node.get("x-nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _statuses(responses: Any) -> tuple[int | str, ...]:
    """Declared 2xx responses (codes and the 3.x '2XX' range); none declared -> any 2xx."""
    out: list[int | str] = []
    for key in responses if isinstance(responses, dict) else ():
        text = str(key).strip().upper()
        if re.fullmatch(r"2\d\d", text):
            out.append(int(text))
        elif text == "2XX":
            out.append("2xx")
    return tuple(out)


def _server(ctx: Context, item: dict[str, Any], op: dict[str, Any]) -> str | None:
    """The spec's own absolute base URL, used only when the service has no base_url."""
    data = ctx.source.data
    if ctx.source.kind == "swagger":
        host = data.get("host")
        if not isinstance(host, str) or not host.strip():
            return None
        schemes = [s for s in _list(data.get("schemes")) if s in ("http", "https")]
        scheme = "https" if "https" in schemes or not schemes else schemes[0]
        base = str(data.get("basePath") or "").rstrip("/")
        return f"{scheme}://{host.strip().rstrip('/')}{'/' + base.lstrip('/') if base else ''}"
    for servers in (op.get("servers"), item.get("servers"), data.get("servers")):
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            url = str(servers[0].get("url") or "")
            declared = servers[0].get("variables")
            variables = declared if isinstance(declared, dict) else {}
            for name, var in variables.items():
                if isinstance(var, dict) and "default" in var:
                    url = url.replace("{" + str(name) + "}", str(var["default"]))
            # A relative server ('/api/v3') is relative to wherever the spec was downloaded from: unusable.
            return url.rstrip("/") if re.match(r"^https?://[^/{}\s]+[^{}\s]*$", url) else None
    return None


def _parameters(ctx: Context, r: Resolver, draft: Draft, item: dict[str, Any], item_at: Path_,
                op: dict[str, Any], at: Path_) -> None:
    swagger = ctx.source.kind == "swagger"
    merged: dict[tuple[str, str], tuple[dict[str, Any], Path_]] = {}
    for owner, owner_at in ((item, item_at), (op, at)):  # operation parameters override path-level ones
        raw = owner.get("parameters") or []
        if not isinstance(raw, list):
            raise SpecError(owner_at + ("parameters",), f"expected a list of parameters, got {describe(raw)}")
        for i, p in enumerate(raw):
            p, p_at = r.deref(p, owner_at + ("parameters", i))
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not isinstance(p.get("in"), str):
                raise SpecError(p_at, "expected a parameter with 'name' and 'in'")
            merged[(p["name"], p["in"])] = (p, p_at)
    form: dict[str, Any] = {}
    for (name, loc), (p, p_at) in merged.items():
        required = p.get("required") is True or loc == "path"
        if loc == "body":  # Swagger 2: the request body is a parameter
            value = _first_example(r, p, p_at, ("x-example", "example"))
            if value is MISSING:
                value = r.example(p.get("schema"), p_at + ("schema",))
            draft.body_kind, draft.body, draft.body_required = "json", value, required
            continue
        if loc == "header" and name.lower() in _IGNORED_HEADERS:
            continue
        explicit = not required  # an optional parameter is sent only with a real example, not its default
        value = _first_example(r, p, p_at, ("example", "x-example", "examples"))
        if value is MISSING:
            if swagger:
                value = r.example(p, p_at, explicit=explicit)
            elif "schema" in p:
                value = r.example(p["schema"], p_at + ("schema",), explicit=explicit)
            elif isinstance(p.get("content"), dict) and p["content"]:
                mt = next(iter(p["content"]))
                value = _media_example(r, p["content"][mt], p_at + ("content", str(mt)), explicit)
        if loc == "formData":
            if p.get("type") == "file":
                value = MISSING  # uploads are never invented
            if value is not MISSING:
                form[name] = value
            elif required:
                draft.body_required = True
                draft.body_kind = "form"
            continue
        explode = p.get("collectionFormat") == "multi" if swagger else p.get("explode", True) is not False
        if (name, loc) in _api_key_parameters(r.root) and isinstance(value, str):
            ctx.secrets.append(value)  # an apiKey security scheme's example sent as a parameter: masked by value
        draft.params.append(Param(name, loc, required, value, explode))
    if form and not (draft.body_required and draft.body_kind == "form"):
        draft.body_kind, draft.body = "form", form


def _first_example(r: Resolver, p: dict[str, Any], at: Path_, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key not in p:
            continue
        if key == "examples" and isinstance(p[key], dict):
            for name, ex in p[key].items():  # OpenAPI 3: {name: {value: ...}} or a $ref to components/examples
                ex, _ = r.deref(ex, at + (key, str(name)))
                if isinstance(ex, dict) and "value" in ex:
                    return plain(ex["value"])
            continue
        if key == "examples" and isinstance(p[key], list) and p[key]:
            return plain(p[key][0])
        if key != "examples":
            return plain(p[key])
    return MISSING


def _media_example(r: Resolver, media: Any, at: Path_, explicit: bool = False) -> Any:
    media, at = r.deref(media, at)
    if not isinstance(media, dict):
        return MISSING
    value = _first_example(r, media, at, ("example", "examples"))
    if value is MISSING and "schema" in media:
        value = r.example(media["schema"], at + ("schema",), explicit=explicit)
    return value


def _request_body(r: Resolver, draft: Draft, raw: Any, at: Path_) -> None:
    body, at = r.deref(raw, at)
    if not isinstance(body, dict):
        raise SpecError(at, f"expected a request body object, got {describe(body)}")
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    draft.body_required = body.get("required") is True
    if not content:
        return
    types = [str(t) for t in content]
    mt = (next((t for t in types if "json" in t.lower()), None)
          or next((t for t in types if t.lower() in ("application/x-www-form-urlencoded", "multipart/form-data")), None)
          or types[0])
    lowered = mt.lower()
    draft.body = _media_example(r, content[mt], at + ("content", mt))
    if "json" in lowered:
        draft.body_kind = "json"
    elif lowered in ("application/x-www-form-urlencoded", "multipart/form-data") and isinstance(draft.body, dict):
        draft.body_kind = "form"
    elif isinstance(draft.body, str) or draft.body is MISSING:
        draft.body_kind = "body"
        draft.headers["Content-Type"] = mt
    else:  # e.g. application/xml with an object example: not something we can serialise faithfully
        draft.body = MISSING


def _checkable(ref: str) -> bool:
    """Refs the file-level scan follows: local ones and other spec files (not remote, not e.g. a Markdown
    description that some tools allow to be a $ref)."""
    target, _ = split_ref(ref)
    return not target or (not REMOTE.match(target) and Path(target).suffix.lower() in (".yaml", ".yml", ".json"))


def _scan_refs(ctx: Context, r: Resolver, reported: set[str]) -> None:
    """Broken local $refs no operation ran into (e.g. in a response schema): one file-level error each."""
    errors: list[SpecError] = []
    stack: list[tuple[Path_, Any]] = [((), ctx.source.data)]
    while stack:
        at, node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and _checkable(ref) and pointer(at + ("$ref",)) not in reported:
                try:
                    r.deref(node, at)
                except SpecError as exc:
                    if not reported.intersection(exc.chain):
                        reported.update(exc.chain)
                        errors.append(exc)
            stack.extend((at + (str(k),), v) for k, v in node.items() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((at + (i,), v) for i, v in enumerate(node) if isinstance(v, (dict, list)))
    errors.sort(key=lambda e: ctx.source.line(e.at) or 0)
    for err in errors[:_MAX_REF_ERRORS]:
        ctx.error(err.at, str(err))
    if len(errors) > _MAX_REF_ERRORS:
        ctx.error((), f"and {len(errors) - _MAX_REF_ERRORS} more broken $refs")


def _api_key_parameters(root: Any) -> set[tuple[str, str]]:
    """(name, in) of every apiKey security scheme (OpenAPI 3 components.securitySchemes, Swagger 2
    securityDefinitions): a parameter of that name carries a credential whatever it is called ("q")."""
    out: set[tuple[str, str]] = set()
    if not isinstance(root, dict):
        return out
    components = root.get("components")
    for schemes in (components.get("securitySchemes") if isinstance(components, dict) else None,
                    root.get("securityDefinitions")):
        for scheme in (schemes or {}).values() if isinstance(schemes, dict) else ():
            if isinstance(scheme, dict) and scheme.get("type") == "apiKey" and isinstance(scheme.get("name"), str):
                out.add((scheme["name"], str(scheme.get("in", ""))))
    return out
