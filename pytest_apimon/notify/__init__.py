"""Notifications: the run logic builds one Notification (notify/base.py), each platform's notifier delivers it.

A provider (WeCom, DingTalk, Feishu) implements `Notifier`: it turns the Notification into its own messages,
delivers them with its own limits and error rules, and parks what it could not deliver in the shared Outbox so
the next run sends it first. This package module only builds the notifiers; the platforms import the model from
notify/base.py, never from here (no import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..messages import localize, platform, say
from .base import SEND_ON_CHOICES, DeliveryResult, Notification, Notifier, default_outbox_dir, should_send
from .dingtalk import DingTalkNotifier
from .feishu import FeishuNotifier
from .outbox import Outbox
from .settings import NotifySettings
from .wecom import DeliveryError, WeComNotifier, _Budget

__all__ = ["SEND_ON_CHOICES", "DeliveryResult", "Notification", "Notifier", "WebhookCheck", "build_notifiers",
           "check_webhooks", "default_outbox_dir", "should_send", "test_webhook", "webhook_line"]


def build_notifiers(settings: NotifySettings, outbox_dir: Path | None) -> list[Notifier]:
    """One notifier per configured platform (WeCom, DingTalk, Feishu); [] when notifications are off.

    All share one Outbox (entries are keyed by notifier name and robot name)."""
    outbox = Outbox(outbox_dir, max_entries=settings.outbox_max) if outbox_dir is not None else None
    out: list[Notifier] = []
    for cls, robots in ((WeComNotifier, settings.wecom), (DingTalkNotifier, settings.dingtalk),
                        (FeishuNotifier, settings.feishu)):
        if robots:
            out.append(cls(settings, outbox=outbox))
    return out


@dataclass
class WebhookCheck:
    robot: str
    ok: bool
    answer: str = field(default="")
    platform: str = "WeCom"


def check_webhooks(settings: NotifySettings, *, session: requests.Session | None = None,
                   lang: str = "zh", **notifier_kwargs: Any) -> list[WebhookCheck]:
    """Send one short text message to every robot of every platform; what each answered, in words."""
    checks = []
    for cls in (WeComNotifier, DingTalkNotifier, FeishuNotifier):
        notifier = cls(settings, None, session=session, **notifier_kwargs)
        for robot in notifier._robots():
            try:
                notifier._send_step(robot, notifier.test_step(robot, lang),
                                    _Budget(min(settings.max_wait, 10.0), notifier.sleep))
                error = None
            except DeliveryError as exc:
                error = exc
            answer = say("hook.ok", lang) if error is None else localize(str(error), lang)
            checks.append(WebhookCheck(robot.name, error is None, answer, notifier.label))
    return checks


def test_webhook(settings: NotifySettings, **kwargs: Any) -> str:
    """For --apimon-test-webhook: one line per robot, e.g. "WeCom robot 'default': OK: …"."""
    lang = kwargs.get("lang", "zh")
    if not settings.enabled:
        return say("hook.none", lang)
    return "\n".join(webhook_line(c, lang) for c in check_webhooks(settings, **kwargs))


def webhook_line(check: WebhookCheck, lang: str) -> str:
    """'WeCom robot 'ops': OK: …' / '企业微信机器人「ops」：正常：…'."""
    return say("hook.line", lang, platform=platform(check.platform, lang), robot=check.robot, answer=check.answer)


test_webhook.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name
