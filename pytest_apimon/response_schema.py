"""Response schema conformance (`expect.schema`): load a JSON Schema, validate a JSON body, describe violations.

Validation is the `jsonschema` library's: the dialect is the schema's `$schema` (draft 4 to 2020-12), else
Draft 2020-12. Formats are not asserted (jsonschema's default), so `format: email` never fails a body.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from .errors import ApimonError
from .redact import Redactor, excerpt

__all__ = ["SHOWN", "SchemaProblem", "document_dir", "load_schema", "make_validator", "validator", "violations"]

SHOWN = 3  # violations named in the reason; the rest are counted
_SCAN = 50  # violations collected at most (a 10 000-item array of wrong items costs no more than this)
_MESSAGE_MAX = 80

# The folder of the document being loaded: `expect.schema: schemas/user.schema.json` is relative to it.
# Set by documents.load_native_or_spec; a ContextVar so threads loading documents in parallel do not mix.
document_dir: ContextVar[Path | None] = ContextVar("apimon_document_dir", default=None)


class SchemaProblem(ApimonError, ValueError):
    """The schema itself is unusable (unreadable file, not JSON/YAML, not a valid JSON Schema)."""


def make_validator(schema: Mapping[str, Any] | bool) -> Any:
    """A jsonschema validator for `schema`. Raises SchemaProblem when the schema is not valid for its dialect."""
    # Imported on first use: most pools have no `expect.schema`, and jsonschema (with referencing and rpds) is
    # the largest import of a run's start-up (docs/benchmarks.md, issue #15).
    from jsonschema import exceptions as js_exceptions
    from jsonschema import validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)  # type: ignore[arg-type]  # the stubs say dict; a boolean schema is valid too
    except js_exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise SchemaProblem(f"not a valid JSON Schema at {where}: {_cut(exc.message)}") from None
    return cls(schema)


_validators: dict[int, tuple[Any, Any]] = {}  # id(schema) -> (schema, validator); holding it keeps the id unique
_lock = threading.Lock()


def validator(schema: Any) -> Any:
    """The validator of a schema that passed make_validator at load time, built once per schema object.

    Documents are cached pickled between runs (parsecache.py) and jsonschema validators do not pickle, so
    Expect holds the schema and the validator lives here."""
    with _lock:
        hit = _validators.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
    built = make_validator(schema)
    with _lock:
        _validators[id(schema)] = (schema, built)
    return built


def load_schema(ref: str, base: Path | None) -> Any:
    """Read a schema file (JSON or YAML) named relative to `base`. Raises SchemaProblem."""
    from .loader import ParseError, parse  # loader limits apply to schema files too

    path = (base / ref) if base is not None and not Path(ref).is_absolute() else Path(ref)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaProblem(f"cannot read schema file {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = parse(text, ".json" if path.suffix.lower() == ".json" else ".yaml").data
    except ParseError as exc:
        raise SchemaProblem(f"schema file {str(path)!r} line {exc.line}: {exc.message}") from None
    if not isinstance(data, dict | bool):
        raise SchemaProblem(f"schema file {str(path)!r} does not hold a JSON Schema (a mapping)")
    return data


def violations(validator: Any, data: Any, redactor: Redactor | None = None) -> tuple[list[str], int]:
    """(up to SHOWN lines "$.data.id: 'x' is not of type 'integer'", how many violations in all (at most _SCAN)).
    A message quotes the offending value: with a redactor it is masked before it is shortened."""
    errors = list(itertools.islice(validator.iter_errors(data), _SCAN))
    errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{e.json_path}: {_cut(e.message, redactor)}" for e in errors[:SHOWN]], len(errors)


def _cut(text: str, redactor: Redactor | None = None) -> str:
    return excerpt(" ".join(text.split()), _MESSAGE_MAX, redactor)
