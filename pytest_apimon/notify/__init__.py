"""Notifications: the run logic builds one Notification (notify/base.py), each platform's notifier delivers it.

A provider (WeCom, DingTalk, Feishu) implements `Notifier`: it turns the Notification into its own messages,
delivers them with its own limits and error rules, and parks what it could not deliver in the shared Outbox so
the next run sends it first. This package module only builds the notifiers; the platforms import the model from
notify/base.py, never from here (no import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..lazy import lazy_attributes
from ..messages import localize, platform, say
from .base import SEND_ON_CHOICES, DeliveryResult, Notification, Notifier, default_outbox_dir, should_send

if TYPE_CHECKING:
    import requests

    # For type checkers; at run time `__getattr__` imports them.
    from .dingtalk import DingTalkNotifier
    from .feishu import FeishuNotifier
    from .outbox import Outbox
    from .settings import NotifySettings
    from .wecom import DeliveryError, WeComNotifier

__all__ = ["SEND_ON_CHOICES", "DeliveryError", "DeliveryResult", "DingTalkNotifier", "FeishuNotifier", "Notification",
           "Notifier", "NotifySettings", "Outbox", "WeComNotifier", "WebhookCheck", "build_notifiers",
           "check_webhooks", "default_outbox_dir", "should_send", "test_webhook", "webhook_line"]

# The providers are imported when a robot of theirs is configured (build_notifiers) or a name is asked for
# (PEP 562 `__getattr__`): config.py imports notify.settings, and so this package, in every run, most of which
# configure one platform or none (issue 15: start-up CPU).
_HOME = {"DingTalkNotifier": "dingtalk", "FeishuNotifier": "feishu", "Outbox": "outbox", "NotifySettings": "settings",
         "DeliveryError": "wecom", "WeComNotifier": "wecom", "_Budget": "wecom"}
_PLATFORMS = (("WeComNotifier", "wecom"), ("DingTalkNotifier", "dingtalk"), ("FeishuNotifier", "feishu"))


__getattr__ = lazy_attributes(__name__, _HOME, globals())


def _provider(name: str) -> type[WeComNotifier]:
    """A platform's notifier class by its name in _PLATFORMS, imported now if it was not yet (DingTalk's and
    Feishu's derive from WeCom's)."""
    cls: type[WeComNotifier] = __getattr__(name)
    return cls


def build_notifiers(settings: NotifySettings, outbox_dir: Path | None) -> list[Notifier]:
    """One notifier per configured platform (WeCom, DingTalk, Feishu); [] when notifications are off.

    All share one Outbox (entries are keyed by notifier name and robot name)."""
    configured = [name for name, attr in _PLATFORMS if getattr(settings, attr)]
    if not configured:
        return []  # nothing to deliver to: no provider (nor the outbox) is imported
    from .outbox import Outbox

    outbox = Outbox(outbox_dir, max_entries=settings.outbox_max) if outbox_dir is not None else None
    return [_provider(name)(settings, outbox=outbox) for name in configured]


@dataclass
class WebhookCheck:
    robot: str
    ok: bool
    answer: str = field(default="")
    platform: str = "WeCom"


def check_webhooks(settings: NotifySettings, *, session: requests.Session | None = None,
                   lang: str = "zh", **notifier_kwargs: Any) -> list[WebhookCheck]:
    """Send one short text message to every robot of every platform; what each answered, in words."""
    from .wecom import DeliveryError, _Budget

    checks = []
    for name, _attr in _PLATFORMS:
        notifier = _provider(name)(settings, None, session=session, **notifier_kwargs)
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
