"""The provider-neutral notifier model: the Notification the run logic builds and the Notifier interface.

A provider (WeCom, DingTalk, Feishu) implements `Notifier`: it turns the
Notification into its own messages, delivers them with its own limits and error rules, and parks
what it could not deliver in the shared Outbox so the next run sends it first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..messages import say

if TYPE_CHECKING:
    pass

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
    delivered: bool = True  # every message of this run's own report reached every target
    messages_sent: int = 0  # accepted messages, outbox re-deliveries included
    redelivered: int = 0  # outbox entries from earlier runs delivered now
    stored_in_outbox: bool = False  # something is still in the outbox for the next run
    errors: list[str] = field(default_factory=list)  # actionable, secret-free lines for the log/terminal
    own: int = 0  # reports (one per target) this run had to deliver itself (0: a backlog-only flush)
    pending: int = 0  # reports left in the outbox for the next run (this run's and older ones)
    rejected: int = 0  # reports refused for their content even after repair, kept in the outbox's rejected/
    discarded: int = 0  # outbox reports of runs interrupted before they were recorded (announced again instead)

    def describe(self, lang: str = "en") -> str:
        """One truthful terminal line in lang, e.g. 'wecom: NOT delivered: 1 report(s) kept in the outbox …'
        ('wecom：未送达，…' in zh)."""
        parts = []
        if self.own:
            parts.append(say("deliver.delivered" if self.delivered else "deliver.not_delivered", lang))
        elif self.pending or self.rejected:
            parts.append(say("deliver.backlog_not", lang))
        else:
            parts.append(say("deliver.backlog" if self.redelivered else "deliver.nothing", lang))
        parts.append(say("deliver.accepted", lang, n=self.messages_sent))
        if self.redelivered:
            parts.append(say("deliver.redelivered", lang, n=self.redelivered))
        if self.pending:
            parts.append(say("deliver.pending", lang, n=self.pending))
        if self.rejected:
            parts.append(say("deliver.rejected", lang, n=self.rejected))
        if lang == "zh":
            return f"{_NOTIFIER_ZH.get(self.notifier, self.notifier)}：" + "，".join(parts)
        return f"{self.notifier}: " + ", ".join(parts)


_NOTIFIER_ZH = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}


@runtime_checkable
class Notifier(Protocol):
    name: str

    def send(self, notification: Notification) -> DeliveryResult:
        """Deliver the outbox backlog, then this notification. Never raises for delivery problems."""
        ...

    def stage(self, notification: Notification, *, awaiting_run: str = "") -> list:
        """Write-ahead: store the rendered messages in the outbox before any send attempt (see outbox.py)."""
        ...

    def confirm(self, entries: list) -> None:
        """The run that staged `entries` is recorded: they may be delivered."""
        ...

    def flush(self, *, staged: list | None = None, committed: Callable | None = None) -> DeliveryResult:
        """Deliver the outbox backlog, oldest first (this run's staged report included). Never raises."""
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


