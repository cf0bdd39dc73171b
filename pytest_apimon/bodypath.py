"""Body paths: the small path language of body checks and token_path, parsed once and looked up.

Grammar (docs/document-format.md, "Body paths")::

    path     := "" | "$" | ["$"] first rest*
    first    := key | index | quoted
    rest     := "." key | index | quoted
    key      := one or more characters other than . [ ]        e.g. data, 用户, user id
    index    := "[" ["-"] digits "]"                             e.g. [0], [-1] (from the end)
    quoted   := '["' chars '"]' | "['" chars "']"                any key: dots, spaces, brackets, Chinese
                (inside, a backslash escapes the quote or a backslash)

``data["spring.datasource.url"]`` reaches a key that contains dots; ``items.0`` on a list reads
like ``items[0]``. The JSONPath habit ``$.data.id`` means ``data.id``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .errors import ApimonError

__all__ = ["BodyPathError", "Segment", "hint", "lookup", "parse", "render", "suggest"]


class BodyPathError(ApimonError, ValueError):
    """A malformed path; the message says where and what was expected."""


@dataclass(frozen=True)
class Segment:
    kind: str  # "key" | "index" | "quoted"
    value: str | int


_MAX_PATH = 1000  # characters; a body path is written by hand


@functools.lru_cache(maxsize=4096)
def parse(path: str) -> tuple[Segment, ...]:
    """'data.items[0]["a.b"]' -> segments. Raises BodyPathError."""
    text = path.strip()
    if len(text) > _MAX_PATH:
        raise BodyPathError(f"a body path is at most {_MAX_PATH} characters")
    if text in ("", "$"):
        return ()
    if text.startswith("$.") or text.startswith("$["):
        text = text[2:] if text[1] == "." else text[1:]
    out: list[Segment] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == ".":
            if not out:
                raise BodyPathError(f"unexpected '.' at position {i + 1}")
            i += 1
            if i >= n or text[i] in ".[]":
                raise BodyPathError(f"expected a key after '.' at position {i + 1}")
            i = _key(text, i, out)
        elif char == "[":
            i = _bracket(text, i, out)
        elif char == "]":
            raise BodyPathError(f"unexpected ']' at position {i + 1}")
        else:
            if out:
                raise BodyPathError(f"expected '.' or '[' at position {i + 1}")
            i = _key(text, i, out)
    return tuple(out)


def _key(text: str, i: int, out: list[Segment]) -> int:
    start = i
    while i < len(text) and text[i] not in ".[]":
        i += 1
    out.append(Segment("key", text[start:i]))
    return i


def _bracket(text: str, i: int, out: list[Segment]) -> int:
    start = i
    i += 1
    if i < len(text) and text[i] in "\"'":
        quote = text[i]
        i += 1
        chars: list[str] = []
        while i < len(text) and text[i] != quote:
            if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
                i += 1
            chars.append(text[i])
            i += 1
        if i >= len(text):
            raise BodyPathError(f"unterminated {quote}...{quote} key starting at position {start + 1}")
        i += 1
        if i >= len(text) or text[i] != "]":
            raise BodyPathError(f"expected ']' after the quoted key at position {i + 1}")
        out.append(Segment("quoted", "".join(chars)))
        return i + 1
    end = text.find("]", i)
    inner = text[i:end] if end >= 0 else ""
    if end < 0 or not (inner.isdigit() or (inner.startswith("-") and inner[1:].isdigit())) or not inner.isascii():
        raise BodyPathError(
            f"expected [number] or a quoted key like [\"a.b\"] at position {start + 1}"
        )
    out.append(Segment("index", int(inner)))
    return end + 1


def lookup(data: object, path: str) -> tuple[bool, object]:
    """Resolve `path` in `data`. Returns (found, value); a malformed path is never found."""
    try:
        segments = parse(path)
    except BodyPathError:
        return False, None
    return _walk(data, segments)[:2]


def _walk(data: object, segments: tuple[Segment, ...]) -> tuple[bool, object, int, object]:
    """(found, value, index of the first segment that missed, the value it missed in)."""
    current: object = data
    for n, seg in enumerate(segments):
        if seg.kind == "key" and isinstance(current, list) and _is_int(str(seg.value)):
            seg = Segment("index", int(str(seg.value)))  # "items.0" reads like "items[0]"
        if seg.kind == "index":
            if not isinstance(current, list) or not -len(current) <= int(seg.value) < len(current):
                return False, None, n, current
            current = current[int(seg.value)]
        else:
            if not isinstance(current, dict) or seg.value not in current:
                return False, None, n, current
            current = current[seg.value]
    return True, current, len(segments), None


def _is_int(text: str) -> bool:
    return text.isascii() and (text.isdigit() or (text.startswith("-") and text[1:].isdigit()))


def suggest(data: object, path: str) -> str | None:
    """For a path that misses because a key contains dots, the quoted-bracket path that finds it."""
    try:
        segments = parse(path)
    except BodyPathError:
        return None
    found, _, miss, parent = _walk(data, segments)
    if found or not isinstance(parent, dict):
        return None
    for end in range(len(segments), miss + 1, -1):
        run = segments[miss:end]
        if all(s.kind == "key" for s in run):
            joined = ".".join(str(s.value) for s in run)
            if joined in parent:
                fixed = segments[:miss] + (Segment("quoted", joined),) + segments[end:]
                if _walk(data, fixed)[0]:
                    return render(fixed)
    return None


def render(segments: tuple[Segment, ...]) -> str:
    """Segments back to the path text (keys that need it quoted)."""
    out = ""
    for seg in segments:
        if seg.kind == "index":
            out += f"[{seg.value}]"
        elif seg.kind == "key":
            out += ("." if out else "") + str(seg.value)
        else:
            escaped = str(seg.value).replace("\\", "\\\\").replace('"', '\\"')
            out += f'["{escaped}"]'
    return out


def hint(data: Any, path: str) -> str:
    """' (the key "a.b" contains dots: write x["a.b"])' or ''."""
    fixed = suggest(data, path)
    return f" (a key contains dots: write {fixed})" if fixed else ""
