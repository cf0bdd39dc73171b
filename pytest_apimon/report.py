"""Report rendering: RunResult -> terminal text, Markdown, JSON. Pure functions; output is masked.

SKELETON — signatures fixed; bodies to be implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from .results import RunResult


@dataclass
class Stats:
    total: int
    passed: int
    failed: int
    skipped: int
    by_category: dict[str, int]
    success_rate: float | None  # passed / (passed + failed); None when nothing ran
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


def compute_stats(run: RunResult) -> Stats:
    raise NotImplementedError


def render_terminal(run: RunResult, lang: str = "zh") -> str:
    raise NotImplementedError


def render_markdown(run: RunResult, lang: str = "zh", title: str | None = None) -> str:
    raise NotImplementedError


def render_json(run: RunResult) -> str:
    raise NotImplementedError
