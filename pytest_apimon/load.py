"""Loading one file of the pool, whatever its format: native documents (documents.py) and OpenAPI / Swagger /
Postman files (importers/), recognised by content. The one entry point: items, the parse cache and the coverage
report call `load_document`. It lives apart from documents.py because the importers build on that module's
models: documents.py cannot import them back (no import cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .documents import DocumentFile, load_native_or_spec
from .importers import import_document, sniff
from .loader import DEFAULT_LIMITS, Limits

__all__ = ["load_document"]


def _import_spec(text: str, path: Path, pool_root: Path, display: str, environ: Mapping[str, str],
                 limits: Limits) -> DocumentFile | None:
    spec = sniff(text, path.suffix, limits)  # raises loader.ParseError when a limit is hit
    if spec is None:
        return None  # a native document
    return import_document(spec, path, pool_root, display, environ, limits)


def load_document(path: Path, pool_root: Path, display: str | None = None, *,
                  environ: Mapping[str, str] | None = None, limits: Limits = DEFAULT_LIMITS) -> DocumentFile:
    """Parse and validate one document file: a DocumentFile with its interfaces and errors (file, line, field
    path, message). Never raises for bad content. `environ` feeds ``${VAR}`` substitution (default os.environ);
    `limits` bounds size, nesting, YAML alias expansion, keys per mapping and interfaces per file."""
    return load_native_or_spec(path, pool_root, display, environ=environ, limits=limits, spec_importer=_import_spec)
