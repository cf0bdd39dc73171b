"""Response schema conformance (`expect.schema`): load a JSON Schema, validate a JSON body, describe violations.

Validation is the `jsonschema` library's: the dialect is the schema's `$schema` (draft 4 to 2020-12), else
Draft 2020-12. Formats are not asserted (jsonschema's default), so `format: email` never fails a body.

`$ref`s are resolved with the `referencing` library (jsonschema's own) when the document loads, never while
checking: a relative reference (`other.schema.json`, `common.yaml#/$defs/id`) is a file next to the schema that
refers to it (an inline schema: next to the document), read from inside the pool folder only; a reference to
any other URI (`http://…`, `urn:…`) is a document error, because the monitor never fetches a schema over the
network: such a request would go out without the service's origins, credentials and timeouts. Every reference
of the schema and of the files it reaches must resolve, or the interface is invalid_document before any request.
The files read are kept with the interface (SchemaContext), so checking needs no file and no network.

`pattern`, `patternProperties` and `additionalProperties` match with patterns.py (the `regex` module within
`limits.regex_timeout_ms`), not Python's `re`: a schema's pattern cannot hang a run either.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from . import patterns
from .errors import ApimonError
from .loader import DEFAULT_LIMITS, Limits
from .redact import Redactor, excerpt

__all__ = ["SHOWN", "Place", "SchemaContext", "SchemaProblem", "load_schema", "make_validator", "place", "prepare",
           "validator", "violations"]  # fmt: skip

SHOWN = 3  # violations named in the reason; the rest are counted
_SCAN = 50  # violations collected at most (a 10 000-item array of wrong items costs no more than this)
_MESSAGE_MAX = 80
_INSTANCE_MAX = 60  # the offending value shown after the validator's reason
_MAX_FILES = 100  # schema files one schema may reach through $refs



@dataclass(frozen=True)
class Place:
    """The document being loaded, its pool folder and the loader's limits: `expect.schema: schemas/user.json` is
    relative to the document, must stay inside the pool and is read within the limits."""

    document: Path
    pool: Path
    limits: Limits = DEFAULT_LIMITS


# Set by documents.load_native_or_spec; a ContextVar, so threads loading documents in parallel do not mix.
place: ContextVar[Place | None] = ContextVar("apimon_schema_place", default=None)

_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
_DATA_KEYS = ("enum", "const", "examples", "example", "default")  # hold instances, not schemas
_NAMED_SCHEMAS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")  # name -> schema


class SchemaProblem(ApimonError, ValueError):
    """The schema itself is unusable (unreadable file, not JSON/YAML, not a valid JSON Schema, a $ref that cannot
    be resolved). `at`: the field path inside an inline schema where the problem is, when known."""

    def __init__(self, message: str, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.at = at


@dataclass(frozen=True, eq=False)
class SchemaContext:
    """How an interface's schema is applied, fixed when its document loads (plain data: it pickles).

    `base_uri`: the `file:` URI relative references start from (the schema file, or the document for an inline
    schema); `resources`: (file URI, contents) of every file its `$ref`s reach; `regex_budget_ms`: patterns.py."""

    base_uri: str = ""
    resources: tuple[tuple[str, Any], ...] = field(default=(), repr=False)
    regex_budget_ms: float = patterns.DEFAULT_BUDGET_MS


def make_validator(schema: Mapping[str, Any] | bool, context: SchemaContext | None = None) -> Any:
    """A jsonschema validator for `schema` applied in `context` (None: no files, the default regex budget).
    Raises SchemaProblem when the schema is not valid for its dialect.

    References resolve only to the context's resources (a registry whose retrieval refuses everything else), so
    validation never reads a file or the network. The schema is validated through `{"$ref": base_uri}` so that
    relative references start from its file; `$schema` inside referenced files is dropped from the working
    copies: jsonschema would switch to its stock class for it, whose `pattern` uses Python's `re`."""
    from referencing import Registry
    from referencing.jsonschema import specification_with

    registry_class: Any = Registry  # an attrs class: mypy does not see its keyword arguments
    cls = _dialect(schema)
    context = context or SchemaContext()
    timed = _timed(cls, context.regex_budget_ms)
    spec = specification_with(cls.META_SCHEMA.get("$id", ""), default=_default_spec())
    base = context.base_uri or _INLINE_URI
    resources = [(base, spec.create_resource(_working_copy(schema, root=True)))]
    resources += [(uri, spec.create_resource(_working_copy(contents, root=False)))
                  for uri, contents in context.resources]
    registry: Any = registry_class(retrieve=_refuse).with_resources(resources).crawl()
    wrapper: dict[str, Any] = {"$ref": base}
    if isinstance(schema, Mapping) and isinstance(schema.get("$schema"), str):
        wrapper["$schema"] = schema["$schema"]
    return timed(wrapper, registry=registry)


def _dialect(schema: Any) -> Any:
    """The jsonschema validator class of `schema`'s dialect. Raises SchemaProblem when it is not valid for it."""
    # jsonschema is imported on first use: most pools have no `expect.schema`, and it (with referencing and rpds)
    # is the largest import of a run's start-up (docs/benchmarks.md, issue #15).
    from jsonschema import exceptions as js_exceptions
    from jsonschema import validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)  # the stubs say dict; a boolean schema is valid too
    except js_exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise SchemaProblem(f"not a valid JSON Schema at {where}: {_cut(exc.message)}") from None
    return cls


_INLINE_URI = "urn:apimon:inline-schema"  # the base of a schema built in code (no file)


def _default_spec() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


def _refuse(uri: str) -> Any:
    raise SchemaProblem(f"$ref {uri!r} was not read when the document loaded")


def _working_copy(node: Any, *, root: bool) -> Any:
    """`node` without `$schema` below its top (or at all, `root=False`); data keywords are left as they are."""
    if isinstance(node, dict):
        return {k: (v if k in _DATA_KEYS else _named_copy(v) if k in _NAMED_SCHEMAS else _working_copy(v, root=False))
                for k, v in node.items() if not (k == "$schema" and isinstance(v, str) and not root)}
    if isinstance(node, list):
        return [_working_copy(v, root=False) for v in node]
    return node


def _named_copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _working_copy(v, root=False) for k, v in node.items()}
    return _working_copy(node, root=False)


_timed_classes: dict[tuple[Any, float], Any] = {}


def _timed(cls: Any, budget: float) -> Any:
    """`cls` with pattern, patternProperties and additionalProperties matching through patterns.py."""
    from jsonschema import exceptions as js_exceptions
    from jsonschema import validators

    key = (cls, budget)
    with _lock:
        hit = _timed_classes.get(key)
    if hit is not None:
        return hit

    @functools.lru_cache(maxsize=256)
    def compiled(pattern: str) -> patterns.Pattern:  # once per pattern, not per value checked
        return patterns.compile_pattern(pattern, budget)

    def search(pattern: str, text: str) -> bool:
        return compiled(pattern).search(text)

    def pattern(checker: Any, patrn: str, instance: Any, _schema: Any) -> Iterator[Any]:
        if checker.is_type(instance, "string") and not search(patrn, instance):
            yield js_exceptions.ValidationError(f"{instance!r} does not match {patrn!r}")

    def pattern_properties(checker: Any, value: Mapping[str, Any], instance: Any, _schema: Any) -> Iterator[Any]:
        if not checker.is_type(instance, "object"):
            return
        for patrn, subschema in value.items():
            for k, v in instance.items():
                if search(patrn, k):
                    yield from checker.descend(v, subschema, path=k, schema_path=patrn)

    stock_additional = cls.VALIDATORS.get("additionalProperties")

    def additional_properties(checker: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        # jsonschema's own joins patternProperties into one `re` pattern: the same rule, matched here
        if not (checker.is_type(instance, "object") and "patternProperties" in schema):
            yield from stock_additional(checker, value, instance, schema)
            return
        extras = [k for k in instance if k not in schema.get("properties", {})
                  and not any(search(p, k) for p in schema["patternProperties"])]
        if checker.is_type(value, "object"):
            for extra in extras:
                yield from checker.descend(instance[extra], value, path=extra)
        elif not value and extras:
            names = ", ".join(repr(each) for each in sorted(extras))
            regexes = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            verb = "does" if len(extras) == 1 else "do"
            yield js_exceptions.ValidationError(f"{names} {verb} not match any of the regexes: {regexes}")

    timed = validators.extend(cls, {"pattern": pattern, "patternProperties": pattern_properties,
                                    "additionalProperties": additional_properties})
    with _lock:
        _timed_classes[key] = timed
    return timed


_validators: dict[int, tuple[Any, Any, Any]] = {}  # id(schema) -> (schema, context, validator); holds the ids unique
_lock = threading.Lock()


def validator(schema: Any, context: SchemaContext | None = None) -> Any:
    """The validator of a schema that passed `prepare` at load time, built once per schema object and context.

    Documents are cached pickled between runs (parsecache.py) and jsonschema validators do not pickle, so
    Expect holds the schema and its context and the validator lives here."""
    with _lock:
        hit = _validators.get(id(schema))
        if hit is not None and hit[0] is schema and hit[1] is context:
            return hit[2]
    built = make_validator(schema, context)
    with _lock:
        _validators[id(schema)] = (schema, context, built)
    return built


def _inside(path: Path, pool: Path) -> bool:
    """Lexically inside `pool` (symlinks kept: a linked service folder `pool/shop -> ../shared/shop` is in it)."""
    target, root = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(pool))
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _read(path: Path, shown: str, where: Place | None) -> Any:
    from .loader import ParseError, parse, read_limited  # loader limits apply to schema files too

    if where is not None and not _inside(path, where.pool):
        raise SchemaProblem(f"schema file {shown!r} is outside the pool ({where.pool}): keep schema files inside "
                            "the pool folder")
    limits = where.limits if where is not None else DEFAULT_LIMITS
    try:
        text = read_limited(path, limits).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaProblem(f"cannot read schema file {shown!r}: {getattr(exc, 'strerror', None) or exc}") from None
    except ParseError as exc:
        raise SchemaProblem(f"schema file {shown!r}: {exc.message}") from None
    try:
        data = parse(text, ".json" if path.suffix.lower() == ".json" else ".yaml", limits).data
    except ParseError as exc:
        raise SchemaProblem(f"schema file {shown!r} line {exc.line}: {exc.message}") from None
    if not isinstance(data, dict | bool):
        raise SchemaProblem(f"schema file {shown!r} does not hold a JSON Schema (a mapping)")
    return data


def load_schema(ref: str, where: Place | None = None) -> tuple[Any, Path | None]:
    """Read the schema file `ref` names relative to the document (JSON or YAML), inside the pool.
    Returns (contents, its path). Raises SchemaProblem (also for a URL: schemas are never fetched)."""
    if "://" in ref:
        raise SchemaProblem(f"schema {ref!r} is a URL: a schema is never fetched over the network (that request "
                            "would bypass the service's origins, credentials and timeouts); save it in the pool and "
                            "give its path relative to this document")
    base = where.document.parent if where is not None else Path.cwd()
    path = Path(ref) if Path(ref).is_absolute() else base / ref
    return _read(path, ref, where), path


def prepare(schema: Any, schema_file: Path | None = None, where: Place | None = None) -> SchemaContext:
    """Check `schema` and resolve every `$ref` it reaches, now: the SchemaContext to check responses with.

    `schema_file`: the file it came from (None: inline in the document `where` names). Raises SchemaProblem naming
    the reference, where it is and why it cannot be resolved (a URL, outside the pool, missing file or pointer)."""
    from referencing import Registry
    from referencing.jsonschema import specification_with

    registry_class: Any = Registry  # an attrs class: mypy does not see its keyword arguments
    cls = _dialect(schema)
    spec = specification_with(cls.META_SCHEMA.get("$id", ""), default=_default_spec())
    origin = schema_file or (where.document if where is not None else None)
    base = Path(os.path.abspath(origin)).as_uri() if origin is not None else _INLINE_URI
    fetched: dict[str, Any] = {}

    def retrieve(uri: str) -> Any:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise SchemaProblem(f"it names {uri}, and a schema is never fetched over the network (that request "
                                "would bypass the service's origins, credentials and timeouts): save it in the pool "
                                "and refer to it by a path relative to the schema")
        if len(fetched) >= _MAX_FILES:
            raise SchemaProblem(f"more than {_MAX_FILES} schema files reached through $refs")
        path = Path(url2pathname(unquote(parts.path)))
        contents = _read(path, _shown(path, where), where)
        fetched[uri] = contents
        return spec.create_resource(contents)

    registry: Any = registry_class(retrieve=retrieve).with_resource(base, spec.create_resource(schema))
    from jsonschema_specifications import REGISTRY  # type: ignore[import-untyped]  # jsonschema's own

    registry = REGISTRY.combine(registry)  # the dialects' meta-schemas ship with jsonschema: no fetch
    _resolve_all(schema, registry.resolver(base), spec, base, where)
    budget = patterns.budget_ms.get()
    context = SchemaContext(base, tuple(fetched.items()), budget)
    make_validator(schema, context)  # builds with exactly what was read
    return context


def _resolve_all(schema: Any, resolver: Any, spec: Any, base: str, where: Place | None) -> None:
    """Look up every reference reachable from `schema` (through the files they reach, each walked once).
    Raises SchemaProblem for the first that does not resolve."""
    from referencing import exceptions as ref_exc

    walked: set[int] = set()
    stack: list[tuple[Any, Any, tuple[str | int, ...], str]] = [(schema, resolver, (), base)]
    while stack:
        node, resolver, at, uri = stack.pop()
        if isinstance(node, list):
            stack += [(v, resolver, at + (i,), uri) for i, v in enumerate(node)]
            continue
        if not isinstance(node, dict) or id(node) in walked:
            continue
        walked.add(id(node))
        resolver = resolver.in_subresource(spec.create_resource(node))
        for key, value in node.items():
            if key in _REF_KEYS and isinstance(value, str):
                try:
                    resolved = resolver.lookup(value)
                except ref_exc.Unresolvable as exc:
                    raise _unresolvable(value, exc, at + (key,), uri, base, where) from None
                stack.append((resolved.contents, resolved.resolver, (), _uri_of(resolved.resolver, value)))
            elif key in _NAMED_SCHEMAS and isinstance(value, dict):
                stack += [(v, resolver, at + (key, name), uri) for name, v in value.items()]
            elif key not in _DATA_KEYS:
                stack.append((value, resolver, at + (key,), uri))


def _uri_of(resolver: Any, ref: str) -> str:
    base = getattr(resolver, "_base_uri", "")  # for messages only
    return str(base) if base else ref


def _shown(path: Path, where: Place | None) -> str:
    if where is not None and _inside(path, where.pool):
        try:
            return os.path.relpath(path, where.document.parent).replace(os.sep, "/")
        except ValueError:
            pass
    return str(path)


def _unresolvable(ref: str, exc: Exception, at: tuple[str | int, ...], uri: str, base: str,
                  where: Place | None) -> SchemaProblem:
    from referencing import exceptions as ref_exc

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, SchemaProblem):
        cause = cause.__cause__
    if isinstance(cause, SchemaProblem):
        why = str(cause).replace(f"it names {ref}, and a schema", "a schema")  # an absolute ref needs no echo
    elif isinstance(exc, ref_exc.PointerToNowhere):
        why = f"{exc.ref!r} does not exist in that schema"
    elif isinstance(exc, ref_exc.NoSuchAnchor):
        why = f"no anchor {exc.anchor!r} in that schema"
    else:
        why = "it cannot be resolved"
    if uri == base:  # in the schema the field path names
        return SchemaProblem(f"$ref {ref!r}: {why}", at)
    file = _shown(Path(url2pathname(unquote(urlsplit(uri).path))), where) if uri.startswith("file:") else uri
    pointer = "".join(f"/{a}" for a in at)
    return SchemaProblem(f"$ref {ref!r} in {file} at {pointer or '/'}: {why}")


def violations(validator: Any, data: Any, redactor: Redactor | None = None) -> tuple[list[str], int]:
    """(up to SHOWN lines "$.data.id: 'x' is not of type 'integer'", how many violations in all (at most _SCAN)).
    A message quotes the offending value: with a redactor it is masked before it is shortened.

    The validator's reason comes first: a message that begins with a long offending value ("[{…}, …] is too long")
    is turned round ("is too long (maxItems 2), got […]") so that cutting it cuts the value, not the reason.
    Raises patterns.RegexTimeout."""
    errors = list(itertools.islice(validator.iter_errors(data), _SCAN))
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{e.json_path}: {_reason(e, redactor)}" for e in errors[:SHOWN]], len(errors)


def _reason(error: Any, redactor: Redactor | None = None) -> str:
    message = " ".join(str(error.message).split())
    if len(message) <= _MESSAGE_MAX:
        return message
    shown = " ".join(repr(error.instance).split())
    if not message.startswith(shown):
        return _cut(message, redactor)
    reason = message[len(shown):].strip()
    value = error.validator_value
    if isinstance(value, (int, float, str)) and not isinstance(value, bool) and repr(value) not in reason:
        reason += f" ({error.validator} {value})"
    return f"{_cut(reason, redactor)}, got {_value(error.instance, redactor)}"  # not "; ": separates violations


def _value(instance: Any, redactor: Redactor | None = None) -> str:
    import json

    try:
        text = json.dumps(instance, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(instance)
    return excerpt(text, _INSTANCE_MAX, redactor)


def _cut(text: str, redactor: Redactor | None = None) -> str:
    return excerpt(" ".join(text.split()), _MESSAGE_MAX, redactor)
