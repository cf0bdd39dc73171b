"""User-supplied regular expressions (`regex` body and header checks, JSON Schema `pattern`): compiled once when
the document loads, matched within a time budget.

Python's `re` holds the GIL for the whole of a match, so a catastrophically backtracking pattern such as
`"(A+)+"` against `"AAAA…A!"` cannot be stopped by a guard thread or a signal: it held a run for minutes. The
`regex` module (PyPI `regex`, in its `re`-compatible VERSION0 mode, so a pattern means what it means to `re`)
takes a `timeout` and raises TimeoutError when a match runs over it. Its clock is the processor time of the
whole process (C `clock()`): another busy process does not make a healthy pattern time out, but this process's
other threads count while they run outside the GIL (the match holds it), so the budget is kept far above what
a sane pattern needs.

The budget is `limits.regex_timeout_ms` in config.yaml (DEFAULT_BUDGET_MS); the subject is bounded already:
a body by `defaults.max_body_bytes`, a header value by http.client's 64 KiB line limit.
"""

from __future__ import annotations

import functools
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .errors import ApimonError

__all__ = ["DEFAULT_BUDGET_MS", "Pattern", "PatternError", "RegexTimeout", "budget_ms", "compile_pattern", "search"]

DEFAULT_BUDGET_MS = 500.0  # a sane pattern on a 1 MiB body takes a few ms; docs/config-reference.md, `limits`

# The budget of the document being loaded (loader.Limits.regex_timeout_ms), set by documents.load_native_or_spec
# so field validators deep in the document need no extra argument; a ContextVar so parallel loads do not mix.
budget_ms: ContextVar[float] = ContextVar("apimon_regex_budget_ms", default=DEFAULT_BUDGET_MS)


class PatternError(ApimonError, ValueError):
    """The text is not a valid regular expression (raised at load time: a document error)."""


class RegexTimeout(ApimonError, TimeoutError):
    """A match ran over its budget: the document's pattern is at fault (catastrophic backtracking), not the
    service, so it is reported as invalid_document and never retried."""

    def __init__(self, pattern: str, budget: float) -> None:
        shown = pattern if len(pattern) <= 60 else pattern[:59] + "…"
        super().__init__(f"regex /{shown}/ took longer than {budget:g} ms: catastrophic backtracking? "
                         "(limits.regex_timeout_ms)")
        self.pattern = pattern
        self.budget = budget


@dataclass(frozen=True)
class Pattern:
    """A validated, compiled pattern with its budget in milliseconds. `str()` is the pattern as written.

    Pickles (the parse cache keeps documents between runs): `regex` patterns pickle by their text."""

    source: str
    budget: float = DEFAULT_BUDGET_MS
    compiled: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.compiled is None:
            object.__setattr__(self, "compiled", _compile(self.source))

    def __str__(self) -> str:
        return self.source

    def search(self, text: str) -> bool:
        """True if the pattern matches anywhere in `text` (re.search semantics). Raises RegexTimeout."""
        try:
            return self.compiled.search(text, timeout=self.budget / 1000) is not None
        except TimeoutError:
            raise RegexTimeout(self.source, self.budget) from None


def _compile(source: str) -> Any:
    """`re` decides what is a valid pattern (documents are written in its syntax; `regex` accepts more, such as
    `a(?i)b`, which `re` refuses), `regex` compiles it for matching. `regex` is imported here, by the first
    document with a pattern: most pools have none (issue 15: start-up CPU)."""
    import regex

    try:
        re.compile(source)
        return regex.compile(source, regex.VERSION0)
    except (re.error, regex.error, RecursionError, OverflowError, ValueError) as exc:
        raise PatternError(f"invalid regular expression {source!r}: {exc}") from None


def compile_pattern(source: str, budget: float | None = None) -> Pattern:
    """A Pattern for `source` with `budget` ms (None: the loading document's, `budget_ms`). Raises PatternError."""
    return Pattern(source, budget_ms.get() if budget is None else budget)


@functools.lru_cache(maxsize=512)
def _default(source: str) -> Pattern:
    return Pattern(source)


def search(pattern: Pattern | str, text: str) -> bool:
    """Pattern.search; a plain string (a model built in code, not by the loader) is compiled once, default budget.
    Raises RegexTimeout, PatternError."""
    return (pattern if isinstance(pattern, Pattern) else _default(pattern)).search(text)
