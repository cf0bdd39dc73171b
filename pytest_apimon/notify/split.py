"""Split Markdown into messages that fit a byte limit (counted in UTF-8), marked (1/3), (2/3)...

Cuts happen at line boundaries, preferring a blank line or a heading so one problem's details stay
in one message. Inline constructs (<font …>…</font>, [text](url), `code`, **bold**, <@id>) live on one
line, so line cuts never break them; a single over-long line is hard-wrapped between constructs as a
last resort, and only a construct that alone exceeds the limit is cut (its markup reopened per piece).
"""

from __future__ import annotations

import re
import unicodedata

_CONSTRUCT = re.compile(
    r"<font\b[^>]*>.*?</font>|\[[^\]\n]*\]\([^)\n]*\)|`[^`\n]+`|\*\*[^*\n]+\*\*|<@[^>\n]+>|\s+|[A-Za-z0-9_.:/?&=%#+-]+|.",
    re.S,
)
_FONT = re.compile(r"(<font\b[^>]*>)(.*)(</font>)", re.S)


def prepend_note(note: str, content: str, newline: str = "\n") -> str:
    """note on top of content; on the same line when content opens with a bold heading (a first screen),
    so a delayed or dropped-report note does not push the first screen past its line budget."""
    first = content.split("\n", 1)[0]
    if "\n" not in note and first.startswith("**") and not re.search(r"\(\d+/\d+\)\*\*$", first):
        return f"{note} {content}"
    return note + newline + content


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def truncate_bytes(text: str, limit: int, ellipsis: str = "…") -> str:
    """text cut to at most limit UTF-8 bytes on a character boundary."""
    if utf8_len(text) <= limit:
        return text
    room = limit - utf8_len(ellipsis)
    return _take_chars(text, max(room, 0))[0] + ellipsis


def _glued(text: str, i: int) -> bool:
    """True if a cut before text[i] would split a user-perceived character (combining mark, ZWJ sequence)."""
    ch = text[i]
    return bool(unicodedata.combining(ch)) or ch in "\u200d\ufe0e\ufe0f" or text[i - 1] == "\u200d" \
        or 0x1F3FB <= ord(ch) <= 0x1F3FF


def _take_chars(text: str, budget: int) -> tuple[str, str]:
    """Longest prefix within budget bytes that does not split a character or a glued sequence."""
    used, cut = 0, 0
    for i, ch in enumerate(text):
        size = utf8_len(ch)
        if used + size > budget:
            break
        used += size
        cut = i + 1
    while 0 < cut < len(text) and _glued(text, cut):
        cut -= 1
    if cut == 0 and text:  # budget smaller than one glued sequence: take one code point rather than loop
        cut = 1
    return text[:cut], text[cut:]


def _break_atom(atom: str, budget: int) -> list[str]:
    """Pieces of one construct that alone exceeds budget, each keeping its markup valid."""
    font = _FONT.fullmatch(atom)
    if font:
        opening, inner, closing = font.groups()
    elif atom.startswith("**") and atom.endswith("**") and len(atom) > 4:
        opening, inner, closing = "**", atom[2:-2], "**"
    elif atom.startswith("`") and atom.endswith("`") and len(atom) > 2:
        opening, inner, closing = "`", atom[1:-1], "`"
    else:
        opening, inner, closing = "", atom, ""
    room = max(budget - utf8_len(opening + closing), 4)
    pieces = []
    while inner:
        head, inner = _take_chars(inner, room)
        pieces.append(opening + head + closing)
    return pieces


def wrap_line(line: str, budget: int) -> list[str]:
    """Hard-wrap one line into pieces <= budget bytes, cutting between constructs and words when possible."""
    prefix = "> " if line.startswith(">") else ""  # continuation pieces of a quote stay quoted
    pieces: list[str] = []
    current = ""
    for atom in _CONSTRUCT.findall(line):
        if utf8_len(current + atom) <= budget:
            current += atom
            continue
        if current.strip() and current.strip() != prefix.strip():
            pieces.append(current.rstrip())
        current = prefix + ("" if atom.isspace() else atom)
        if utf8_len(current) > budget:
            broken = _break_atom(atom, budget - utf8_len(prefix))
            pieces.extend(prefix + p for p in broken[:-1])
            current = prefix + broken[-1]
    if current.strip() and current.strip() != prefix.strip():
        pieces.append(current.rstrip())
    return pieces


def _units(text: str) -> list[str]:
    """Lines, with a <font> span that continues over several lines kept as one unit."""
    units: list[str] = []
    pending: list[str] = []
    depth = 0
    for line in text.split("\n"):
        if pending or line.count("<font") > line.count("</font>"):
            pending.append(line)
            depth += line.count("<font") - line.count("</font>")
            if depth <= 0:
                units.append("\n".join(pending))
                pending, depth = [], 0
            continue
        units.append(line)
    if pending:
        units.append("\n".join(pending))
    return units


def _pack(units: list[str], budgets: tuple[int, int]) -> list[str]:
    """Greedy packing; on overflow move the tail after the last blank line/heading (if late enough) along."""
    parts: list[list[str]] = []
    current: list[str] = []
    used = 0  # utf8_len("\n".join(current))

    def joined(lines: list[str]) -> int:
        return sum(utf8_len(u) for u in lines) + max(len(lines) - 1, 0)

    queue = list(reversed(units))  # a stack: pop() takes the next unit
    while queue:
        unit = queue.pop()
        budget = budgets[0] if not parts else budgets[1]
        size = utf8_len(unit)
        if (used + 1 + size if current else size) <= budget:
            used = used + 1 + size if current else size
            current.append(unit)
            continue
        if size > budget and not any(u.strip() for u in current):
            lines = unit.split("\n")  # an over-long multi-line font span degrades to lines, a line is wrapped
            queue.extend(reversed(lines if len(lines) > 1 else wrap_line(unit, budget)))
            current, used = [], 0
            continue
        cut = len(current)
        for i in range(len(current) - 1, 0, -1):
            if not current[i].strip() or current[i].lstrip().startswith("#"):
                if joined(current[:i]) >= budget // 2:
                    cut = i
                break
        parts.append(current[:cut])
        current = current[cut:]
        while current and not current[0].strip():  # a part never starts with blank lines
            current.pop(0)
        used = joined(current)
        queue.append(unit)
    parts.append(current)
    texts = ["\n".join(p).strip("\n") for p in parts]
    return [t for t in texts if t.strip()]


def _first_header(first_line: str, i: int, n: int) -> tuple[str, bool]:
    """Marker for part 1: appended to a heading line, else its own line. Returns (marker, inline)."""
    if first_line.lstrip().startswith("#"):
        return f" ({i}/{n})", True
    return f"({i}/{n})\n", False


def _cont_header(title: str, i: int, n: int) -> str:
    clean = re.sub(r"[*`#<>\[\]]", "", title).strip()
    return f"**{clean} ({i}/{n})**\n" if clean else f"**({i}/{n})**\n"


def split_markdown(text: str, limit: int, *, title: str = "", reserve_first: int = 0) -> list[str]:
    """Parts of text, each <= limit bytes; part 1 leaves reserve_first bytes free (e.g. for mentions).

    One part is returned unmarked. Continuation parts start with a bold '<title> (i/n)' line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if utf8_len(text) + reserve_first <= limit:
        return [text] if text.strip() else []
    units = _units(text)
    first_line = units[0].split("\n", 1)[0] if units else ""
    digits = 1
    while True:
        widest = 10**digits - 1
        first_cost = utf8_len(_first_header(first_line, widest, widest)[0])
        cont_cost = utf8_len(_cont_header(title, widest, widest))
        if limit - cont_cost < 64:  # a title so long the header crowds out content: drop it
            title, cont_cost = "", utf8_len(_cont_header("", widest, widest))
        parts = _pack(units, (limit - reserve_first - first_cost, limit - cont_cost))
        if len(parts) <= widest:
            break
        digits += 1
    n = len(parts)
    out = []
    for i, part in enumerate(parts, 1):
        if i == 1:
            marker, inline = _first_header(part.split("\n", 1)[0], i, n)
            if inline:
                head, _, rest = part.partition("\n")
                out.append(head + marker + ("\n" + rest if rest else ""))
            else:
                out.append(marker + part)
        else:
            out.append(_cont_header(title, i, n) + part)
    return out
