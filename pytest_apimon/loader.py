"""Reading YAML/JSON text into Python data plus a map of field path -> line number.

Shared by documents and config so every error message can name a line. JSON is parsed
with the json module (exact syntax errors); its line map comes from YAML's composer,
best effort, since JSON is close enough to YAML for that.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ApimonError

Path_ = tuple[str | int, ...]


class ParseError(ApimonError):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


@dataclass
class Parsed:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    # Source text of plain numbers by field path: `1.10` and `0755` are sent as written, not as 1.1 and 755.
    source: dict[Path_, str] = field(default_factory=dict)

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


@dataclass(frozen=True)
class Limits:
    """Parse limits: a hostile or broken file costs one error, never the run's time or memory.

    Applied to documents, imported specs, sidecars and config.yaml (config: built-in values).
    `max_file_bytes`: bytes on disk; `max_depth`: nesting of mappings/lists; `max_alias_nodes`:
    nodes that YAML aliases add when expanded (the "billion laughs" bound); `max_interfaces`: per file;
    `max_keys`: keys in one mapping (200 000 headers in a 2.6 MB file took minutes and 440 MB to send);
    `regex_timeout_ms`: processor time one match of a document's regular expression may take (patterns.py).
    """

    max_file_bytes: int = 10 * 1024 * 1024
    max_depth: int = 100
    max_alias_nodes: int = 100_000
    max_interfaces: int = 5_000
    max_keys: int = 10_000
    regex_timeout_ms: float = 500.0


DEFAULT_LIMITS = Limits()


def check_size(size: int, limits: Limits) -> None:
    """Raise ParseError when a file of `size` bytes is over `limits.max_file_bytes` (checked before reading)."""
    if size > limits.max_file_bytes:
        raise ParseError(
            f"file is {_mib(size)}, over the limit of {_mib(limits.max_file_bytes)} "
            "(limits.max_file_size in config.yaml)"
        )


_NOT_REGULAR = "not a regular file (a pipe, device or socket cannot be read as a document)"


def read_limited(path: Path, limits: Limits) -> bytes:
    """The bytes of a regular file within `limits.max_file_bytes`. Raises ParseError (too big, not a regular
    file: a FIFO would block and /dev/zero never end) or OSError (cannot be read)."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # before open(): opening a FIFO blocks until a writer comes
        raise ParseError(_NOT_REGULAR)
    with path.open("rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):  # replaced between the two looks
            raise ParseError(_NOT_REGULAR)
        check_size(st.st_size, limits)
        data = fh.read(limits.max_file_bytes + 1)  # the file may grow between fstat and read
    check_size(len(data), limits)
    return data


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution): PyYAML's YAML 1.1 resolver reads
# 12:30 as 750, 0755 as 493, yes/on as true and 2024-01-01 as a date, and those values would be sent.
class _CoreResolver(yaml.resolver.BaseResolver):
    pass


_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


# Python refuses int() of more than 4300 digits (sys.get_int_max_str_digits, CVE-2020-10735); its message advises
# changing an interpreter setting. Say what the user can do instead.
_MAX_INT_DIGITS = 4000


def _too_long_int(digits: int) -> str:
    return (f"a number of {digits} digits is too long to read (at most {_MAX_INT_DIGITS}); "
            "quote it to send it as text")


class _CoreConstructor(yaml.constructor.SafeConstructor):
    def construct_core_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if len(text) > _MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(None, None, _too_long_int(len(text)), node.start_mark)
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)  # 0755 is 755 in YAML 1.2 (not octal)


_CoreConstructor.add_constructor(  # type: ignore[type-var]
    "tag:yaml.org,2002:int", _CoreConstructor.construct_core_int
)


class _Loader(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
    _CoreConstructor, _CoreResolver,
):  # fmt: skip
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _CoreConstructor.__init__(self)
        _CoreResolver.__init__(self)


_CParser: type | None = getattr(getattr(yaml, "cyaml", None), "CParser", None)
if _CParser is not None:

    class _CLoader(_CParser, _CoreConstructor, _CoreResolver):  # type: ignore[misc,valid-type]
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)  # type: ignore[misc]
            _CoreConstructor.__init__(self)
            _CoreResolver.__init__(self)

    # libyaml when present: an order of magnitude faster, which matters at 10 000 documents; it also
    # caps flow and block nesting at 1000 levels, so composing never recurses without bound.
    _FastLoader: type = _CLoader
else:  # pragma: no cover - PyYAML without libyaml
    _FastLoader = _Loader


class DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(f"duplicate key '{key}' (first defined at line {first}); a later one would silently win")
        self.line = line


_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int], source: dict[Path_, str], max_depth: int,
           max_keys: int = DEFAULT_LIMITS.max_keys) -> None:
    """Line of every field; the source text of every plain number (for values that are sent as written).

    Also the depth check for trees without aliases (measure() does it for graphs with shared nodes)."""
    if len(path) >= max_depth:
        raise ParseError(_too_deep(max_depth), node.start_mark.line + 1)
    key_line = out.get(path)  # the line of this value's key, set by the caller
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        if len(node.value) > max_keys:  # before walking (and constructing) them all; check_keys says it again
            raise ParseError(_too_many_keys(path, len(node.value), max_keys), key_line or node.start_mark.line + 1)
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen and key != "<<":
                raise DuplicateKey(key, key_node.start_mark.line + 1, seen[key])
            seen[key] = key_node.start_mark.line + 1
            out[path + (key,)] = key_node.start_mark.line + 1
            _lines(value_node, path + (key,), out, source, max_depth, max_keys)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, path + (i,), out, source, max_depth, max_keys)
    elif node.tag in _NUMBER_TAGS and isinstance(node.value, str):
        source[path] = node.value


def _too_deep(max_depth: int) -> str:
    return f"nested more than {max_depth} levels deep (limits.max_depth in config.yaml)"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def measure(root: yaml.Node, limits: Limits) -> None:
    """Reject a node graph that is too deep, recursive, or whose aliases expand past the limit.

    Iterative and linear in the distinct nodes: aliases are shared nodes, so their expanded size is
    computed once per node (post-order, memoised), never by expanding them. Raises ParseError.
    """
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    weight: dict[int, int] = {}
    height: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            weight[key] = 1 + sum(weight[id(k)] for k in kids)
            height[key] = 1 + max((height[id(k)] for k in kids), default=0)
            state[key] = 2
            if height[key] > limits.max_depth:
                raise ParseError(
                    _too_deep(limits.max_depth),
                    node.start_mark.line + 1,
                )
            continue
        seen = state.get(key)
        if seen == 2:
            continue
        if seen == 1:
            raise ParseError("an alias refers to a node that contains it (recursive alias)", node.start_mark.line + 1)
        state[key] = 1
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node))
    extra = weight[id(root)] - len(weight)
    if extra > limits.max_alias_nodes:
        raise ParseError(
            f"aliases (*name) expand to {extra} more nodes, over the limit of {limits.max_alias_nodes} "
            "(limits.max_alias_nodes in config.yaml)",
            root.start_mark.line + 1,
        )


def _too_many_keys(path: Path_, count: int, max_keys: int) -> str:
    where = format_path(path) if path else "the top level"
    return (f"{where}: {count} keys in one mapping, over the limit of {max_keys} "
            "(limits.max_keys_per_mapping in config.yaml)")


def check_keys(data: Any, limits: Limits, line: Callable[[Path_], int | None] = lambda _: None) -> None:
    """Raise ParseError (with the field path and its line) at the first mapping with more than
    `limits.max_keys` keys. Iterative, each container visited once (aliases share containers)."""
    seen: set[int] = set()
    stack: list[tuple[Any, Path_]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if not isinstance(value, (dict, list)) or id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            if len(value) > limits.max_keys:
                raise ParseError(_too_many_keys(path, len(value), limits.max_keys), line(path))
            stack.extend((v, path + (k,)) for k, v in value.items())
        else:
            stack.extend((v, path + (i,)) for i, v in enumerate(value))


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _FastLoader(text)
    try:
        return loader.get_single_node(), loader
    finally:
        loader.dispose()


def _line_map_of(node: yaml.Node | None, max_depth: int,
                 max_keys: int = DEFAULT_LIMITS.max_keys) -> tuple[dict[Path_, int], dict[Path_, str]]:
    out: dict[Path_, int] = {}
    source: dict[Path_, str] = {}
    if node is not None:
        try:
            _lines(node, (), out, source, max_depth, max_keys)
        except DuplicateKey as exc:
            raise ParseError(str(exc), exc.line) from None
    return out, source


def _line_map(text: str, limits: Limits) -> tuple[dict[Path_, int], dict[Path_, str]]:
    try:
        node, _ = _compose(text)
        if node is not None and "&" in text:
            measure(node, limits)
        # No key limit here: parse() checks the JSON data against it with these lines (a line for the message).
        return _line_map_of(node, limits.max_depth, sys.maxsize)
    except (yaml.YAMLError, ParseError, RecursionError):
        return {}, {}


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _json_depth_check(text: str, limits: Limits) -> None:
    if text.count("[") + text.count("{") <= limits.max_depth:
        return  # cannot be deeper: the common case costs two counts
    depth = 0
    for char in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if char in "[{" else -1
        if depth > limits.max_depth:
            break
    else:
        return
    depth, line = 0, None
    for m in _JSON_TOKEN.finditer(text):  # slower, only for the line of the message
        if m.group() in "[{":
            depth += 1
            if depth > limits.max_depth:
                line = text.count("\n", 0, m.start()) + 1
                break
        elif m.group() in "]}":
            depth -= 1
    raise ParseError(_too_deep(limits.max_depth), line)


# \uD83D\uDC4D (a UTF-16 surrogate pair, as JSON writes one emoji) is common in real vendor specs. libyaml
# rejects surrogate escapes, and a lone one becomes a str that cannot be encoded to UTF-8 (reports, JUnit).
_SURROGATE_ESCAPE = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u(?:([dD][89abAB][0-9a-fA-F]{2})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?"
    r"|[dD][c-fC-F][0-9a-fA-F]{2})"
)
_ANY_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def fix_surrogate_escapes(text: str, *, for_yaml: bool) -> str:
    """Lone surrogate escapes become \\uFFFD; for YAML, a pair becomes one \\U escape of the same character."""
    if _ANY_SURROGATE.search(text) is None:
        return text

    def repl(m: re.Match[str]) -> str:
        pre, high, low = m.group(1), m.group(2), m.group(3)
        if high and low:
            if not for_yaml:
                return m.group(0)  # json decodes pairs itself
            code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
            return f"{pre}\\U{code:08X}"
        return pre + "\\uFFFD"

    return _SURROGATE_ESCAPE.sub(repl, text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


class _LongInt(ValueError):
    pass


def _json_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise _LongInt(_too_long_int(len(text)))
    return int(text)


def load_json(text: str, limits: Limits = DEFAULT_LIMITS, *, check: bool = True) -> Any:
    """json.loads within the limits; NaN/Infinity rejected (RFC 8259 has neither). Raises ParseError."""
    _json_depth_check(text, limits)
    try:
        data = json.loads(fix_surrogate_escapes(text, for_yaml=False), parse_constant=_no_constant,
                          parse_int=_json_int)
        if check:
            check_keys(data, limits)
        return data
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except _LongInt as exc:
        m = re.search(r"(?<![\w.\"])-?[0-9]{" + str(_MAX_INT_DIGITS + 1) + ",}", text)
        raise ParseError(str(exc), text.count("\n", 0, m.start()) + 1 if m else None) from None
    except ValueError as exc:  # from _no_constant
        m = re.search(r"(?<![\w\"])-?(?:NaN|Infinity)\b", text)  # best effort: the first such token
        raise ParseError(f"invalid JSON: {exc}", text.count("\n", 0, m.start()) + 1 if m else None) from None
    except RecursionError:
        raise ParseError(_too_deep(limits.max_depth)) from None


def load_yaml(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """YAML (1.2 core schema) data within the limits. Raises ParseError."""
    return _parse_yaml(text, limits, lines=False).data


def parse(text: str, suffix: str, limits: Limits = DEFAULT_LIMITS) -> Parsed:
    """Parse YAML (.yaml/.yml) or JSON (.json). Raises ParseError with a line when known.

    YAML uses the 1.2 core schema (``12:30``, ``0755``, ``yes`` stay as written) and merge keys
    (``<<: *base``, explicit keys win). Every file is held to `limits` (size, depth, alias expansion).
    """
    if len(text) > limits.max_file_bytes:
        check_size(len(text.encode("utf-8", errors="replace")), limits)
    if suffix.lower() == ".json":
        try:
            data = load_json(text, limits, check=False)
        except ParseError as exc:
            if exc.message.startswith("a number of "):  # _too_long_int: name the field too
                lines, _ = _line_map(fix_surrogate_escapes(text, for_yaml=True), limits)
                if field_at := _field_at(lines, exc.line):
                    raise ParseError(f"{field_at}: {exc.message}", exc.line) from None
            raise
        lines, source = _line_map(fix_surrogate_escapes(text, for_yaml=True), limits)
        check_keys(data, limits, Parsed(None, lines).line)
        return Parsed(data, lines, source)
    return _parse_yaml(text, limits)


def _parse_yaml(text: str, limits: Limits, *, lines: bool = True) -> Parsed:
    text = fix_surrogate_escapes(text, for_yaml=True)
    try:
        # One pass: compose the node tree, check it against the limits, map lines (before the
        # constructor flattens merge keys into the mapping), then build the data from it.
        node, loader = _compose(text)
        if node is None:
            return Parsed(None)
        if "&" in text or not lines:  # anchors: shared nodes (aliases) possible; the line walk checks the rest
            measure(node, limits)
        line_map, source = _line_map_of(node, limits.max_depth, limits.max_keys) if lines else ({}, {})
        data = loader.construct_document(node)
        check_keys(data, limits, Parsed(None, line_map).line)
    except RecursionError:
        raise ParseError(_too_deep(limits.max_depth)) from None
    except (yaml.YAMLError, ValueError) as exc:
        if not isinstance(exc, yaml.YAMLError):  # e.g. an explicit !!int tag on text that is not a number
            raise ParseError(f"invalid YAML: {exc}") from None
        if "maximum nesting depth" in str(exc):  # libyaml's own cap (1000 levels)
            mark = getattr(exc, "problem_mark", None)
            raise ParseError(
                _too_deep(limits.max_depth),
                _depth_line(text, limits.max_depth) or (mark.line + 1 if mark else None),
            ) from None
        # The pure-Python scanner is quadratic on deeply nested flow collections: only small, flat files.
        slow_ok = len(text) <= _SLOW_MAX and text.count("[") + text.count("{") <= 2 * limits.max_depth
        if isinstance(exc, yaml.constructor.ConstructorError) or _FastLoader is _Loader or not slow_ok:
            message, line = _yaml_error(exc)
            field_at = _field_at(line_map if lines else {}, line)
            raise ParseError(f"{field_at}: {message}" if field_at else message, line) from None
        # libyaml's wording is terser; re-parse the broken file with the pure-Python parser for the message.
        try:
            slow = _Loader(text)
            try:
                slow.get_single_node()
            finally:
                slow.dispose()
        except yaml.YAMLError as slow_exc:
            raise ParseError(*_yaml_error(slow_exc)) from None
        except RecursionError:
            pass
        raise ParseError(*_yaml_error(exc)) from None
    return Parsed(data, line_map, source)


def _depth_line(text: str, max_depth: int) -> int | None:
    """The line where nesting first goes past `max_depth`, from the parser's event stream (which reaches it before
    libyaml's own 1000-level cap stops the parse, whose mark is where *that* cap was hit)."""
    parser = _FastLoader(text)
    depth = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    return int(event.start_mark.line) + 1 if event.start_mark is not None else None
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        parser.dispose()
    return None


_SLOW_MAX = 256 * 1024  # the pure-Python parser only re-reads small broken files, for its better message


def _field_at(line_map: Mapping[Path_, int], line: int | None) -> str:
    """The deepest field path starting on `line` ("" if none): where a constructor error (a bad value) is."""
    paths = [p for p, n in line_map.items() if n == line and p]
    if not paths or line is None:
        return ""
    depth = max(len(p) for p in paths)
    deepest = [p for p in paths if len(p) == depth]
    common = deepest[0]
    for p in deepest[1:]:  # several on one line ({a: 1, b: 2}): their common parent, never a wrong sibling
        n = 0
        while n < min(len(common), len(p)) and common[n] == p[n]:
            n += 1
        common = common[:n]
    return format_path(common)


# PyYAML's token names (yaml/tokens.py `id`) as a reader says them; the block ones mean an indentation problem.
YAML_TOKENS = {
    "<block end>": "the end of the indented block",
    "<block mapping start>": "a new mapping (key: value)",
    "<block sequence start>": "a list (- item)",
    "<document start>": "the start of a document (---)",
    "<document end>": "the end of a document (...)",
    "<stream start>": "the start of the file",
    "<stream end>": "the end of the file",
    "<flow mapping start>": "'{'",
    "<flow mapping end>": "'}'",
    "<flow sequence start>": "'['",
    "<flow sequence end>": "']'",
    "<flow entry>": "','",
    "<block entry>": "a list item (-)",
    "<key>": "a key",
    "<value>": "a value",
    "<scalar>": "a value",
    "<alias>": "an alias (*name)",
    "<anchor>": "an anchor (&name)",
    "<tag>": "a tag (!name)",
    "<directive>": "a directive (%...)",
}
INDENT_HINT = "check the indentation of this line and the line above"


def _plain_tokens(problem: str) -> str:
    """PyYAML's problem text with its token names ('<block end>') in plain words."""
    problem = re.sub(r"'?(<[a-z ]+>)'?", lambda m: YAML_TOKENS.get(m.group(1), m.group(0)), problem)
    # The one-character token ids of a block key and a block list item.
    return problem.replace("found '?'", "found a key").replace("found '-'", "found a list item (-)")


def _yaml_error(exc: yaml.YAMLError) -> tuple[str, int | None]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    indentation = "<block " in problem or "'-'" in problem
    msg = f"invalid YAML: {_plain_tokens(problem)}" + (f" ({context})" if context else "")
    if indentation:
        msg += f"; {INDENT_HINT}"
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


def substituted_values(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """{value: "${NAME}"} for every set variable text refers to: what a message must show instead of the value."""
    out: dict[str, str] = {}
    for m in _VAR.finditer(text):
        value = environ.get(m.group(1)) if m.group(1) else None
        if value:
            out.setdefault(value, "${" + m.group(1) + "}")
    return out
