"""pytest-apimon: API monitoring as a pytest plugin (`pytest --apimon Interface-pool/`).

The public API for code that drives the core without pytest (a custom runner, a report job). Names are imported
on first use (PEP 562 `__getattr__`): the pytest plugin loads this package in every pytest run on the machine,
and that must stay cheap. Everything else in the package is internal and may change.

PYTEST_DONT_REWRITE (pytest's documented marker: no assertion rewriting of this file). Its submodules are imported
by Python's own loader, not pytest's rewriter (plainimport.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .plainimport import install as _plain_import

_plain_import(__name__)
# After the finder is in place, so that pytest does not rewrite it (plainimport.py).
from .lazy import lazy_attributes  # noqa: E402  # pylint: disable=wrong-import-position

__all__ = [
    "ApimonError", "Category", "Config", "ConfigError", "DocumentError", "DocumentFile", "Engine", "Interface",
    "InterfaceResult", "Outcome", "Redactor", "RunResult", "StateStore", "compute_stats", "load_config",
    "load_document", "render_json", "render_markdown", "render_terminal",
]

_HOME = {
    "ApimonError": "errors", "Category": "categories", "Outcome": "categories", "Config": "config",
    "ConfigError": "config", "load_config": "config", "DocumentError": "documents", "DocumentFile": "documents",
    "Interface": "documents", "load_document": "load", "Engine": "engine", "InterfaceResult": "results",
    "RunResult": "results", "Redactor": "redact", "StateStore": "state", "compute_stats": "report",
    "render_json": "report", "render_markdown": "report", "render_terminal": "report",
}

if TYPE_CHECKING:
    from .categories import Category, Outcome
    from .config import Config, ConfigError, load_config
    from .documents import DocumentError, DocumentFile, Interface
    from .engine import Engine
    from .errors import ApimonError
    from .load import load_document
    from .redact import Redactor
    from .report import compute_stats, render_json, render_markdown, render_terminal
    from .results import InterfaceResult, RunResult
    from .state import StateStore


__getattr__ = lazy_attributes(__name__, _HOME, globals())
