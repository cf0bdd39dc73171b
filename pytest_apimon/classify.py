"""Classification: an Exchange plus the interface's expectations -> one Outcome with one Category.

SKELETON — models and signatures are fixed; bodies to be implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from .categories import Category
from .documents import Expect
from .probe import Exchange


@dataclass(frozen=True)
class Outcome:
    category: Category | None  # None = healthy
    sub: str = ""  # sub-reason: connect/read/total, dns/refused/reset/tls, status, body, latency, ...
    reason: str = ""  # one human line, e.g. "HTTP 503", "read timeout after 10 s", "data.id: expected 1, got 2"

    @property
    def passed(self) -> bool:
        return self.category is None


def classify(exchange: Exchange, expect: Expect) -> Outcome:
    """Transport errors first, then status, then body checks, then latency."""
    raise NotImplementedError


def status_allowed(status: int, allowed: tuple[int | str, ...]) -> bool:
    """allowed: ints and '2xx'-style patterns; empty means 200-299."""
    raise NotImplementedError


def lookup(data: object, path: str) -> tuple[bool, object]:
    """Resolve a simple path like 'data.items[0].id' ('' or '$' = whole). Returns (found, value)."""
    raise NotImplementedError
