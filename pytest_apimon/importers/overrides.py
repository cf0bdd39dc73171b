"""The overrides sidecar of an imported spec: `petstore.json` + `petstore.apimon.yaml`.

Teams re-download their OpenAPI export or Postman collection every week, so what monitoring
needs on top of it (example values, expected status, skips, auth, tags, enabling writes) lives
next to it and is validated like a native document: file, line, field path, did-you-mean.
A broken entry is reported and ignored as a whole, so a typo can never enable writes by halves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._document_fields import _PARSERS, Problems, as_written, describe, parse_fields, substitute, unknown_key
from ..documents import BodyCheck, DocumentError
from ..loader import (
    DEFAULT_LIMITS,
    Limits,
    Parsed,
    ParseError,
    Path_,
    did_you_mean,
    format_path,
    parse,
    read_limited,
)

if TYPE_CHECKING:
    from .model import Draft

SIDECAR_SUFFIXES = (".apimon.yaml", ".apimon.yml")
FILE_KEYS = (
    "allow_write", "include", "exclude", "tags", "headers", "params", "auth", "timeout", "base_path",
    "variables", "environment", "naming", "operations", "response_schema",
)  # fmt: skip
OPERATION_KEYS = (
    "params", "headers", "json", "form", "body", "expect", "skip", "auth", "tags", "timeout", "allow_write",
    "description",
)  # fmt: skip
NAMING = ("operation_id", "summary")
_METHOD_KEY = re.compile(r"^\s*([A-Za-z]+)\s+(\S+)\s*$")


def sidecar_for(path: Path) -> Path | None:
    """`<stem>.apimon.yaml` (or .yml) next to the spec, if it exists."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = path.with_name(path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def operation_key(key: str) -> str:
    """'get  /pets/{id}' -> 'GET /pets/{id}'; an operationId or name stays as it is."""
    match = _METHOD_KEY.match(key)
    return f"{match.group(1).upper()} {match.group(2)}" if match else key.strip()


@dataclass
class Overrides:
    """Validated sidecar content; empty (all defaults) when there is no sidecar."""

    file: str | None = None
    allow_write: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    auth: bool | str | None = None
    timeout: float | None = None
    base_path: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)  # a Postman environment file's enabled values
    secrets: list[str] = field(default_factory=list, repr=False)  # its values of type "secret"
    naming: str = "operation_id"
    response_schema: bool = True  # false: imported operations get no expect.schema from the spec's responses
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)  # operation_key -> fields
    errors: list[DocumentError] = field(default_factory=list)
    parsed: Parsed | None = None
    path: Path | None = None  # the sidecar file (relative paths in it are relative to its folder)
    _used: set[str] = field(default_factory=set)

    def for_draft(self, draft: Draft) -> dict[str, Any]:
        """The override fields for this operation (an operationId entry wins over a "GET /path" one)."""
        out: dict[str, Any] = {}
        for key in reversed(draft.keys):
            entry = self.operations.get(operation_key(key))
            if entry is not None:
                self._used.add(operation_key(key))
                out.update(entry)
        return out

    def excluded(self, draft: Draft) -> str | None:
        names = {operation_key(k) for k in draft.keys} | set(draft.tags)
        hit = next((e for e in self.exclude if operation_key(e) in names), None)
        if hit is not None:
            return f"excluded by apimon overrides (exclude: {hit})"
        if self.include and not any(operation_key(e) in names for e in self.include):
            return "not in the apimon overrides include list"
        return None

    def unmatched(self, drafts: list[Draft]) -> list[DocumentError]:
        """Entries naming no operation or tag: almost always a typo, so say which name was meant."""
        if self.file is None or self.parsed is None:
            return []
        keys = sorted({operation_key(k) for d in drafts for k in d.keys})
        tags = sorted({t for d in drafts for t in d.tags})
        errors = []
        for key in self.operations:
            if key not in self._used:
                errors.append(self._error(("operations", key), f"no operation '{key}' in the document"
                                          f"{did_you_mean(key, keys)}; use an operationId or 'METHOD /path'"))
        for list_key in ("include", "exclude"):
            for i, entry in enumerate(getattr(self, list_key)):
                if operation_key(entry) not in keys and entry not in tags:
                    hint = did_you_mean(entry, tags + keys)
                    errors.append(self._error((list_key, i), f"'{entry}' is neither a tag nor an operation of the "
                                              f"document{hint}"))
        return errors

    def _error(self, at: Path_, message: str) -> DocumentError:
        line = self.parsed.line(at) if self.parsed else None
        return DocumentError(self.file or "", line, format_path(at), message)


def load_overrides(
    spec: Path, spec_display: str, environ: Mapping[str, str], limits: Limits = DEFAULT_LIMITS
) -> Overrides:
    """Read and validate the sidecar of `spec`. Never raises: problems become DocumentErrors."""
    path = sidecar_for(spec)
    if path is None:
        return Overrides()
    display = str(Path(spec_display).with_name(path.name))
    ov = Overrides(file=display, path=path)
    try:
        text = read_limited(path, limits).decode("utf-8-sig")
        ov.parsed = parse(text, path.suffix, limits)
    except (OSError, UnicodeDecodeError) as exc:
        ov.errors.append(DocumentError(display, None, "", f"cannot read overrides file: {exc}"))
        return ov
    except ParseError as exc:
        ov.errors.append(DocumentError(display, exc.line, "", exc.message))
        return ov
    data = ov.parsed.data
    if data is None:
        return ov
    if not isinstance(data, dict):
        ov.errors.append(ov._error((), f"expected a mapping with keys such as allow_write, operations; "
                                       f"got {describe(data)}"))
        return ov
    problems = Problems()
    _file_level(ov, data, environ, problems)
    _report(ov, problems)
    raw_ops = data.get("operations")
    if raw_ops is None:
        return ov
    if not isinstance(raw_ops, dict):
        ov.errors.append(ov._error(("operations",), "expected a mapping of operationId or 'METHOD /path' to "
                                                    f"overrides, got {describe(raw_ops)}"))
        return ov
    for key, raw in raw_ops.items():
        entry = _operation(str(key), raw, environ, Problems(), ov.parsed.source)
        if isinstance(entry, Problems):
            _report(ov, entry)
        else:
            ov.operations[operation_key(str(key))] = entry
    return ov


def _file_level(ov: Overrides, data: dict[Any, Any], environ: Mapping[str, str], problems: Problems) -> None:
    for key, value in data.items():
        at: Path_ = (str(key),)
        if key not in FILE_KEYS:
            problems.add(at, unknown_key(key, FILE_KEYS))
            continue
        if key == "operations":
            continue
        value = as_written({key: substitute(value, at, environ, problems)}, (), ov.parsed.source if ov.parsed
                           else {})[key]
        before = len(problems)
        if key in ("allow_write", "response_schema"):
            parsed = _bool(value, at, problems)
        elif key in ("include", "exclude"):
            parsed = _names(value, at, problems)
        elif key == "base_path":
            parsed = _base_path(value, at, problems)
        elif key == "variables":
            parsed = _variables(value, at, problems)
        elif key == "environment":
            parsed = _environment(value, ov.path, at, problems, ov.secrets)
        elif key == "naming":
            parsed = value
            if value not in NAMING:
                problems.add(at, f"unknown naming {describe(value)}{did_you_mean(str(value), NAMING)}; "
                                 f"expected one of {', '.join(NAMING)}")
        else:
            parsed = _PARSERS[key](value, at, problems)
        if len(problems) == before:
            setattr(ov, key, parsed)


def _operation(
    key: str, raw: Any, environ: Mapping[str, str], problems: Problems, source: Mapping[Path_, str] | None = None
) -> dict[str, Any] | Problems:
    at: Path_ = ("operations", key)
    if not isinstance(raw, dict):
        problems.add(at, f"expected a mapping of overrides ({', '.join(OPERATION_KEYS)}), got {describe(raw)}")
        return problems
    raw = as_written(substitute(raw, at, environ, problems), at, source or {})  # params: {id: 0755} stays 0755
    parsers = {**_PARSERS, "allow_write": _bool}
    fields = parse_fields(raw, at, problems, OPERATION_KEYS, parsers=parsers)
    bodies = [k for k in ("json", "form", "body") if k in raw]
    if len(bodies) > 1:
        problems.add(at + (bodies[1],), f"at most one body is allowed (json, form or body), got "
                                        f"{' and '.join(repr(b) for b in bodies)}")
    if problems:
        return problems
    if "expect" in fields and "body" in fields["expect"]:
        fields["expect"]["body"] = tuple(BodyCheck(*check) for check in fields["expect"]["body"])
    return fields


def _report(ov: Overrides, problems: Problems) -> None:
    """One error per group (the file level, or one operation), its problems in document order."""
    if not problems:
        return
    ordered = sorted(problems, key=lambda pr: (ov.parsed.line(pr[0]) if ov.parsed else 0) or 0)
    first, message = ordered[0]
    rest = [f"{format_path(p)}: {m}" for p, m in ordered[1:5]]
    error = ov._error(first, "; ".join([message, *rest]))
    ov.errors.append(error)


def _bool(value: Any, at: Path_, problems: Problems) -> Any:
    if isinstance(value, bool):
        return value
    problems.add(at, f"expected true or false, got {describe(value)}")
    return None


def _names(value: Any, at: Path_, problems: Problems) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        problems.add(at, f"expected a tag or operation (operationId or 'METHOD /path'), or a list of those, "
                         f"got {describe(value)}")
        return ()
    return tuple(i.strip() for i in items)


def _base_path(value: Any, at: Path_, problems: Problems) -> str | None:
    if not isinstance(value, str) or "://" in value or any(c.isspace() for c in value):
        problems.add(at, f"expected a path such as /api/v3 (prepended to every operation path), got {describe(value)}")
        return None
    text = value.strip().rstrip("/")
    return ("/" + text.lstrip("/")) if text else ""


def _variables(value: Any, at: Path_, problems: Problems) -> dict[str, str]:
    if not isinstance(value, dict):
        problems.add(at, f"expected a mapping of variable names to values, got {describe(value)}")
        return {}
    out = {}
    for key, item in value.items():
        if isinstance(item, (str, int, float)):
            out[str(key)] = ("true" if item else "false") if isinstance(item, bool) else str(item)
        else:
            problems.add(at + (str(key),), f"expected a string or number, got {describe(item)}")
    return out


def _environment(value: Any, sidecar: Path | None, at: Path_, problems: Problems,
                 secrets: list[str]) -> dict[str, str]:
    """A Postman environment export (`{"name", "values": [{"key", "value", "enabled"}]}`), relative to the
    sidecar: its enabled values, as newman's `--environment` reads them."""
    if not isinstance(value, str) or not value.strip():
        problems.add(at, f"expected the path of a Postman environment file (e.g. dev.postman_environment.json), "
                         f"relative to this file, got {describe(value)}")
        return {}
    path = (sidecar.parent if sidecar else Path()) / value.strip()
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        problems.add(at, f"Postman environment file {value.strip()} does not exist (looked for {path})")
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.add(at, f"cannot read the Postman environment file {value.strip()}: {' '.join(str(exc).split())}")
        return {}
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(values, list):
        problems.add(at, f"{value.strip()} is not a Postman environment export: expected 'values', a list of "
                         "{key, value, enabled}")
        return {}
    out: dict[str, str] = {}
    for entry in values:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry.get("enabled", True) is not False:
            raw = entry.get("value")
            out[entry["key"]] = "" if raw is None else (json.dumps(raw) if isinstance(raw, (dict, list)) else
                                                       ("true" if raw else "false") if isinstance(raw, bool) else
                                                       str(raw))
            if entry.get("type") == "secret" and out[entry["key"]]:
                secrets.append(out[entry["key"]])  # Postman's own marking: masked wherever it shows up
    return out
