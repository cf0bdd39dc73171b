"""Interface documents: the native JSON/YAML format, parsed and validated into models.

A file is one interface (a mapping with ``name``), a list of interfaces, or a mapping with
``interfaces`` plus file-level ``service``/``module``/``defaults``. Loading never raises for bad
content: every problem becomes a DocumentError naming file, line and field path, so one broken
interface costs one error item while its neighbours still run. Field validators live in
``_document_fields``; the key sets below are the contract the JSON Schema is tested against.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ._document_fields import (
    BODY_CHECK_KEYS,
    BODY_CHECK_OPS,
    BODY_KEYS,
    CHECK_TYPES,
    COMPARISON_OPS,
    EXPECT_KEYS,
    HEADER_CHECK_OPS,
    HTTP_METHODS,
    INTERFACE_KEYS,
    RESERVED_TAGS,
    TAG_PATTERN,
    TEXT_CHECK_OPS,
    Problems,
    as_written,
    describe,
    parse_fields,
    substitute,
    unknown_key,
)
from .loader import (
    DEFAULT_LIMITS,
    Limits,
    Parsed,
    ParseError,
    Path_,
    format_path,
    parse,
    read_limited,
    substituted_values,
)
from .poolfiles import unreadable_reason
from .redact import looks_like_key

__all__ = [  # re-exported: the key sets are the contract the JSON Schema is tested against
    "BODY_CHECK_KEYS", "BODY_CHECK_OPS", "CHECK_TYPES", "COMPARISON_OPS", "DEFAULTS_KEYS", "EXPECT_KEYS", "FILE_KEYS",
    "HEADER_CHECK_OPS", "HTTP_METHODS", "INTERFACE_KEYS", "RESERVED_TAGS", "SINGLE_FILE_KEYS", "TAG_PATTERN",
    "TEXT_CHECK_OPS", "BodyCheck", "DocumentError", "DocumentFile", "Expect", "HeaderCheck", "Interface",
    "NameRegistry", "SpecImporter", "is_document", "load_native_or_spec", "schema_path", "service_and_module",
]  # fmt: skip

DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")
SCHEMA_SUFFIXES = (".schema.json", ".schema.yaml", ".schema.yml")  # JSON Schema files, never documents

class _Missing:
    """Marks "no json body" (None is a valid JSON body: null). A singleton that survives pickling
    (the parse cache), so `json is _MISSING` stays true after a round trip."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self) -> tuple[type[_Missing], tuple[()]]:
        return (_Missing, ())

    def __repr__(self) -> str:
        return "<no json body>"


_MISSING: Any = _Missing()

DEFAULTS_KEYS = tuple(k for k in INTERFACE_KEYS if k != "name")
FILE_KEYS = ("$schema", "service", "module", "defaults", "interfaces")  # form 3: {interfaces: [...]}
SINGLE_FILE_KEYS = ("$schema", "service", "module")  # allowed next to the interface keys in form 1

SCHEMA_PATH = Path(__file__).parent / "schema" / "interface-document.schema.json"
EMPTY_MESSAGE = "empty document: expected an interface (a mapping with 'name') or a list of interfaces"
_MAX_MESSAGES = 5  # per error; more problems are summarised as a count


def schema_path() -> Path:
    """The JSON Schema of the format, as a real file path (editors need a path or URL)."""
    return Path(str(resources.files("pytest_apimon") / "schema" / "interface-document.schema.json"))


@dataclass(frozen=True)
class BodyCheck:
    """One check on the response body (docs/document-format.md, "Body checks").

    `path` is a body path such as ``data.items[0].id`` ("" or "$" = the whole JSON body), or None for
    `contains`/`regex` on the raw response text (any Content-Type). `op` is one of BODY_CHECK_OPS; `value`:
    equals/not_equals/contains: a JSON value; exists: bool; type: a JSON type name; in: a tuple of JSON values;
    regex: a patterns.Pattern (re.search semantics within a time budget; a plain string is compiled on first use);
    gt/ge/lt/le: a number; length: (comparison, count), e.g. ("ge", 1).
    """

    path: str | None
    op: str
    value: Any


@dataclass(frozen=True)
class HeaderCheck:
    """One response-header check. `name` is matched case-insensitively (RFC 9110 §5.1). `op` is one of
    HEADER_CHECK_OPS: exists (value: bool), equals / contains (value: str), regex (value: a patterns.Pattern)."""

    name: str
    op: str
    value: Any


@dataclass(frozen=True)
class Expect:
    # Allowed statuses: ints and "2xx"-style class patterns. Empty means any 2xx.
    status: tuple[int | str, ...] = ()
    body: tuple[BodyCheck, ...] = ()
    max_ms: float | None = None
    # Response header checks; names case-insensitive.
    headers: tuple[HeaderCheck, ...] = ()
    # Degraded threshold (ms): slower than this but within max_ms passes with the `slow` flag.
    warn_ms: float | None = None
    # TLS certificate expiry (days): fewer days left than this fails the interface (certs.py); None: the
    # service's (else the global) cert_fail_days.
    cert_days: float | None = None
    # JSON Schema the JSON body must conform to (a mapping), False to switch an imported one off, None: none.
    # Checked when documents load; its validator is built once per run (response_schema.validator).
    schema: Any = field(default=None, repr=False, compare=False)
    # How `schema` is applied: the files its $refs reach, read at load time, and the regex budget
    # (response_schema.SchemaContext); None: no files, the default budget.
    schema_context: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The earlier shape (name, exact value or True/False) is still accepted: callers and tests build it.
        if any(not isinstance(h, HeaderCheck) for h in self.headers):
            fixed = tuple(
                h if isinstance(h, HeaderCheck)
                else HeaderCheck(h[0], "exists", h[1]) if isinstance(h[1], bool) else HeaderCheck(h[0], "equals", h[1])
                for h in self.headers
            )  # fmt: skip
            object.__setattr__(self, "headers", fixed)

    @property
    def follow_redirects(self) -> bool:
        """False when a 3xx is expected (302, or '3xx'): the redirect itself is checked, not where it leads."""
        return not any(
            (isinstance(s, int) and 300 <= s <= 399) or (isinstance(s, str) and s.lower() == "3xx")
            for s in self.status
        )


@dataclass(frozen=True)
class Interface:
    name: str
    service: str
    module: str
    method: str
    path: str | None = None  # joined to the service base URL
    url: str | None = None  # full URL, used as-is
    # Where a document puts credentials: kept out of repr (tracebacks print function arguments).
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    json: Any = field(default=_MISSING, repr=False)  # JSON body (use has_json)
    form: dict[str, Any] | None = field(default=None, repr=False)
    body: str | None = field(default=None, repr=False)  # raw body
    # None: use the service's auth if it has one; False: none; str: that service's auth.
    auth: bool | str | None = None
    expect: Expect = field(default_factory=Expect)
    timeout: float | None = None  # seconds, overrides service/global
    tags: tuple[str, ...] = ()
    skip: str | None = None  # reason
    description: str | None = None
    owner: tuple[str, ...] = ()  # userids / mobiles; empty: the service's owners (config.yaml)
    severity: str | None = None  # P0 | P1 | P2; None: the service's, else notify.severity.default
    file: str = ""  # path as given to the loader (relative to rootdir when possible)
    line: int | None = None  # 1-based line where this interface starts
    index: int = 0  # position in the file
    # Imported specs (OpenAPI servers, Postman {{baseUrl}}): used only when the service has no base_url.
    fallback_base_url: str | None = None
    # Imported Postman requests (protocolProfileBehavior): followRedirects: false, and strictSSL, which wins over
    # the service's verify_tls as in newman. Native documents keep the defaults (follow; the service decides).
    follow_redirects: bool = True
    verify_tls: bool | None = None
    # Why `skip` is set, for the coverage report: "document" (the author said so; None counts as that),
    # "no_example", "write" (data-changing, not enabled), "unresolved", "excluded", "unsupported".
    skip_kind: str | None = None

    @property
    def has_json(self) -> bool:
        return self.json is not _MISSING

    @property
    def key(self) -> str:
        """Unique key within a run: service/name."""
        return f"{self.service}/{self.name}"


@dataclass(frozen=True)
class DocumentError:
    """An actionable problem in a document: file, line, field path, what was expected."""

    file: str
    line: int | None
    field: str  # e.g. "interfaces[2].expect.status[0]"; "" for whole-file problems
    message: str  # what is wrong and what was expected; may include "did you mean 'x'?"
    name: str | None = None  # the interface's name when known (used as the item name)
    index: int | None = None  # the interface's position when the error belongs to one

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class DocumentFile:
    """What one file yields: its valid interfaces and its errors (both may be non-empty)."""

    file: str
    interfaces: list[Interface] = field(default_factory=list)
    errors: list[DocumentError] = field(default_factory=list)
    # What the file uses that pytest-apimon does not do (e.g. Postman scripts), once per file, with counts.
    notes: list[str] = field(default_factory=list)
    # Values to mask in every output (a Postman environment's "secret" values), never shown in a repr.
    secrets: list[str] = field(default_factory=list, repr=False)


def is_document(path: Path) -> bool:
    """True for .yaml/.yml/.json files that are not hidden (README.md, .DS_Store, images are not)."""
    # A missing path counts (callers may ask before creating); only directories are excluded.
    # A JSON Schema kept beside the documents (editor set-up, expect.schema files) is not a document: *.schema.json,
    # *.schema.yaml, *.schema.yml (other schema files are recognised when a document names them: importers/refs.py).
    name = path.name.lower()
    return (
        not name.startswith(".") and path.suffix.lower() in DOCUMENT_SUFFIXES
        and not name.endswith((".apimon.yaml", ".apimon.yml"))  # overrides sidecar of an imported spec
        and not name.endswith(SCHEMA_SUFFIXES) and not path.is_dir()
    )


def service_and_module(path: Path, pool_root: Path) -> tuple[str, str]:
    """Default service (first folder under the pool) and module (sub-folder, else file stem)."""
    try:
        parts = path.relative_to(pool_root).parts
    except ValueError:
        try:
            parts = path.resolve().relative_to(pool_root.resolve()).parts
        except ValueError:  # outside the pool: behave like a file in the pool root
            parts = (path.name,)
    if len(parts) <= 1:
        return path.stem, path.stem
    return parts[0], parts[1] if len(parts) > 2 else path.stem


@dataclass
class _Context:
    """Per-file state shared by the interface validators."""

    display: str
    parsed: Parsed
    environ: Mapping[str, str]
    service: str = ""
    module: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)  # validated, normalised
    names: dict[str, int | None] = field(default_factory=dict)  # name -> line, for in-file duplicates

    def error(self, problems: Problems, name: str | None = None, index: int | None = None) -> DocumentError:
        # Document order reads best; the first problem names the field and line.
        ordered = sorted(problems, key=lambda pr: self.parsed.line(pr[0]) or 0)
        first = ordered[0][0]
        messages = [ordered[0][1]] + [f"{format_path(p) or '(top level)'}: {m}" for p, m in ordered[1:_MAX_MESSAGES]]
        if len(ordered) > _MAX_MESSAGES:
            messages.append(f"and {len(ordered) - _MAX_MESSAGES} more problem(s)")
        return DocumentError(
            self.display, self.parsed.line(first), format_path(first), "; ".join(messages), name, index
        )


# (text, path, pool_root, display, environ, limits) -> the imported spec's DocumentFile, or None for a native
# document; raises loader.ParseError when a limit is hit. load.py passes the importers' one: this module holds
# the models they build on, so it must not import them (no cycle).
SpecImporter = Callable[[str, Path, Path, str, Mapping[str, str], Limits], "DocumentFile | None"]


def load_native_or_spec(
    path: Path,
    pool_root: Path,
    display: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    spec_importer: SpecImporter | None = None,
) -> DocumentFile:
    """Parse and validate one document file (use load.load_document). Never raises for bad content.

    `environ` feeds ``${VAR}`` substitution (default: os.environ); `limits` bounds size, nesting,
    YAML alias expansion and interfaces per file (loader.Limits); `spec_importer` recognises and converts
    OpenAPI / Swagger / Postman files (None: native documents only).
    """
    display = str(path) if display is None else display
    result = DocumentFile(display)

    def fail(message: str, line: int | None = None, field_: str = "") -> DocumentFile:
        result.errors.append(DocumentError(display, line, field_, message))
        return result

    try:
        raw = read_limited(path, limits)  # a huge file, a pipe or a device is never read in full
    except OSError as exc:
        return fail(unreadable_reason(path, exc))
    except ParseError as exc:
        return fail(exc.message)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return fail(
            f"file is not valid UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8",
            line,
        )
    text = text.removeprefix("\ufeff")  # a BOM is common from Windows editors and harmless
    if not text.strip():
        return fail(EMPTY_MESSAGE)
    env = os.environ if environ is None else environ
    # Any ${VAR} that reads like a key is masked by value wherever it ends up (docs/auth.md).
    keys = [v for v in substituted_values(text, env) if looks_like_key(v)]
    if spec_importer is not None:
        try:
            with _loading(path, pool_root, limits):  # a sidecar's expect.schema file is relative to the spec's folder
                imported = spec_importer(text, path, pool_root, display, env, limits)
        except ParseError as exc:
            return fail(exc.message, exc.line)
        if imported is not None:
            imported.secrets += keys
            return imported
    result.secrets += keys
    try:
        parsed = parse(text, path.suffix, limits)
    except ParseError as exc:
        return fail(exc.message, exc.line)
    data = parsed.data
    if data is None:
        return fail(EMPTY_MESSAGE)

    service, module = service_and_module(path, pool_root)
    with _loading(path, pool_root, limits):
        return _load_native(display, data, parsed, result, environ, service, module, limits)


@contextlib.contextmanager
def _loading(path: Path, pool_root: Path, limits: Limits) -> Iterator[None]:
    """What field validators deep in a document need to know about it: expect.schema files are relative to the
    document and confined to the pool (response_schema.place); regular expressions get
    `limits.regex_timeout_ms` (patterns.budget_ms)."""
    from . import patterns, response_schema

    place = response_schema.place.set(response_schema.Place(path, pool_root, limits))
    budget = patterns.budget_ms.set(limits.regex_timeout_ms)
    try:
        yield
    finally:
        patterns.budget_ms.reset(budget)
        response_schema.place.reset(place)


def _load_native(display: str, data: Any, parsed: Parsed, result: DocumentFile,
                 environ: Mapping[str, str] | None, service: str, module: str, limits: Limits) -> DocumentFile:
    def fail(message: str, line: int | None = None, field_: str = "") -> DocumentFile:
        result.errors.append(DocumentError(display, line, field_, message))
        return result

    ctx = _Context(display, parsed, os.environ if environ is None else environ, service, module)
    items: list[tuple[Path_, Any]]
    extra_keys: tuple[str, ...] = ()
    if isinstance(data, list):
        items = [((i,), item) for i, item in enumerate(data)]
    elif isinstance(data, dict) and "interfaces" in data:
        problems = _file_level(ctx, data, FILE_KEYS)
        if problems:
            result.errors.append(ctx.error(problems))
            return result
        items = [(("interfaces", i), item) for i, item in enumerate(data["interfaces"])]
    elif isinstance(data, dict):
        problems = _file_level(ctx, data, SINGLE_FILE_KEYS)
        if problems:
            result.errors.append(ctx.error(problems))
            return result
        items, extra_keys = [((), data)], SINGLE_FILE_KEYS
    else:
        return fail(
            "expected an interface (a mapping with 'name'), a list of interfaces, "
            f"or a mapping with 'interfaces', got {describe(data)}",
            parsed.line(()),
        )

    if len(items) > limits.max_interfaces:
        where: Path_ = ("interfaces",) if isinstance(data, dict) else ()
        return fail(
            f"{len(items)} interfaces in one file, over the limit of {limits.max_interfaces} "
            "(limits.max_interfaces_per_file in config.yaml); split the file",
            parsed.line(where), format_path(where),
        )
    for index, (prefix, item) in enumerate(items):
        outcome = _interface(ctx, item, prefix, index, extra_keys)
        if isinstance(outcome, Interface):
            result.interfaces.append(outcome)
        else:
            result.errors.append(outcome)
    return result


def _file_level(ctx: _Context, data: dict[Any, Any], allowed: tuple[str, ...]) -> Problems:
    """Validate service/module/defaults/interfaces; fills ctx. Any problem fails the whole file."""
    problems = Problems()
    for key in ("service", "module"):
        if key not in data:
            continue
        value = substitute(data[key], (key,), ctx.environ, problems)
        if not isinstance(value, str) or not value.strip():
            problems.add((key,), f"expected a non-empty string, got {describe(value)}")
        elif key == "service" and ("/" in value or "::" in value or value != value.strip()):
            problems.add((key,), f"service name {value!r} must not contain '/', '::' or surrounding spaces")
        else:
            setattr(ctx, key, value)
    if "$schema" in data and not isinstance(data["$schema"], str):
        problems.add(("$schema",), f"expected a string (path or URL of the schema), got {describe(data['$schema'])}")
    if "interfaces" in data and not isinstance(data["interfaces"], list):
        problems.add(("interfaces",), f"expected a list of interfaces, got {describe(data['interfaces'])}")
    if allowed == FILE_KEYS:
        for key in data:
            if key not in FILE_KEYS:
                hint = "; put fields shared by all interfaces under 'defaults'" if key in INTERFACE_KEYS else ""
                problems.add((str(key),), unknown_key(key, FILE_KEYS) + hint)
        if "defaults" in data:
            _defaults(ctx, data["defaults"], problems)
    return problems


def _defaults(ctx: _Context, raw: Any, problems: Problems) -> None:
    prefix: Path_ = ("defaults",)
    if not isinstance(raw, dict):
        problems.add(prefix, f"expected a mapping of interface fields shared by every interface, got {describe(raw)}")
        return
    raw = as_written(substitute(raw, prefix, ctx.environ, problems), prefix, ctx.parsed.source)
    if "name" in raw:
        problems.add(prefix + ("name",), "'name' is not allowed in defaults: each interface needs its own name")
    ctx.defaults = parse_fields({k: v for k, v in raw.items() if k != "name"}, prefix, problems, DEFAULTS_KEYS)
    _exclusive(raw, prefix, problems, require_target=False)


def _exclusive(raw: dict[Any, Any], prefix: Path_, problems: Problems, *, require_target: bool) -> None:
    """Exactly one of path/url (unless defaults provide one); at most one body."""
    targets = [k for k in ("path", "url") if k in raw]
    if len(targets) == 2:
        problems.add(
            prefix + ("url",), "use either 'path' (joined to the service base URL) or 'url' (absolute), not both"
        )
    elif not targets and require_target:
        problems.add(prefix + ("path",), "missing required field: path or url")
    bodies = [k for k in BODY_KEYS if k in raw]
    if len(bodies) > 1:
        problems.add(
            prefix + (bodies[1],),
            f"at most one body is allowed (json, form or body), got {' and '.join(repr(b) for b in bodies)}",
        )


def _interface(
    ctx: _Context, raw: Any, prefix: Path_, index: int, extra_keys: tuple[str, ...]
) -> Interface | DocumentError:
    line = ctx.parsed.line(prefix)
    problems = Problems()
    if not isinstance(raw, dict):
        problems.add(prefix, f"expected an interface (a mapping with 'name' and 'path' or 'url'), got {describe(raw)}")
        return ctx.error(problems, index=index)
    raw = substitute({k: v for k, v in raw.items() if k not in extra_keys}, prefix, ctx.environ, problems)
    raw = as_written(raw, prefix, ctx.parsed.source)
    env_paths = [p for p, _ in problems]
    for key in raw:
        if key == "defaults" and extra_keys:
            problems.add(prefix + (key,), "'defaults' is only allowed next to 'interfaces' (a list of interfaces)")
    fields = parse_fields(
        {k: v for k, v in raw.items() if not (k == "defaults" and extra_keys)},
        prefix,
        problems,
        INTERFACE_KEYS,
        also_known=extra_keys + ("interfaces",) if extra_keys else (),
    )
    if "name" not in raw:
        problems.add(prefix + ("name",), "missing required field 'name'")
    has_default_target = "path" in ctx.defaults or "url" in ctx.defaults
    _exclusive(raw, prefix, problems, require_target=not has_default_target)

    # A name still holding an unset ${VAR} is not a usable item name.
    name: str | None = None if prefix + ("name",) in env_paths else fields.get("name")
    if name is not None:
        if name in ctx.names:
            first = ctx.display + (f":{ctx.names[name]}" if ctx.names[name] else "")
            problems.add(
                prefix + ("name",),
                f"duplicate interface name '{name}' in service '{ctx.service}' (first defined at {first})",
            )
        else:
            ctx.names[name] = ctx.parsed.line(prefix + ("name",)) or line
    # A value with an unset variable is reported once, not again as e.g. a malformed URL.
    kept = problems[: len(env_paths)] + [
        pr for pr in problems[len(env_paths) :] if not any(pr[0][: len(e)] == e for e in env_paths)
    ]
    if kept:
        return ctx.error(Problems(kept), name=name, index=index)

    merged = _merge(ctx.defaults, fields)
    expect = merged.pop("expect", {})
    if merged.get("method") == "HEAD" and (expect.get("body") or isinstance(expect.get("schema", (None,))[0], dict)):
        key = "body" if expect.get("body") else "schema"
        own = isinstance(raw.get("expect"), dict) and key in raw["expect"]
        problems.add(prefix + (("expect", key) if own or "method" not in raw else ("method",)),
                     f"HEAD responses have no body (RFC 9110 §9.3.2), so expect.{key} can never pass: "
                     "use GET to check the body, or check status and headers only")
        return ctx.error(problems, name=name, index=index)
    if "body" in expect:
        expect["body"] = tuple(BodyCheck(*check) for check in expect["body"])
    if "headers" in expect:
        expect["headers"] = tuple(HeaderCheck(name, op, want) for name, (op, want) in expect["headers"].items())
    if "schema" in expect:
        expect["schema"], expect["schema_context"] = expect["schema"]
    merged.setdefault("method", "GET")
    return Interface(
        service=ctx.service,
        module=ctx.module,
        expect=Expect(**expect),
        file=ctx.display,
        line=line,
        index=index,
        **merged,
    )


def _merge(defaults: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """Apply file defaults: maps merge per key, tags union, everything else the interface wins."""
    out = copy.deepcopy(defaults)  # defaults are shared by all interfaces: never alias them
    # path/url and json/form/body are one slot each: an interface's choice replaces the default's.
    if "path" in own or "url" in own:
        out.pop("path", None)
        out.pop("url", None)
    if any(k in own for k in BODY_KEYS):
        for k in BODY_KEYS:
            out.pop(k, None)
    for key, value in own.items():
        if key in ("headers", "params", "expect") and key in out:
            out[key] = {**out[key], **value}
        elif key == "tags" and key in out:
            out[key] = tuple(dict.fromkeys(out[key] + value))
        else:
            out[key] = value
    return out


class NameRegistry:
    """Detects duplicate interface names within a service across files of one run."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}

    def claim(self, itf: Interface) -> DocumentError | None:
        """Return an error if service/name was already used (naming the first location)."""
        key = (itf.service, itf.name)
        first = self._seen.get(key)
        if first is not None:
            return DocumentError(
                itf.file,
                itf.line,
                "name",
                f"duplicate interface name '{itf.name}' in service '{itf.service}' (first defined at {first})",
                itf.name,
                itf.index,
            )
        self._seen[key] = itf.file + (f":{itf.line}" if itf.line else "")
        return None
