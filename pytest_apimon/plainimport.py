"""This package's modules are imported by Python's own loader, not by pytest's assertion rewriter.

pytest marks every module of an installed distribution that registers a `pytest11` entry point for assertion
rewriting (pytest's `Config._mark_plugins_for_rewrite`, "Assertion rewriting" in pytest's "Writing plugins"
guide). A rewritten module is not loaded from the `.pyc` that pip compiled at install time: pytest parses the
source, rewrites it, compiles it again and caches the result in a pytest-specific `.pyc` next to the source, and
it writes no cache where bytecode writing is off (`PYTHONDONTWRITEBYTECODE=1`, common in container images) or the
install folder is read-only (a system install run by another user). There every pytest process, each xdist
worker included, compiled this whole package again: about 0.4 CPU-s of start-up on the 2-core machine of
docs/benchmarks.md, before the first request.

The package has no test code whose assertions need pytest's explanations (its `assert`s only narrow types), so
`PlainImport` (a PEP 451 meta path finder, installed by the package's `__init__`) answers for its submodules
before pytest's hook is asked, with the spec the standard path finder gives: a normal source loader with its
cached bytecode. It answers for nothing else, and outside a pytest process (no rewriting hook on sys.meta_path)
it is not installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType


class PlainImport(importlib.abc.MetaPathFinder):
    """Finds the submodules of `package` with the standard path finder (sys.path hooks, cached bytecode)."""

    def __init__(self, package: str) -> None:
        self.prefix = package + "."

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(self.prefix) or path is None:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, path, target)


def _is_rewrite_hook(finder: object) -> bool:
    # pytest's AssertionRewritingHook, recognised by its public method (pytest.register_assert_rewrite calls it)
    # rather than by importing the private _pytest.assertion.rewrite module.
    return callable(getattr(finder, "mark_rewrite", None))


def install(package: str) -> bool:
    """Put one PlainImport for `package` just ahead of pytest's rewriting hook on sys.meta_path (again ahead of a
    newer hook: each pytest.main in a process installs its own at the front). Returns whether it is installed;
    False when no rewriting hook is there (not under pytest, or `--assert=plain`). Finders ahead of pytest's (a
    user's own import hooks) keep their place and are still asked first."""
    prefix = package + "."
    sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, PlainImport) and f.prefix == prefix)]
    for i, finder in enumerate(sys.meta_path):
        if _is_rewrite_hook(finder):
            sys.meta_path.insert(i, PlainImport(package))
            return True
    return False
