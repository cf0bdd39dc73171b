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
from pathlib import Path

from .._document_fields import header_problem
from ..documents import DocumentError, DocumentFile, service_and_module
from ..loader import DEFAULT_LIMITS, Limits
from . import openapi, postman
from .model import (
    MISSING,
    TEMPLATE,
    WRITE_METHODS,
    Context,
    Draft,
    Param,
    Source,
    _unique_names,
    detect,
    fill_path,
    finalize,
    method_of,
    pointer,
    sniff,
)
from .overrides import load_overrides

__all__ = ["MISSING", "TEMPLATE", "WRITE_METHODS", "Context", "Draft", "Param", "Source", "detect", "fill_path",
           "finalize", "import_document", "method_of", "pointer", "sniff"]


def import_document(
    source: Source, path: Path, pool_root: Path, display: str, environ: Mapping[str, str],
    limits: Limits = DEFAULT_LIMITS,
) -> DocumentFile:
    """Convert a recognised spec into interfaces and errors. Never raises for bad content."""
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
