"""How a report becomes messages on every platform: the first screen, then the details, never repeated.

    message 1        the first screen (report.render_first_screen, <= 8 lines) + where the details are
    messages 2..k    the details (report.render_details), split to the platform's byte limit
    or               the full report as an attached file (WeCom) when the details need more than
                     max_messages - 1 messages; platforms without uploads send what fits and point to the
                     status page / report files for the rest.

A Notification without a first screen (watcher messages, reports stored by older versions) keeps the
older layout: the whole Markdown split into parts, or its summary plus the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Notification
from .split import split_markdown

POINTERS = {
    "zh": {"next": "详情见下一条消息", "file": "完整报告见附件 `{f}`",
           "cut": "详情较长，这里只发前 {k} 条；完整报告见状态页或本次运行的报告文件"},
    "en": {"next": "Details in the next message", "file": "Full report attached: `{f}`",
           "cut": "Details are long: the first {k} message(s) follow; the full report is on the status page and in "
                  "this run's report files"},
}


@dataclass
class Layout:
    """The messages of one report for one robot, in order."""

    first: str  # message 1 (without mentions)
    details: list[str]  # messages after it
    attach: bool  # upload the full report as a file after the details


def plan(n: Notification, limit: int, max_messages: int, *, can_attach: bool, filename: str = "",
         reserve_first: int = 0) -> Layout:
    """The messages for a Notification that has a first screen (see the module docstring)."""
    words = POINTERS.get(n.lang, POINTERS["zh"])
    title = n.title.strip() or "pytest-apimon"
    details = split_markdown(n.details, limit, title=title) if n.details.strip() else []
    attach = False
    pointer = ""
    if details and len(details) + 1 > max_messages:
        if can_attach:
            details, attach, pointer = [], True, words["file"].format(f=filename)
        else:
            keep = max(0, max_messages - 1)
            details, pointer = details[:keep], words["cut"].format(k=keep)
    elif details:
        pointer = words["next"]
    first = n.first_screen.rstrip("\n")
    has_link = first.rsplit("\n", 1)[-1].startswith("[")  # the status page link is the last line
    if pointer and not has_link:
        first += "\n" + pointer
    # The first screen is short by construction; split anyway so an absurd title can never break the limit.
    parts = split_markdown(first, limit, title=title, reserve_first=reserve_first)
    return Layout(parts[0] if parts else title, parts[1:] + details, attach)
