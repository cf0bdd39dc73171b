"""Feishu (飞书) custom group robot behind the shared Notifier: same message model, routing and outbox as WeCom.

Rules from Feishu's custom-bot guide (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot):
- POST {base}/open-apis/bot/v2/hook/TOKEN with a JSON body; errors come back as HTTP 200 with `code` != 0
  (older answers carry `StatusCode` instead);
- at most 100 requests a minute and 5 a second per robot (code 11232 when limited);
- the request body must not exceed 20 KB;
- signing (签名校验): timestamp in seconds, sign = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")),
  both put into the JSON body; the timestamp must be within an hour of the server's clock, so it is added at
  every post, never stored in the outbox;
- reports go as an `interactive` card whose `markdown` element renders bold, links, lists, <font color> and
  `<at id=…></at>` mentions (open_id / user_id, or `all`); headings and quotes are not part of that subset.
Custom bots cannot upload files, so a report too long for `max_messages` parts is sent as its summary with a
pointer to the status page / report file instead of an attachment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any

import requests

from .base import Notification
from .layout import plan
from .settings import FeishuRobot, mention_for
from .split import prepend_note, split_markdown, utf8_len
from .wecom import DeliveryError, WeComNotifier, _BadAnswer, _Budget, json_answer
from .wecom_messages import words_for

BODY_LIMIT = 20 * 1024  # bytes of the whole request body
SPLIT_BUDGET = 15000  # content bytes per card: room for the card frame, signature and JSON escaping

PERMANENT = {
    19001: ("key", "the hook token is invalid or the bot was removed; copy the webhook URL again from the group's "
                   "bot settings into notify.feishu[].webhook"),
    19021: ("key", "signature check failed: check notify.feishu[].secret and the machine's clock (the timestamp "
                   "must be within an hour)"),
    19022: ("key", "this machine's IP is not in the bot's allow-list"),
    19024: ("key", "the bot's keyword setting refused the message: add the keyword to the report title "
                   "(report.title) or remove the keyword check"),
    9499: ("content", "Feishu refused the request as malformed or too large (20 KB body limit); this is a "
                      "pytest-apimon bug, please report it with the --apimon-dry-run output"),
}
_COLORS = {"warning": "red", "info": "green", "comment": "grey"}


def sign(secret: str, timestamp_s: int) -> str:
    """The `sign` body field of Feishu's 签名校验 security setting."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _card_markdown(markdown: str) -> str:
    """The report's Markdown in the card subset: headings become bold lines, quotes plain, colours mapped."""
    text = re.sub(r'<font color="(\w+)">', lambda m: f"<font color='{_COLORS.get(m.group(1), 'grey')}'>",
                  markdown)
    text = re.sub(r"<@[^>\n]+>", "", text)
    lines = []
    for line in text.split("\n"):
        heading = re.match(r"\s*#{1,6}\s+(.*)", line)
        if heading:
            line = f"**{heading.group(1).strip()}**"
        elif line.startswith(">"):
            line = line.lstrip("> ").rstrip()
        lines.append(line)
    return "\n".join(lines).strip("\n")


def _card(title: str, content: str, failed: bool) -> dict[str, Any]:
    return {"msg_type": "interactive", "card": {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": title[:100]}, "template": "red" if failed else "green"},
        "elements": [{"tag": "markdown", "content": content}]}}


def card_content(payload: dict[str, Any]) -> str:
    """The markdown of a card payload built by build_steps."""
    return str(payload["card"]["elements"][0]["content"])


def build_steps(robot: FeishuRobot, n: Notification, max_messages: int) -> list[dict[str, Any]]:
    """The JSON-able steps (one card per message) delivering n to robot; mentions on the first card."""
    words = words_for(n.lang)
    mention = mention_for(robot, n)
    ids = ["all" if u == "@all" else u for u in mention.userids]  # Feishu bots cannot mention by mobile
    at_line = " ".join(f"<at id={u}></at>" for u in ids)
    title = n.title.strip() or "pytest-apimon"
    reserve = utf8_len(" " + at_line) if at_line else 0
    if n.first_screen:
        layout = plan(n, SPLIT_BUDGET, max_messages, can_attach=False, reserve_first=reserve)
        parts = [_card_markdown(p) for p in [layout.first, *layout.details]]
    else:
        parts = split_markdown(_card_markdown(n.markdown) or title, SPLIT_BUDGET, title=title,
                               reserve_first=reserve)
    if len(parts) > max_messages:
        summary = _card_markdown(n.summary).rstrip() + "\n\n" + words["no_file"].format(n=len(parts))
        parts = split_markdown(summary, SPLIT_BUDGET, title=title, reserve_first=reserve)[:max_messages]
    if at_line and parts:
        parts[0] += " " + at_line  # same line: the first screen stays short
    return [{"kind": "message", "payload": _card(title, part, n.failed > 0)} for part in parts]


def with_note(steps: list[dict[str, Any]], note: str) -> tuple[list[dict[str, Any]], int]:
    """steps with note on top of the first card (or its own card); returns (steps, cards inserted)."""
    if not note:
        return steps, 0
    out = [json.loads(json.dumps(s)) for s in steps]  # deep copy: the card is nested
    if out:
        element = out[0]["payload"]["card"]["elements"][0]
        if utf8_len(note + "\n" + element["content"]) <= SPLIT_BUDGET + 1000:
            element["content"] = prepend_note(note, element["content"])
            return out, 0
    return [{"kind": "message", "payload": _card("pytest-apimon", note, False)}] + out, 1


class FeishuNotifier(WeComNotifier):
    """Feishu custom bots: WeComNotifier's delivery with Feishu's messages, signature, answers and rates."""

    name = "feishu"
    label = "Feishu"
    rate_windows = ((100, 60.0), (5, 1.0))
    rate_codes = frozenset({11232, 99991400})
    busy_codes = frozenset({-1})

    def __init__(self, *args: Any, wall: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wall = wall  # signatures need the real time of day, not the pacing clock

    def _robots(self) -> tuple[Any, ...]:
        return self.settings.feishu

    def _steps(self, robot: Any, view: Notification) -> list[dict[str, Any]]:
        return build_steps(robot, view, self.settings.max_messages)

    def _noted(self, steps: list[dict[str, Any]], note: str, robot: Any) -> tuple[list[dict[str, Any]], int]:
        return with_note(steps, note)

    def _fit(self, step: dict[str, Any]) -> list[dict[str, Any]]:
        return [step]  # built within this platform's limits by build_steps; nothing to re-fit

    def _repair(self, step: dict[str, Any], errcode: int | None) -> list[dict[str, Any]] | None:
        return None  # no WeCom-style re-split: a refused message is kept in rejected/ for a human

    def _send_step(self, robot: Any, step: dict[str, Any], budget: _Budget) -> None:
        payload = dict(step["payload"])
        if robot.secret:
            stamp = int(self.wall())
            payload = {"timestamp": str(stamp), "sign": sign(robot.secret, stamp), **payload}
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        if len(body) > BODY_LIMIT:
            raise DeliveryError(f"a message is {len(body)} bytes, over Feishu's 20 KB limit; this is a pytest-apimon "
                                "splitting bug", "content")
        self._call(robot, robot.send_url, body, {"Content-Type": "application/json; charset=utf-8"}, budget,
                   paced=True)

    def _answer(self, response: requests.Response) -> tuple[int, str, dict[str, Any]]:
        if response.status_code == 429:  # the open platform's generic limiter answers 429
            return 99991400, "request trigger frequency limit", {}
        answer = json_answer(response)
        code = answer.get("code", answer.get("StatusCode"))
        if not isinstance(code, int):
            raise _BadAnswer("the answer has no code")
        return code, str(answer.get("msg") or answer.get("StatusMessage") or ""), answer

    def _permanent(self, code: int, errmsg: str) -> DeliveryError:
        kind, advice = PERMANENT.get(code, ("unknown", "not retried; see Feishu's custom-bot error codes"))
        return DeliveryError(f"Feishu answered code {code} ({errmsg}): {advice}", kind, code)

    def test_step(self, robot: Any, lang: str) -> dict[str, Any]:
        text = words_for(lang)["test"].format(name=robot.name)
        return {"kind": "message", "payload": {"msg_type": "text", "content": {"text": text}}}
