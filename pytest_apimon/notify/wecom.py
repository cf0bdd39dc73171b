"""WeCom (企业微信) group robot: report -> messages within the API's limits -> delivery that loses nothing.

Rules from the API notes (shared/notes/wecom-api.md): errors come back as HTTP 200 with errcode != 0;
markdown content <= 4096 UTF-8 bytes, text <= 2048; 20 messages a minute per robot (45009 beyond);
`<@userid>` works inline in markdown (not markdown_v2), mobiles and @all only via a `text` message's
mention lists; files go through upload_media (multipart part 'media') and then a `file` message.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from . import DeliveryResult, Notification
from .outbox import Outbox, OutboxEntry
from .settings import NotifySettings, WeComRobot, mask_key
from .split import utf8_len
from .wecom_messages import LIMITS, WORDS, build_steps, fmt_time, with_note, words_for

__all__ = ["LIMITS", "WORDS", "DeliveryError", "WeComNotifier", "build_steps", "check_webhooks", "format_dry_run",
           "test_webhook", "with_note"]

log = logging.getLogger("pytest_apimon.notify.wecom")

RATE_PER_MINUTE, RATE_WINDOW_S = 20, 60.0  # per robot key
RETRIES = 3  # for -1 and network errors, as the error-code docs advise

# errcode -> (kind, what to do). kind "key": fix the key and the outbox delivers later; "content": resending
# the same message can never work, so it is neither retried nor stored.
PERMANENT = {
    93000: ("key", "the webhook key is invalid or the robot was removed from the group; copy the key again from "
                   "the group's robot settings (the part after 'key=' in …/cgi-bin/webhook/send?key=…) into "
                   "notify.wecom[].webhook"),
    40008: ("content", "WeCom does not accept this message type (msgtype must be lowercase: markdown, markdown_v2, "
                       "text, file); check notify.wecom[].message_type"),
    40058: ("content", "a message is longer than WeCom accepts; this is a pytest-apimon splitting bug, please "
                       "report it with the --apimon-dry-run output"),
    44004: ("content", "WeCom received empty content or JSON it could not parse"),
    40007: ("content", "WeCom refused the uploaded file's media_id (it expires after 3 days and works only for the "
                       "robot that uploaded it)"),
    40004: ("content", "WeCom refused the upload's media type"),
    40005: ("content", "WeCom refused the upload type (must be file or voice)"),
    40006: ("content", "WeCom refused the file size (must be 6 bytes to 20 MB)"),
    44001: ("content", "WeCom received an empty file"),
}


class DeliveryError(Exception):
    def __init__(self, message: str, kind: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.errcode = kind, errcode  # kind: transient | rate | key | content | unknown

    @property
    def storable(self) -> bool:
        """Worth keeping for the next run (a later attempt can succeed)."""
        return self.kind != "content"


class _BadAnswer(Exception):
    pass


class Pacer:
    """Sliding window of send times per robot key: at most 20 in any 60 s."""

    def __init__(self, clock: Callable[[], float], limit: int = RATE_PER_MINUTE, window: float = RATE_WINDOW_S):
        self.clock, self.limit, self.window = clock, limit, window
        self.sent: deque[float] = deque()

    def wait(self) -> float:
        now = self.clock()
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.limit else self.sent[0] + self.window - now

    def record(self) -> None:
        self.sent.append(self.clock())


@dataclass
class _Budget:
    """All sleeping one delivery may do, so a run never hangs on WeCom."""

    limit: float
    sleep: Callable[[float], None]
    spent: float = 0.0

    def take(self, seconds: float) -> bool:
        if self.spent + seconds > self.limit + 1e-9:
            return False
        self.spent += seconds
        if seconds > 0:
            self.sleep(seconds)
        return True


class WeComNotifier:
    """WeCom group robots. DingTalk and Feishu (notify/dingtalk.py, notify/feishu.py) subclass it and override
    the platform hooks (`_robots`, `_steps`, `_noted`, `_post_step`, `_answer`, the rate and error tables), so
    the outbox, pacing, retries and the wait budget are one implementation for every platform."""

    name = "wecom"
    label = "WeCom"  # the platform's name in log lines
    rate_windows: tuple[tuple[int, float], ...] = ((RATE_PER_MINUTE, RATE_WINDOW_S),)  # (sends, seconds) per robot
    rate_codes: frozenset[int] = frozenset({45009})  # "too many messages": wait for the window, then resend
    busy_codes: frozenset[int] = frozenset({-1})  # transient: retried with backoff

    def __init__(self, settings: NotifySettings, outbox: Outbox | None = None, *,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, rate_limit_wait: float = 61.0,
                 backoff: float = 1.0) -> None:
        self.settings, self.outbox = settings, outbox
        self.session = session or requests.Session()
        self.clock, self.sleep = clock, sleep
        self.rate_limit_wait, self.backoff = rate_limit_wait, backoff
        self._pacers: dict[str, list[Pacer]] = {}

    # ---- platform hooks

    def _robots(self) -> tuple[Any, ...]:
        return self.settings.wecom

    def targets(self) -> list[tuple[str, tuple[str, ...]]]:
        """("<notifier>/<robot>", routed services) of every robot: the identities incidents.py remembers."""
        return [(f"{self.name}/{r.name}", tuple(r.services)) for r in self._robots()]

    def _steps(self, robot: Any, view: Notification) -> list[dict[str, Any]]:
        return build_steps(robot, view, self.settings.max_messages)

    def _noted(self, steps: list[dict[str, Any]], note: str, robot: Any) -> tuple[list[dict[str, Any]], int]:
        return with_note(steps, note, robot.message_type)

    def test_step(self, robot: Any, lang: str) -> dict[str, Any]:
        """The one short message --apimon-test-webhook sends."""
        return {"kind": "message", "payload": {"msgtype": "text", "text": {
            "content": words_for(lang)["test"].format(name=robot.name)}}}

    # ---- public

    def send(self, notification: Notification) -> DeliveryResult:
        return self._deliver(notification)

    def flush(self) -> DeliveryResult:
        return self._deliver(None)

    def dry_run(self, notification: Notification) -> list[dict[str, Any]]:
        """Everything send() would post, in order, without network access (outbox backlog first)."""
        items: list[dict[str, Any]] = []
        for robot in self._robots():
            backlog = self.outbox.pending(self.name, robot.name) if self.outbox else []
            for entry in backlog:
                steps, _ = self._noted(entry.steps, self._delayed_note(entry), robot)
                items += self._describe(robot, steps, from_outbox=True)
            view = notification.for_robot(f"{self.name}/{robot.name}", robot.services)
            if view is not None:
                items += self._describe(robot, self._steps(robot, view))
        return items

    def _describe(self, robot: Any, steps: list[dict[str, Any]], from_outbox: bool = False,
                  ) -> list[dict[str, Any]]:
        base: dict[str, Any] = {"robot": robot.name, "notifier": self.name,
                                **({"from_outbox": True} if from_outbox else {})}
        out: list[dict[str, Any]] = []
        for step in steps:
            if step["kind"] == "file":
                out.append({**base, "endpoint": "upload_media", "type": "file", "filename": step["filename"],
                            "bytes": utf8_len(step["content"])})
                out.append({**base, "endpoint": "send",
                            "payload": {"msgtype": "file", "file": {"media_id": "<media_id from upload_media>"}}})
            else:
                out.append({**base, "endpoint": "send", "payload": step["payload"]})
        return out

    # ---- delivery

    def _deliver(self, n: Notification | None) -> DeliveryResult:
        result = DeliveryResult(self.name)
        budget = _Budget(self.settings.max_wait, self.sleep)
        names = {r.name for r in self._robots()}
        orphans = [e for e in (self.outbox.pending(self.name) if self.outbox else []) if e.target not in names]
        if orphans:
            result.errors.append(f"the outbox holds {len(orphans)} report(s) for {self.label} robots that are "
                                 f"no longer configured ({', '.join(sorted({e.target for e in orphans}))}); they "
                                 f"stay in {self.outbox.directory if self.outbox else ''}")
        for robot in self._robots():
            blocked = self._flush_robot(robot, budget, result)
            view = n.for_robot(f"{self.name}/{robot.name}", robot.services) if n is not None else None
            if view is None:
                continue
            steps = self._steps(robot, view)
            if blocked:  # keep the order: this report waits behind the older ones
                result.delivered = False
                self._store(robot, view, steps, "older reports for this robot are still undelivered", result)
                continue
            noted, inserted = self._noted(steps, self._dropped_note(robot, view.lang), robot)
            done, error = self._run(robot, noted, budget, result)
            if error is None:
                self._clear_dropped(robot)
                continue
            result.delivered = False
            result.errors.append(f"{self.label} robot '{robot.name}': {error}")  # the caller logs result.errors
            if error.storable:
                self._store(robot, view, steps[max(done - inserted, 0):], str(error), result)
        return result

    def _flush_robot(self, robot: Any, budget: _Budget, result: DeliveryResult) -> bool:
        """Deliver this robot's backlog, oldest first. True if some of it is still pending (robot blocked)."""
        for entry in self.outbox.pending(self.name, robot.name) if self.outbox else []:
            note = self._delayed_note(entry)
            dropped = self._dropped_note(robot, entry.lang)
            steps, inserted = self._noted(entry.steps, note + ("\n" + dropped if dropped else ""), robot)
            done, error = self._run(robot, steps, budget, result)
            assert self.outbox is not None
            if error is None:
                self.outbox.remove(entry)
                self._clear_dropped(robot)
                result.redelivered += 1
                continue
            when = fmt_time(entry.run_started_at)
            if error.kind in ("content", "unknown"):  # can never succeed: drop it rather than block newer reports
                self.outbox.remove(entry)
                result.errors.append(f"{self.label} robot '{robot.name}': dropped the stored report from {when}: "
                                     f"{error}")
                continue
            entry.steps = entry.steps[max(done - inserted, 0):]
            entry.attempts += 1
            entry.reason = str(error)
            self.outbox.update(entry)
            result.errors.append(f"{self.label} robot '{robot.name}': the stored report from {when} is still "
                                 f"undelivered: {error}")
            return True
        return False

    def _store(self, robot: Any, n: Notification, steps: list[dict[str, Any]], reason: str,
               result: DeliveryResult) -> None:
        if not steps:
            return
        if self.outbox is None:
            result.errors.append(f"{self.label} robot '{robot.name}': no outbox configured, the report is lost")
            return
        entry = OutboxEntry(notifier=self.name, target=robot.name, run_started_at=n.run_started_at,
                            title=n.title, lang=n.lang, steps=steps, reason=reason)
        try:
            path = self.outbox.put(entry)
        except OSError as exc:
            result.errors.append(f"{self.label} robot '{robot.name}': could not store the report in the outbox: {exc}")
            return
        result.stored_in_outbox = True
        log.warning("%s robot '%s': report stored in %s for the next run", self.label, robot.name, path)

    def _delayed_note(self, entry: OutboxEntry) -> str:
        return words_for(entry.lang)["delayed"].format(t=fmt_time(entry.run_started_at))

    def _dropped_note(self, robot: Any, lang: str) -> str:
        count = self.outbox.dropped(self.name, robot.name) if self.outbox else 0
        return words_for(lang)["dropped"].format(n=count) if count else ""

    def _clear_dropped(self, robot: Any) -> None:
        if self.outbox is not None:
            self.outbox.clear_dropped(self.name, robot.name)

    def _run(self, robot: Any, steps: list[dict[str, Any]], budget: _Budget,
             result: DeliveryResult) -> tuple[int, DeliveryError | None]:
        """Deliver steps in order; (steps completed, the error that stopped it or None)."""
        for done, step in enumerate(steps):
            try:
                self._post_step(robot, step, budget)
            except DeliveryError as exc:
                return done, exc
            result.messages_sent += 1
        return len(steps), None

    def _post_step(self, robot: Any, step: dict[str, Any], budget: _Budget) -> None:
        if step["kind"] == "file":
            media_id = self._upload(robot, step["filename"], step["content"].encode("utf-8"), budget)
            payload = {"msgtype": "file", "file": {"media_id": media_id}}
        else:
            payload = step["payload"]
        self._call(robot, robot.send_url, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                   {"Content-Type": "application/json; charset=utf-8"}, budget, paced=True)

    def _upload(self, robot: WeComRobot, filename: str, data: bytes, budget: _Budget) -> str:
        boundary = "apimon" + secrets.token_hex(12)
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="{filename}"; '
                f"filelength={len(data)}\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + data + \
            f"\r\n--{boundary}--\r\n".encode()
        answer = self._call(robot, robot.upload_url("file"), body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"}, budget, paced=False)
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise DeliveryError("upload_media answered without a media_id", kind="transient")
        return media_id

    def _answer(self, response: requests.Response) -> tuple[int, str, dict[str, Any]]:
        """(error code, message, the whole answer) of an HTTP answer; raises _BadAnswer when it is none."""
        answer = _parse(response)
        return answer["errcode"], str(answer.get("errmsg", "")), answer

    def _permanent(self, code: int, errmsg: str) -> DeliveryError:
        return _permanent(code, errmsg)

    def _call(self, robot: Any, url: str, body: bytes, headers: dict[str, str], budget: _Budget,
              paced: bool) -> dict[str, Any]:
        pacers = self._pacers.setdefault(robot.key, [Pacer(self.clock, n, w) for n, w in self.rate_windows])
        attempt = 0
        while True:
            wait = max(p.wait() for p in pacers) if paced else 0.0
            if wait > 0 and not budget.take(wait):
                limits = " and ".join(f"{n} messages per {w:g}s" for n, w in self.rate_windows)
                raise DeliveryError(f"pacing to {limits} would exceed the "
                                    f"{self.settings.max_wait:g}s wait bound (notify.max_wait)", kind="rate")
            code: int | None = None
            try:
                response = self.session.post(url, data=body, headers=headers, timeout=self.settings.timeout)
                if paced:
                    for p in pacers:
                        p.record()  # failed sends are said to count toward the limit too
                code, raw_msg, answer = self._answer(response)
            except (requests.RequestException, _BadAnswer) as exc:
                problem = f"cannot reach {self.label} ({_scrub(exc, robot)})"
            else:
                errmsg = _scrub(raw_msg, robot)
                if code == 0:
                    return answer
                if code in self.rate_codes:
                    for p in pacers:  # the server says the window is full
                        p.sent.extend([self.clock()] * p.limit)
                    if budget.take(self.rate_limit_wait):
                        continue
                    raise DeliveryError(f"{self.label} rate limit ({code} {errmsg.split(', hint:')[0]}) persisted "
                                        f"past the {self.settings.max_wait:g}s wait bound (notify.max_wait)",
                                        "rate", code)
                if code not in self.busy_codes:
                    raise self._permanent(code, errmsg)
                problem = f"{self.label} is busy (errcode {code}: {errmsg})"
            if attempt >= RETRIES:
                raise DeliveryError(f"{problem}; gave up after {RETRIES} retries", "transient", code)
            if not budget.take(self.backoff * 2**attempt):
                raise DeliveryError(f"{problem}; no time left to retry within notify.max_wait", "transient", code)
            attempt += 1


def _parse(response: requests.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise _BadAnswer(f"HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise _BadAnswer("the answer is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("errcode"), int):
        raise _BadAnswer("the answer has no errcode")
    return answer


def _scrub(text: Any, robot: Any) -> str:
    out = str(text).replace(robot.key, mask_key(robot.key))
    secret = getattr(robot, "secret", None)
    return out.replace(secret, mask_key(secret)) if secret else out


def _permanent(code: int, errmsg: str) -> DeliveryError:
    short = errmsg.split(", hint:")[0].strip()
    kind, advice = PERMANENT.get(code, ("unknown", "not retried; see https://open.work.weixin.qq.com/devtool/query"
                                                   f"?e={code}"))
    return DeliveryError(f"WeCom answered errcode {code} ({short}): {advice}", kind, code)


@dataclass
class WebhookCheck:
    robot: str
    ok: bool
    answer: str = field(default="")
    platform: str = "WeCom"


def check_webhooks(settings: NotifySettings, *, session: requests.Session | None = None,
                   lang: str = "zh", **notifier_kwargs: Any) -> list[WebhookCheck]:
    """Send one short text message to every robot of every platform; what each answered, in words."""
    from .dingtalk import DingTalkNotifier
    from .feishu import FeishuNotifier

    checks = []
    for cls in (WeComNotifier, DingTalkNotifier, FeishuNotifier):
        notifier = cls(settings, None, session=session, **notifier_kwargs)
        for robot in notifier._robots():
            result = DeliveryResult(notifier.name)
            _, error = notifier._run(robot, [notifier.test_step(robot, lang)],
                                     _Budget(min(settings.max_wait, 10.0), notifier.sleep), result)
            answer = "OK: the test message was accepted (errcode 0, ok)" if error is None else str(error)
            checks.append(WebhookCheck(robot.name, error is None, answer, notifier.label))
    return checks


def test_webhook(settings: NotifySettings, **kwargs: Any) -> str:
    """For --apimon-test-webhook: one line per robot, e.g. "WeCom robot 'default': OK: …"."""
    if not settings.enabled:
        return "no robot configured (notify.wecom, notify.dingtalk and notify.feishu are empty)"
    return "\n".join(f"{c.platform} robot '{c.robot}': {c.answer}" for c in check_webhooks(settings, **kwargs))


test_webhook.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name


def format_dry_run(items: list[dict[str, Any]]) -> str:
    """The dry-run list as a person would read it on a terminal."""
    lines = []
    for i, item in enumerate(items, 1):
        origin = " (from outbox)" if item.get("from_outbox") else ""
        if item["endpoint"] == "upload_media":
            lines.append(f"--- {i}. robot '{item['robot']}'{origin}: upload_media type=file "
                         f"{item['filename']} ({item['bytes']} bytes)")
            continue
        payload = item["payload"]
        platform = "" if item.get("notifier", "wecom") == "wecom" else f"{item['notifier']} "
        msgtype = payload.get("msgtype") or payload.get("msg_type", "?")
        body = payload.get(msgtype) or {}
        if msgtype == "interactive":  # Feishu card: its one markdown element
            body = {"content": payload["card"]["elements"][0]["content"]}
        text = body.get("content", body.get("text"))
        size = f", {utf8_len(text)} bytes" if isinstance(text, str) else ""
        lines.append(f"--- {i}. {platform}robot '{item['robot']}'{origin}: {msgtype}{size}")
        if isinstance(text, str) and text:
            lines.append(text)
        extras = {k: v for k, v in body.items() if k not in ("content", "text")}
        extras.update({k: v for k, v in payload.items() if k == "at"})
        if extras:
            lines.append(json.dumps(extras, ensure_ascii=False))
    return "\n".join(lines)
