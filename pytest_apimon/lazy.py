"""Lazy public names (PEP 562, "Customization of module attribute access"): a package lists where each of its
public names lives and imports that module on first use, so importing the package stays cheap (issue 15:
start-up CPU; ARCHITECTURE.md, "Imports follow use")."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, home: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`: `home` maps a public name to the submodule defining it (relative to
    `package`); the first lookup imports it and stores the value in `namespace` (the package's globals()), so the
    next lookup is a plain attribute. An unknown name raises AttributeError, as for any module."""

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    return __getattr__
