"""Documents teams already have: OpenAPI 3.0/3.1, Swagger 2.0 and Postman Collection v2.0/v2.1.

Files are recognised by content (`sniff`), never by name, and converted into the same
`Interface` / `DocumentError` models the native loader yields, so items, engine, classification
and reports need no change. Each importer reads the spec into `Draft`s (an operation with its
declared parameters and whatever example values the spec gives); `finalize` then applies the
overrides sidecar and decides, per operation, between a request that can be sent and a skipped
item with a reason: a missing value is never replaced by garbage, and data-changing methods are
not sent unless enabled (monitoring must not create or delete production data).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._document_fields import header_problem
from ..documents import DocumentError, DocumentFile, service_and_module
from ..loader import DEFAULT_LIMITS, Limits, ParseError, load_json, load_yaml
from .overrides import load_overrides

if TYPE_CHECKING:  # for type checkers; at run time `__getattr__` imports them
    from .model import (
        MISSING,
        TEMPLATE,
        WRITE_METHODS,
        Context,
        Draft,
        Param,
        Source,
        detect,
        fill_path,
        finalize,
        method_of,
        pointer,
    )

__all__ = ["MISSING", "TEMPLATE", "WRITE_METHODS", "Context", "Draft", "Param", "Source", "detect", "fill_path",
           "finalize", "import_document", "method_of", "pointer", "sniff"]

# The converters and their model (with response_schema) are imported when a file turns out to be a spec, not
# for a pool of native documents, where `sniff` answers from the text alone (issue 15: start-up CPU).
_MODEL_NAMES = frozenset(__all__) - {"import_document", "sniff"}
_MARKERS = ("openapi", "swagger", "postman", '"requests"')  # one of them is in every spec `detect` recognises


def __getattr__(name: str) -> Any:
    if name not in _MODEL_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(".model", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def sniff(text: str, suffix: str, limits: Limits = DEFAULT_LIMITS) -> Source | None:
    """The spec when `text` is OpenAPI/Swagger/Postman; None for native documents (and unparsable text,
    whose syntax error the native loader reports with its line). Raises ParseError when a limit is hit."""
    if not any(marker in text for marker in _MARKERS):
        return None  # cheap: native documents are never parsed twice
    try:
        data = load_json(text, limits) if suffix.lower() == ".json" else load_yaml(text, limits)
    except ParseError as exc:
        if "limits." in exc.message:  # over a limit: the native loader would hit it too; say it once, now
            raise
        return None
    from .model import detect

    return detect(data, text)


def import_document(
    source: Source, path: Path, pool_root: Path, display: str, environ: Mapping[str, str],
    limits: Limits = DEFAULT_LIMITS,
) -> DocumentFile:
    """Convert a recognised spec into interfaces and errors. Never raises for bad content."""
    from . import openapi, postman
    from .model import Context, _unique_names, finalize, pointer

    result = DocumentFile(display)
    if source.problem:
        result.errors.append(
            DocumentError(display, source.line(source.problem_at), pointer(source.problem_at), source.problem)
        )
        return result
    if source.kind == "environment":
        return result  # not a document: a sidecar's `environment` reads it
    service, module = service_and_module(path, pool_root)
    overrides = load_overrides(path, display, environ, limits)
    # External $refs may reach any file of the pool given to --apimon (its folder when a single file is given).
    boundary = pool_root.parent if pool_root.is_file() else pool_root
    ctx = Context(source, display, path, service, module, environ, overrides, boundary)
    try:
        drafts = postman.drafts(ctx) if source.kind == "postman" else openapi.drafts(ctx)
    except RecursionError:  # a pathological document must cost one error, not the run
        ctx.error((), "document is nested too deeply to be read")
        drafts = []
    if len(drafts) > limits.max_interfaces:
        result.errors.append(DocumentError(
            display, None, "", f"{len(drafts)} operations in one file, over the limit of {limits.max_interfaces} "
            "(limits.max_interfaces_per_file in config.yaml); split the spec or raise the limit"))
        return result
    _unique_names(drafts)
    for d in drafts:
        if d.error:
            overrides.for_draft(d)  # its overrides are not "unmatched": the operation is just broken
            ctx.error(d.error[0], d.error[1], d.name, d.index)
    for d in drafts:
        if d.error:
            continue
        itf = finalize(ctx, d)
        problems = [f"header {n}: {p}" for n, v in itf.headers.items() if (p := header_problem(str(n), str(v)))]
        if problems and not itf.skip:  # a spec example the HTTP client cannot send: say so now
            ctx.error(d.at, problems[0], d.name, d.index)
        else:
            result.interfaces.append(itf)
    result.errors = overrides.errors + overrides.unmatched(drafts) + ctx.errors
    if "{{" in source.text:  # only then are the values used; such files are never put in the parse cache
        result.secrets = list(overrides.secrets)
    result.secrets += [s for s in ctx.secrets if s]  # a file with any is never put in the parse cache either
    result.notes = [f"{feature} ({n} {'request' if source.kind == 'postman' else 'operation'}{'s' if n > 1 else ''})"
                    for feature, n in ctx.notes.items()]
    return result
