"""Provider-neutral notifier interface: the run logic builds one Notification, each notifier delivers it.

A provider (WeCom, DingTalk, Feishu) implements `Notifier`: it turns the
Notification into its own messages, delivers them with its own limits and error rules, and parks
what it could not deliver in the shared Outbox so the next run sends it first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .settings import NotifySettings

SEND_ON_CHOICES = ("failure", "always", "change")


@dataclass(frozen=True)
class Notification:
    title: str  # one line, e.g. "【prod】接口监控：3 个失败"
    markdown: str  # the full report
    summary: str  # a short report (totals + top problems); sent instead of the full report when it is too long
    run_started_at: float  # epoch seconds; shown when the report is delivered late from the outbox
    lang: str = "zh"  # zh | en: language of the notifier's own words (page notes, delayed marker)
    services: tuple[str, ...] = ()  # services that have problems in this run (routing, per-service mentions)
    failed: int = 0  # number of problems; mentions are only sent when > 0
    # The phone-sized first message (report.render_first_screen) and the details that follow it (second
    # message(s), or the attached full report when they would take more than max_messages); "" = send
    # `markdown` as before (watcher messages, old outbox entries).
    first_screen: str = ""
    details: str = ""
    owners: tuple[str, ...] = ()  # owners to @-mention (userids / mobiles / open_ids), already filtered by severity
    mention: bool | None = None  # the robots' own mention lists apply; None: whenever failed > 0
    incident_keys: tuple[str, ...] = ()  # interface keys (service/name) of the problems shown: the robot is told
    # Routing: services -> the report restricted to those services' problems (None: none of them failed).
    # Without it, a routed robot gets the full report when one of its services has problems.
    scope: Callable[[tuple[str, ...]], Notification | None] | None = field(default=None, compare=False, repr=False)
    # Per robot ("wecom/ops", its services) -> what that robot should get (None: nothing). Knows which robots
    # were told about which incident (incidents.py); takes precedence over `scope`.
    route: Callable[[str, tuple[str, ...]], Notification | None] | None = field(default=None, compare=False,
                                                                                 repr=False)

    def for_robot(self, target: str, services: Sequence[str]) -> Notification | None:
        """The view the robot `target` ("<notifier>/<robot name>"), routed to `services`, should get."""
        if self.route is not None:
            return self.route(target, tuple(services))
        return self.for_services(services)

    def for_services(self, services: Sequence[str]) -> Notification | None:
        """The view a robot routed to `services` should get (empty = everything)."""
        if not services:
            return self
        if self.scope is not None:
            return self.scope(tuple(services))
        return self if set(services) & set(self.services) else None


@dataclass
class DeliveryResult:
    notifier: str
    delivered: bool = True  # every message of this run's report reached every target
    messages_sent: int = 0  # accepted messages, outbox re-deliveries included
    redelivered: int = 0  # outbox entries from earlier runs delivered now
    stored_in_outbox: bool = False  # something was parked for the next run
    errors: list[str] = field(default_factory=list)  # actionable, secret-free lines for the log/terminal


@runtime_checkable
class Notifier(Protocol):
    name: str

    def send(self, notification: Notification) -> DeliveryResult:
        """Deliver the outbox backlog, then this notification. Never raises for delivery problems."""
        ...

    def flush(self) -> DeliveryResult:
        """Deliver only the outbox backlog (a run that does not send its own report)."""
        ...

    def dry_run(self, notification: Notification) -> list[dict]:
        """What send() would post, without any network access."""
        ...


def should_send(send_on: str, failed_count: int, changed: bool) -> bool:
    """Requirement 3: failure -> only runs with problems; always -> every run; change -> outcome changed."""
    if send_on == "always":
        return True
    if send_on == "change":
        return changed
    if send_on == "failure":
        return failed_count > 0
    raise ValueError(f"send_on must be one of {', '.join(SEND_ON_CHOICES)}, got {send_on!r}")


def default_outbox_dir(config_dir: Path) -> Path:
    return Path(config_dir) / ".apimon" / "outbox"


def build_notifiers(settings: NotifySettings, outbox_dir: Path | None) -> list[Notifier]:
    """One notifier per configured platform (WeCom, DingTalk, Feishu); [] when notifications are off.

    All share one Outbox (entries are keyed by notifier name and robot name)."""
    from .dingtalk import DingTalkNotifier
    from .feishu import FeishuNotifier
    from .outbox import Outbox
    from .wecom import WeComNotifier

    outbox = Outbox(outbox_dir, max_entries=settings.outbox_max) if outbox_dir is not None else None
    out: list[Notifier] = []
    for cls, robots in ((WeComNotifier, settings.wecom), (DingTalkNotifier, settings.dingtalk),
                        (FeishuNotifier, settings.feishu)):
        if robots:
            out.append(cls(settings, outbox=outbox))
    return out
