"""WeCom message building: a Notification -> the ordered steps (JSON payloads, file uploads) for one robot.

Steps are plain JSON-able dicts so the outbox can store exactly what is still to be delivered:
    {"kind": "message", "payload": {"msgtype": "markdown", "markdown": {"content": "..."}}}
    {"kind": "file", "filename": "apimon-report-20261128-040000.md", "content": "<full Markdown>"}
"""

from __future__ import annotations

import re
from typing import Any

from .. import times
from .base import Notification
from .layout import plan
from .settings import WeComRobot, mention_for
from .split import prepend_note, split_markdown, truncate_bytes, utf8_len

LIMITS = {"markdown": 4096, "markdown_v2": 4096, "text": 2048}  # bytes of content, UTF-8
FILE_MAX = 20 * 1024 * 1024

WORDS = {
    "zh": {"delayed": "（补发：原始运行时间 {t}）", "dropped": "（注意：发件箱已满，丢弃了 {n} 份更早的未送达报告）",
           "file": "完整报告较长（约 {n} 条消息），已作为文件 `{f}` 发送，见下一条消息。",
           "cut": "（摘要过长已截断，完整内容见文件 `{f}`）",
           "mention": "{title}\n请查看上方的接口监控报告。",
           "no_file": "完整报告较长（约 {n} 条消息），这里只发摘要；完整报告见状态页或本次运行的报告文件。",
           "test": "pytest-apimon 测试消息：机器人「{name}」配置正确，接口监控报告将发送到本群。"},
    "en": {"delayed": "(delayed: originally from {t})",
           "dropped": "(note: the outbox was full; {n} older undelivered report(s) were dropped)",
           "file": "The full report is long (about {n} messages); it is attached as the file `{f}` "
                   "in the next message.",
           "cut": "(summary cut short; everything is in the file `{f}`)",
           "mention": "{title}\nPlease see the monitoring report above.",
           "no_file": "The full report is long (about {n} messages); this is its summary. The full report is on the "
                      "status page and in this run's report files.",
           "test": "pytest-apimon test message: robot '{name}' is configured correctly; reports will be posted here."},
}


def fmt_time(epoch: float) -> str:
    return times.stamp(epoch)


def words_for(lang: str) -> dict[str, str]:
    return WORDS.get(lang, WORDS["zh"])



def _for_type(text: str, msgtype: str) -> str:
    if msgtype == "markdown_v2":  # v2 shows <font> and <@id> literally
        text = re.sub(r"</?font\b[^>]*>|<@[^>\n]+>", "", text)
    return text


def _message(msgtype: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "message", "payload": {"msgtype": msgtype, msgtype: {"content": content, **extra}}}


def build_steps(robot: WeComRobot, n: Notification, max_messages: int) -> list[dict[str, Any]]:
    """The JSON-able steps delivering n to robot: messages (payloads) and at most one file upload."""
    words, msgtype = words_for(n.lang), robot.message_type
    mention = mention_for(robot, n)
    inline = [u for u in mention.userids if u != "@all"] if msgtype == "markdown" else []
    listed = [u for u in mention.userids if u not in inline]  # @all and (for v2) every userid
    inline_line = " ".join(f"<@{u}>" for u in inline)
    reserve = utf8_len(" " + inline_line) if inline else 0
    title = n.title.strip() or "pytest-apimon"
    filename = f"apimon-report-{times.compact(n.run_started_at)}.md"
    file_step = None
    if n.first_screen:
        layout = plan(n, LIMITS[msgtype], max_messages, can_attach=True, filename=filename, reserve_first=reserve)
        parts = [_for_type(p, msgtype) for p in [layout.first, *layout.details]]
        if layout.attach:
            file_step = _file_step(filename, n.markdown)
    else:
        parts = split_markdown(_for_type(n.markdown, msgtype) or title, LIMITS[msgtype], title=title,
                               reserve_first=reserve)
        if len(parts) > max_messages:  # summary + the whole report as a file instead of flooding the group
            summary = (_for_type(n.summary, msgtype).rstrip() or title) + "\n\n" + words["file"].format(
                n=len(parts), f=filename)
            parts = split_markdown(summary, LIMITS[msgtype], title=title, reserve_first=reserve)
            room = max(max_messages, 1)
            if len(parts) > room:  # the summary itself must respect max_messages: cut it, the file has it all
                whole, note = summary, "\n\n" + words["cut"].format(f=filename)
                budget = room * (LIMITS[msgtype] - 400)  # headers and markers of each part
                while len(parts) > room:  # terminates: the budget shrinks geometrically
                    summary = _cut(whole, max(budget, 200)) + note
                    parts = split_markdown(summary, LIMITS[msgtype], title=title, reserve_first=reserve)
                    budget = int(budget * 0.8)
            file_step = _file_step(filename, n.markdown)
    if inline:
        parts[0] += " " + inline_line  # on the last line: the first screen stays within its line budget
    steps = [s for p in parts for s in fit(_message(msgtype, p))]
    if file_step:
        steps.append(file_step)
    if listed or mention.mobiles:  # markdown ignores mention lists; only a text message carries them
        extra: dict[str, Any] = {}
        if listed:
            extra["mentioned_list"] = listed
        if mention.mobiles:
            extra["mentioned_mobile_list"] = list(mention.mobiles)
        content = truncate_bytes(words["mention"].format(title=title), LIMITS["text"])
        steps.append(_message("text", content, **extra))
    return steps


def _cut(text: str, budget: int) -> str:
    """text cut to at most `budget` UTF-8 bytes, at a line boundary when one is late enough."""
    if utf8_len(text) <= budget:
        return text
    head = truncate_bytes(text, budget, "…")
    line_end = head.rfind("\n")
    return head[:line_end] if line_end >= len(head) // 2 else head


def _file_step(filename: str, markdown: str) -> dict[str, Any]:
    data = markdown.encode("utf-8")
    if len(data) > FILE_MAX:
        data = truncate_bytes(markdown, FILE_MAX - 100, "\n…(truncated)").encode("utf-8")
    return {"kind": "file", "filename": filename, "content": data.decode("utf-8").ljust(6)}


def with_note(steps: list[dict[str, Any]], note: str, msgtype: str) -> tuple[list[dict[str, Any]], int]:
    """steps with note on top of the first message (or as its own message if it would not fit).

    Returns (steps, number of steps inserted) so callers can map progress back to the original steps.
    """
    if not note:
        return steps, 0
    out = [dict(s) for s in steps]
    for i, step in enumerate(out):
        payload = step.get("payload", {})
        kind = payload.get("msgtype")
        if step["kind"] == "message" and kind in LIMITS:
            content = prepend_note(note, payload[kind]["content"])
            if utf8_len(content) <= LIMITS[kind]:
                out[i] = {"kind": "message", "payload": {**payload, kind: {**payload[kind], "content": content}}}
                return out, 0
            break
    return [_message(msgtype, note)] + out, 1


def fit(step: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """The step as messages within the byte limit of its type (itself when it fits): the last guarantee that
    nothing over the limit is ever posted, whatever built it (reports, digests, notes, outbox backlogs)."""
    payload = step.get("payload") or {}
    kind = payload.get("msgtype")
    if step.get("kind") != "message" or kind not in LIMITS:
        return [step]
    content = payload[kind].get("content", "")
    cap = LIMITS[kind] if limit is None else min(limit, LIMITS[kind])
    if utf8_len(content) <= cap and content.strip():
        return [step]
    extra = {k: v for k, v in payload[kind].items() if k != "content"}
    pieces = split_markdown(content, cap) if content.strip() else []
    if not pieces:
        return []
    # Mention lists stay on the last piece only: one notification per person.
    return [_message(kind, p, **(extra if i == len(pieces) - 1 else {})) for i, p in enumerate(pieces)]


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def repair_step(step: dict[str, Any], errcode: int | None) -> list[dict[str, Any]] | None:
    """Replacement messages for one WeCom refused, or None when it cannot be repaired.

    40058 (content too long for the server, e.g. a server counting differently than its documented limit):
    re-split at half the limit. 44004 (empty content / JSON it could not parse): control characters and lone
    surrogates removed; a message with nothing left is dropped (an empty message carries no information).
    """
    payload = step.get("payload") or {}
    kind = payload.get("msgtype")
    if step.get("kind") != "message" or kind not in LIMITS:
        return None
    content = payload[kind].get("content", "")
    if errcode == 40058:
        pieces = fit(step, LIMITS[kind] // 2)
        return pieces if len(pieces) > 1 or pieces != [step] else None
    if errcode == 44004:
        clean = _CONTROL.sub("", content)
        if not clean.strip():
            return []
        if clean == content:
            return None
        return fit({"kind": "message", "payload": {**payload, kind: {**payload[kind], "content": clean}}})
    return None
