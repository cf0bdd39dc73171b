"""DingTalk (钉钉) custom group robot behind the shared Notifier: same message model, routing and outbox as WeCom.

Rules from DingTalk's custom-robot documentation (open.dingtalk.com/document/robots/custom-robot-access and
…/customize-robot-security-settings):
- POST {base}/robot/send?access_token=TOKEN with a JSON body; errors come back as HTTP 200 with errcode != 0;
- 20 messages a minute per robot; beyond that errcode 130101 ("send too fast") and a ten-minute block;
- markdown messages: {"msgtype": "markdown", "markdown": {"title", "text"}, "at": {...}}; a person is
  @-mentioned only when `at.atMobiles`/`at.atUserIds` names them *and* the text contains "@<mobile/userid>";
- signing (加签): timestamp in milliseconds, sign = urlencode(base64(HMAC-SHA256(key=secret,
  msg=f"{timestamp}\\n{secret}"))), both appended to the URL; the timestamp must be within an hour of the
  server's clock, so it is computed at every post, never stored in the outbox;
- the message body is limited to 20 000 bytes (errcode 460101 "message too long").
Custom robots cannot upload files, so a report too long for `max_messages` parts is sent as its summary with a
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
from urllib.parse import quote_plus

from .base import Notification
from .layout import plan
from .settings import DingTalkRobot, mention_for
from .split import prepend_note, split_markdown, utf8_len
from .wecom import DeliveryError, WeComNotifier, _Budget
from .wecom_messages import words_for

TEXT_LIMIT = 20000  # bytes of markdown.text (errcode 460101 beyond)
SPLIT_BUDGET = 18000  # room for the title, the mention line and JSON escaping

# errcode -> (kind, advice). kind "key": fix the robot settings, the outbox delivers later; "content": never retried.
PERMANENT = {
    300001: ("key", "the access_token is invalid or the robot was removed; copy the webhook URL again from the "
                    "group's robot settings into notify.dingtalk[].webhook"),
    310000: ("key", "the robot's security settings refused the message (signature mismatch: check "
                    "notify.dingtalk[].secret and the machine's clock; or a required keyword is missing; or this "
                    "machine's IP is not in the robot's allow-list)"),
    460101: ("content", "a message is longer than DingTalk accepts; this is a pytest-apimon splitting bug, please "
                        "report it with the --apimon-dry-run output"),
    40035: ("content", "DingTalk says a required parameter is missing or invalid"),
    43004: ("content", "DingTalk refused the request's content type"),
}


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` URL parameter of DingTalk's 加签 security setting (already URL-encoded)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def _plain(markdown: str) -> str:
    """The report's Markdown as DingTalk renders it: no <font>/<@id> markup, hard line breaks kept."""
    text = re.sub(r"</?font\b[^>]*>|<@[^>\n]+>", "", markdown)
    return "\n".join(line + "  " if line.strip() and not line.lstrip().startswith("#") else line
                     for line in text.split("\n")).rstrip()


def build_steps(robot: DingTalkRobot, n: Notification, max_messages: int) -> list[dict[str, Any]]:
    """The JSON-able steps (markdown messages) delivering n to robot; mentions on the first message."""
    words = words_for(n.lang)
    mention = mention_for(robot, n)
    everyone = "@all" in mention.userids or "@all" in mention.mobiles
    people = [m for m in mention.mobiles if m != "@all"], [u for u in mention.userids if u != "@all"]
    at_line = " ".join(f"@{x}" for x in (*people[0], *people[1]))
    title = n.title.strip() or "pytest-apimon"
    reserve = utf8_len(" " + at_line) if at_line else 0
    if n.first_screen:
        layout = plan(n, SPLIT_BUDGET, max_messages, can_attach=False, reserve_first=reserve)
        parts = [_plain(p) for p in [layout.first, *layout.details]]
    else:
        parts = split_markdown(_plain(n.markdown) or title, SPLIT_BUDGET, title=title, reserve_first=reserve)
    if len(parts) > max_messages:
        summary = _plain(n.summary).rstrip() + "\n\n" + words["no_file"].format(n=len(parts))
        parts = split_markdown(summary, SPLIT_BUDGET, title=title, reserve_first=reserve)[:max_messages]
    steps = []
    for i, part in enumerate(parts):
        at: dict[str, Any] = {}
        if i == 0 and (at_line or everyone):
            part = part.rstrip() + " " + at_line if at_line else part  # same line: the first screen stays short
            at = {"atMobiles": people[0], "atUserIds": people[1], "isAtAll": everyone}
        payload: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": title[:60], "text": part}}
        if at:
            payload["at"] = at
        steps.append({"kind": "message", "payload": payload})
    return steps


def with_note(steps: list[dict[str, Any]], note: str, title: str = "pytest-apimon") -> tuple[list[dict[str, Any]], int]:
    """steps with note on top of the first message (or as its own message if it would not fit)."""
    if not note:
        return steps, 0
    out = [dict(s) for s in steps]
    if out:
        payload = out[0]["payload"]
        text = prepend_note(note, payload["markdown"]["text"], "  \n")
        if utf8_len(text) <= TEXT_LIMIT:
            out[0] = {"kind": "message", "payload": {**payload, "markdown": {**payload["markdown"], "text": text}}}
            return out, 0
    first = {"kind": "message", "payload": {"msgtype": "markdown", "markdown": {"title": title, "text": note}}}
    return [first, *out], 1


class DingTalkNotifier(WeComNotifier):
    """DingTalk custom robots: WeComNotifier's delivery with DingTalk's messages, signature and error codes."""

    name = "dingtalk"
    label = "DingTalk"
    rate_windows = ((20, 60.0),)
    rate_codes = frozenset({130101})
    busy_codes = frozenset({-1})

    def __init__(self, *args: Any, wall: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wall = wall  # signatures need the real time of day, not the pacing clock

    def _robots(self) -> tuple[Any, ...]:
        return self.settings.dingtalk

    def _steps(self, robot: Any, view: Notification) -> list[dict[str, Any]]:
        return build_steps(robot, view, self.settings.max_messages)

    def _noted(self, steps: list[dict[str, Any]], note: str, robot: Any) -> tuple[list[dict[str, Any]], int]:
        return with_note(steps, note)

    def _url(self, robot: DingTalkRobot) -> str:
        if not robot.secret:
            return robot.send_url
        stamp = int(self.wall() * 1000)
        return f"{robot.send_url}&timestamp={stamp}&sign={sign(robot.secret, stamp)}"

    def _fit(self, step: dict[str, Any]) -> list[dict[str, Any]]:
        return [step]  # built within this platform's limits by build_steps; nothing to re-fit

    def _repair(self, step: dict[str, Any], errcode: int | None) -> list[dict[str, Any]] | None:
        return None  # no WeCom-style re-split: a refused message is kept in rejected/ for a human

    def _send_step(self, robot: Any, step: dict[str, Any], budget: _Budget) -> None:
        body = json.dumps(step["payload"], ensure_ascii=False).encode("utf-8")
        self._call(robot, self._url(robot), body, {"Content-Type": "application/json; charset=utf-8"}, budget,
                   paced=True)

    def _permanent(self, code: int, errmsg: str) -> DeliveryError:
        kind, advice = PERMANENT.get(code, ("unknown", "not retried; see DingTalk's custom-robot error codes"))
        return DeliveryError(f"DingTalk answered errcode {code} ({errmsg}): {advice}", kind, code)

    def test_step(self, robot: Any, lang: str) -> dict[str, Any]:
        text = words_for(lang)["test"].format(name=robot.name)
        return {"kind": "message", "payload": {"msgtype": "text", "text": {"content": text}}}
