"""Reading YAML/JSON text into Python data plus a map of field path -> line number.

Shared by documents and config so every error message can name a line. JSON is parsed
with the json module (exact syntax errors); its line map comes from YAML's composer,
best effort, since JSON is close enough to YAML for that.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class ParseError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


@dataclass
class Parsed:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """Line of the field at path, or of its nearest ancestor that has one."""
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def format_path(path: Path_) -> str:
    """('interfaces', 2, 'expect') -> 'interfaces[2].expect'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x'?)' or ''."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


class _Loader(yaml.SafeLoader):
    pass


class DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(f"duplicate key '{key}' (first defined at line {first}); a later one would silently win")
        self.line = line


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen and key != "<<":
                raise DuplicateKey(key, key_node.start_mark.line + 1, seen[key])
            seen[key] = key_node.start_mark.line + 1
            out[path + (key,)] = key_node.start_mark.line + 1
            _lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, path + (i,), out)


# libyaml when present: an order of magnitude faster, which matters at 10 000 documents.
_FastLoader: type = getattr(yaml, "CSafeLoader", _Loader)


def _compose(text: str) -> tuple[yaml.Node | None, yaml.BaseLoader]:
    loader = _FastLoader(text)
    try:
        return loader.get_single_node(), loader
    finally:
        loader.dispose()


def _line_map_of(node: yaml.Node | None) -> dict[Path_, int]:
    out: dict[Path_, int] = {}
    if node is not None:
        try:
            _lines(node, (), out)
        except DuplicateKey as exc:
            raise ParseError(str(exc), exc.line) from None
    return out


def _line_map(text: str) -> dict[Path_, int]:
    try:
        node, _ = _compose(text)
    except yaml.YAMLError:
        return {}
    return _line_map_of(node)


def parse(text: str, suffix: str) -> Parsed:
    """Parse YAML (.yaml/.yml) or JSON (.json). Raises ParseError with a line when known."""
    if suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParseError(f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
        return Parsed(data, _line_map(text))
    try:
        # One pass: compose the node tree (for line numbers), then build the data from it.
        node, loader = _compose(text)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        if isinstance(exc, yaml.constructor.ConstructorError) or _FastLoader is _Loader:
            raise ParseError(*_yaml_error(exc)) from None
        # libyaml's wording is terser; re-parse the broken file with the pure-Python parser for the message.
        try:
            yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
        except yaml.YAMLError as slow_exc:
            raise ParseError(*_yaml_error(slow_exc)) from None
        raise ParseError(*_yaml_error(exc)) from None
    return Parsed(data, _line_map_of(node))


def _yaml_error(exc: yaml.YAMLError) -> tuple[str, int | None]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    msg = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    if context and "flow" in context and ("'['" in problem or "'{'" in problem):
        # The classic trap: {path: data.items[0].id} — brackets end a {...} mapping early.
        msg += "; inside {...} or [...] quote values that contain [ ] { } or commas, e.g. \"data.items[0].id\""
    return msg, mark.line + 1 if mark else None


_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingVariable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"environment variable ${{{name}}} is not set (no default: write ${{{name}:-default}})")
        self.name = name


def substitute_env(text: str, environ: Mapping[str, str]) -> str:
    """Replace ${VAR} and ${VAR:-default}; '$${' is a literal '${'. Unset VAR without default -> MissingVariable.

    An empty value counts as unset for ':-' (shell semantics), never as a silent empty string otherwise.
    """

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise MissingVariable(name)
            return default
        return value

    return _VAR.sub(repl, text)
