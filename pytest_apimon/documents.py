"""Interface documents: the native JSON/YAML format, parsed and validated into models.

SKELETON — models and signatures are fixed; bodies to be implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

_MISSING: Any = object()  # marks "no json body" (None is a valid JSON body: null)


@dataclass(frozen=True)
class BodyCheck:
    """One check on the JSON response body.

    `path` is a simple path such as ``data.items[0].id`` ("" or "$" = the whole body).
    `op` is "equals" | "exists" | "type"; `value` is the expected value, the bool for
    exists, or the JSON type name (string, number, integer, boolean, array, object, null).
    """

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Expect:
    # Allowed statuses: ints and "2xx"-style class patterns. Empty means any 2xx.
    status: tuple[int | str, ...] = ()
    body: tuple[BodyCheck, ...] = ()
    max_ms: float | None = None


@dataclass(frozen=True)
class Interface:
    name: str
    service: str
    module: str
    method: str
    path: str | None = None  # joined to the service base URL
    url: str | None = None  # full URL, used as-is
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = _MISSING  # JSON body (use has_json)
    form: dict[str, Any] | None = None
    body: str | None = None  # raw body
    # None: use the service's auth if it has one; False: none; str: that service's auth.
    auth: bool | str | None = None
    expect: Expect = field(default_factory=Expect)
    timeout: float | None = None  # seconds, overrides service/global
    tags: tuple[str, ...] = ()
    skip: str | None = None  # reason
    description: str | None = None
    file: str = ""  # path as given to the loader (relative to rootdir when possible)
    line: int | None = None  # 1-based line where this interface starts
    index: int = 0  # position in the file

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


def is_document(path: Path) -> bool:
    """True for .yaml/.yml/.json files that are not hidden (README.md, .DS_Store, images are not)."""
    raise NotImplementedError


def service_and_module(path: Path, pool_root: Path) -> tuple[str, str]:
    """Default service (first folder under the pool) and module (sub-folder, else file stem)."""
    raise NotImplementedError


def load_document(path: Path, pool_root: Path, display: str | None = None) -> DocumentFile:
    """Parse and validate one document file. Never raises for bad content."""
    raise NotImplementedError


class NameRegistry:
    """Detects duplicate interface names within a service across files of one run."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}

    def claim(self, itf: Interface) -> DocumentError | None:
        """Return an error if service/name was already used (naming the first location)."""
        raise NotImplementedError
