"""WeCom (企业微信) group robot: report -> messages within the API's limits -> delivery that loses nothing.

Rules from WeCom's group-robot API documentation (summarised in docs/wecom.md): errors come back as HTTP 200
with errcode != 0;
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
from dataclasses import dataclass
from typing import Any

import requests

from ..errors import ApimonError
from ..messages import MSGTYPES, say
from ..ownership import shown as shown_owner
from ..probe import guard_connections, within_deadline
from .base import DeliveryResult, Notification
from .outbox import Outbox, OutboxEntry
from .settings import NotifySettings, WeComRobot, mask_key
from .split import utf8_len
from .wecom_messages import LIMITS, WORDS, build_steps, fit, fmt_time, repair_step, with_note, words_for

__all__ = ["LIMITS", "WORDS", "DeliveryError", "WeComNotifier", "build_steps", "format_dry_run", "with_note"]

log = logging.getLogger("pytest_apimon.notify.wecom")
wait_log = logging.getLogger("pytest_apimon.wait")  # rate-limit waits; plugin.py echoes them for the watcher

RATE_PER_MINUTE, RATE_WINDOW_S = 20, 60.0  # per robot key
RETRIES = 3  # for -1 and network errors, as the error-code docs advise
BUSY = (-1, 45033)  # system busy; too many concurrent calls (the global error-code page): retried, then kept

# errcode -> (kind, what to do). kind "key": fix the key and the outbox delivers later; "content": resending
# the same message can never work: 40058/44004 are repaired once (wecom_messages.repair_step), and what still
# fails is kept in the outbox's rejected/ folder for a human, never resent automatically.
PERMANENT = {
    93000: ("key", "the webhook key is invalid or the robot was removed from the group; copy the key again from "
                   "the group's robot settings (the part after 'key=' in …/cgi-bin/webhook/send?key=…) into "
                   "notify.wecom[].webhook"),
    40008: ("content", "WeCom does not accept this message type (msgtype must be lowercase: markdown, markdown_v2, "
                       "text, file); check notify.wecom[].message_type"),
    40058: ("content", "a message is longer than WeCom accepts (it was re-split smaller once already); please "
                       "report this with the --apimon-dry-run output"),
    44004: ("content", "WeCom received empty content or JSON it could not parse (it was cleaned and resent once "
                       "already)"),
    40007: ("content", "WeCom refused the uploaded file's media_id (it expires after 3 days and works only for the "
                       "robot that uploaded it)"),
    40004: ("content", "WeCom refused the upload's media type"),
    40005: ("content", "WeCom refused the upload type (must be file or voice)"),
    40006: ("content", "WeCom refused the file size (must be 6 bytes to 20 MB)"),
    44001: ("content", "WeCom received an empty file"),
}


class DeliveryError(ApimonError):
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
    the platform hooks (`_robots`, `_steps`, `_noted`, `_fit`, `_repair`, `_send_step`, `_answer`, the rate and
    error tables), so the write-ahead outbox, pacing, retries and the wait budget are one implementation for
    every platform."""

    name = "wecom"
    label = "WeCom"  # the platform's name in log lines
    rate_windows: tuple[tuple[int, float], ...] = ((RATE_PER_MINUTE, RATE_WINDOW_S),)  # (sends, seconds) per robot
    rate_codes: frozenset[int] = frozenset({45009})  # "too many messages": wait for the window, then resend
    busy_codes: frozenset[int] = frozenset(BUSY)  # transient: retried with backoff

    def __init__(self, settings: NotifySettings, outbox: Outbox | None = None, *,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, rate_limit_wait: float = 61.0,
                 backoff: float = 1.0) -> None:
        self.settings, self.outbox = settings, outbox
        if session is None:  # connections the total deadline in _call can cut (probe.within_deadline)
            session = requests.Session()
            guard_connections(session)
        self.session = session
        self.clock, self.sleep = clock, sleep
        self.rate_limit_wait, self.backoff = rate_limit_wait, backoff
        self._pacers: dict[str, list[Pacer]] = {}
        self._fresh: list[OutboxEntry] = []  # staged by this process (this run's own reports)
        self._stage_errors: list[str] = []

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

    def _fit(self, step: dict[str, Any]) -> list[dict[str, Any]]:
        """A stored step re-fitted to the platform's limits before a resend (WeCom: wecom_messages.fit)."""
        return fit(step)

    def _repair(self, step: dict[str, Any], errcode: int | None) -> list[dict[str, Any]] | None:
        """The step re-split/cleaned after the platform refused it as too long or empty, or None."""
        return repair_step(step, errcode)

    # ---- public

    def send(self, notification: Notification) -> DeliveryResult:
        """Stage (write-ahead) the notification, then deliver the whole backlog, this report last."""
        staged = self.stage(notification)
        return self.flush(staged=staged)

    def stage(self, notification: Notification, *, awaiting_run: str = "") -> list[OutboxEntry]:
        """Write-ahead: store this notification's messages for every routed robot before any send attempt.

        `awaiting_run`: the env of a run that is recorded in the state database only after this call; the
        entries are sent only once `confirm` ran, or when a later flush's `committed` says the run was recorded.
        Without an outbox (or when it cannot be written) the entries are kept in memory for this process only.
        """
        entries = []
        for robot in self._robots():
            view = notification.for_robot(f"{self.name}/{robot.name}", robot.services)
            if view is None:
                continue
            entry = OutboxEntry(notifier=self.name, target=robot.name, run_started_at=view.run_started_at,
                                title=view.title, lang=view.lang, steps=self._steps(robot, view),
                                awaiting_run=awaiting_run if self.outbox is not None else "")
            if not entry.steps:
                continue
            if self.outbox is not None:
                try:
                    self.outbox.put(entry, bounded=False)
                except OSError as exc:
                    entry.awaiting_run, entry.path = "", None
                    self._stage_errors.append(f"{self.label} robot '{robot.name}': could not write the report to the "
                                              f"outbox before sending ({exc}); if this run is interrupted it is lost")
            self._fresh.append(entry)
            entries.append(entry)
        return entries

    def confirm(self, entries: list[OutboxEntry]) -> None:
        """The run the staged entries waited for is recorded: they are deliverable by any later run too."""
        for entry in entries:
            if entry.awaiting_run:
                entry.awaiting_run = ""
                if self.outbox is not None and entry.path is not None:
                    try:
                        self.outbox.update(entry)
                    except OSError as exc:
                        log.error("could not mark the outbox entry %s deliverable: %s", entry.path, exc)

    def flush(self, *, staged: list[OutboxEntry] | None = None,
              committed: Callable[[OutboxEntry], bool] | None = None) -> DeliveryResult:
        """Deliver the backlog, oldest first per robot; `staged`: this run's own entries (from `stage`).

        `committed(entry)`: whether the run an `awaiting_run` entry waited for was recorded; such an entry of
        an unrecorded run is discarded (its alerts were not remembered, so they are announced again). Without
        `committed` those entries are delivered (never lose a report). Never raises for delivery problems.
        """
        return self._deliver(staged or [], committed)

    def dry_run(self, notification: Notification) -> list[dict[str, Any]]:
        """Everything send() would post, in order, without network access (outbox backlog first)."""
        items: list[dict[str, Any]] = []
        for robot in self._robots():
            backlog = self.outbox.pending(self.name, robot.name) if self.outbox else []
            for entry in backlog:
                steps = entry.steps if entry.noted else self._noted(entry.steps, self._delayed_note(entry),
                                                                    robot)[0]
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

    def _deliver(self, staged: list[OutboxEntry], committed: Callable[[OutboxEntry], bool] | None,
                 ) -> DeliveryResult:
        result = DeliveryResult(self.name, own=len(staged))
        result.errors += self._stage_errors
        self._stage_errors = []
        budget = _Budget(self.settings.max_wait, self.sleep)
        names = {r.name for r in self._robots()}
        stored = self.outbox.pending(self.name) if self.outbox else []
        orphans = [e for e in stored if e.target not in names]
        if orphans:
            result.errors.append(f"the outbox holds {len(orphans)} report(s) for {self.label} robots that are "
                                 f"no longer configured ({', '.join(sorted({e.target for e in orphans}))}); they "
                                 f"stay in {self.outbox.directory if self.outbox else ''}")
        own = {id(e) for e in staged}
        fresh_paths = {e.path for e in self._fresh if e.path is not None}
        for robot in self._robots():
            queue = [e for e in stored if e.target == robot.name]
            # This process's entries come back from disk as new objects: use the staged ones (same path).
            queue = [next((f for f in self._fresh if f.path == e.path), e) if e.path in fresh_paths else e
                     for e in queue]
            queue += [e for e in staged if e.target == robot.name and e.path is None]  # no outbox: memory only
            blocked = False
            for entry in queue:
                mine = id(entry) in own
                if entry.awaiting_run:
                    if not mine and committed is not None and not committed(entry):
                        # Its run was never recorded (killed before that): the next evaluation announces again.
                        log.warning("discarding the outbox report from %s: its run was interrupted before it was "
                                    "recorded, so its alerts are evaluated again", fmt_time(entry.run_started_at))
                        if self.outbox is not None:
                            self.outbox.remove(entry)
                        result.discarded += 1
                        continue
                    if mine:  # never send before its run is recorded (alerts.finish confirms first)
                        result.pending += 1
                        continue
                if blocked:  # keep the order: newer reports wait behind the older ones
                    result.pending += 1
                    if mine:
                        result.delivered = False
                    continue
                outcome = self._attempt(robot, entry, budget, result, mine)
                if outcome == "sent":
                    if not mine:
                        result.redelivered += 1
                    continue
                if mine:
                    result.delivered = False
                if outcome == "rejected":
                    result.rejected += 1
                    continue
                result.pending += 1
                blocked = True
        result.stored_in_outbox = result.pending > 0
        if self.outbox is not None and result.pending:
            try:
                self.outbox.enforce_bound()
            except OSError as exc:
                log.error("could not trim the outbox: %s", exc)
        return result

    def _deliver_entry(self, robot: Any, entry: OutboxEntry, budget: _Budget, result: DeliveryResult,
                       mine: bool) -> str:
        """One report: 'sent', 'pending' (kept for the next run) or 'rejected' (kept in rejected/)."""
        if not entry.noted and not mine:  # once, persisted: a resumed delivery is not marked twice
            # A stored entry (perhaps written by an older version) is re-fitted to the limits before resending.
            steps = [piece for step in entry.steps for piece in self._fit(step)]
            entry.steps = self._noted(steps, self._delayed_note(entry), robot)[0]
            entry.noted = True
            self._save(entry)
        error = self._run(robot, entry, budget, result, self._dropped_note(robot, entry.lang))
        when = fmt_time(entry.run_started_at)
        which = "this run's report" if mine else f"the stored report from {when}"
        if error is None:
            if self.outbox is not None:
                self.outbox.remove(entry)
            return "sent"
        if error.kind in ("content", "unknown"):
            # Re-splitting did not help: it can never succeed as it is. Keep it for a human; do not block.
            where = self.outbox.quarantine(entry) if self.outbox is not None else None
            kept = f"kept in {where}, not resent automatically" if where else "it could not be kept (no outbox)"
            result.errors.append(f"{self.label} robot '{robot.name}': {self.label} refused {which}: {error}; "
                                 f"{kept}")
            return "rejected"
        entry.attempts += 1
        entry.reason = str(error)
        self._save(entry)
        kept = "kept in the outbox for the next run" if entry.path is not None else \
            "NOT kept (no outbox): it is lost"
        result.errors.append(f"{self.label} robot '{robot.name}': {which} is undelivered ({kept}): {error}")
        return "pending"

    def _attempt(self, robot: Any, entry: OutboxEntry, budget: _Budget, result: DeliveryResult,
                 mine: bool) -> str:
        """_deliver_entry; a stored report whose messages are damaged (hand-edited, another version's) is set
        aside for a human, never a crash that would hold back this run's report and every later one
        (tests/test_fuzz_outbox.py). This run's own report is built here: its errors are raised."""
        try:
            return self._deliver_entry(robot, entry, budget, result, mine)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
            if mine:
                raise
            return self._set_aside(robot, entry, result, exc)

    def _set_aside(self, robot: Any, entry: OutboxEntry, result: DeliveryResult, exc: Exception) -> str:
        """A stored report that cannot be delivered as it is (its messages are not what this version writes):
        moved to rejected/ like a report the robot refused for its content; 'rejected'."""
        where = self.outbox.quarantine(entry) if self.outbox is not None else None
        log.error("the outbox report %s cannot be delivered as stored (%s: %s); kept in %s", entry.path,
                  type(exc).__name__, exc, where)
        result.errors.append(f"{self.label} robot '{robot.name}': a stored report is damaged and cannot be sent "
                             f"({type(exc).__name__}); kept in {where}, not resent automatically")
        return "rejected"

    def _save(self, entry: OutboxEntry) -> None:
        if self.outbox is not None and entry.path is not None:
            try:
                self.outbox.update(entry)
            except OSError as exc:
                log.error("could not update the outbox entry %s: %s", entry.path, exc)

    def _delayed_note(self, entry: OutboxEntry) -> str:
        return words_for(entry.lang)["delayed"].format(t=fmt_time(entry.run_started_at))

    def _dropped_note(self, robot: Any, lang: str) -> str:
        count = self.outbox.dropped(self.name, robot.name) if self.outbox else 0
        return words_for(lang)["dropped"].format(n=count) if count else ""

    def _clear_dropped(self, robot: Any) -> None:
        if self.outbox is not None:
            self.outbox.clear_dropped(self.name, robot.name)

    def _run(self, robot: Any, entry: OutboxEntry, budget: _Budget, result: DeliveryResult,
             dropped: str = "") -> DeliveryError | None:
        """Deliver entry.steps in order, rewriting the entry after every accepted message (so an interrupted
        delivery resumes after the last accepted one); the error that stopped it, or None.

        A message WeCom refuses as too long (40058) or empty/unparsable (44004) is repaired once (re-split
        smaller, or cleaned) and the repaired messages are sent instead. `dropped`: the outbox-full note, put on
        top of the first message sent (not stored; the counter is cleared once a message carried it).
        """
        repaired: set[int] = set()
        while entry.steps:
            step = entry.steps[0]
            try:
                to_send = step
                if dropped:
                    merged, inserted = self._noted([step], dropped, robot)
                    if inserted:  # the note is its own message
                        self._send_step(robot, merged[0], budget)
                        result.messages_sent += 1
                        self._clear_dropped(robot)
                        dropped = ""
                    else:
                        to_send = merged[0]
                self._send_step(robot, to_send, budget)
                if dropped:
                    self._clear_dropped(robot)
                    dropped = ""
            except DeliveryError as exc:
                fixed = None if id(step) in repaired else repair_step(step, exc.errcode)
                if fixed is None:
                    return exc
                log.warning("WeCom robot '%s': %s; resending it as %d smaller/cleaned message(s)",
                            robot.name, exc, len(fixed))
                repaired.update(id(f) for f in fixed)
                entry.steps = fixed + entry.steps[1:]
                self._save(entry)
                continue
            result.messages_sent += 1
            entry.steps = entry.steps[1:]
            if entry.steps:
                self._save(entry)
        return None

    def _send_step(self, robot: Any, step: dict[str, Any], budget: _Budget) -> None:
        if step["kind"] == "file":
            for attempt in range(2):  # a media_id refused (40007) is uploaded once more
                media_id = self._upload(robot, step["filename"], step["content"].encode("utf-8"), budget)
                try:
                    self._post(robot, {"msgtype": "file", "file": {"media_id": media_id}}, budget)
                    return
                except DeliveryError as exc:
                    if exc.errcode != 40007 or attempt:
                        raise
        self._post(robot, step["payload"], budget)

    def _post(self, robot: WeComRobot, payload: dict[str, Any], budget: _Budget) -> None:
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
            if wait > 0:
                if budget.spent + wait > budget.limit + 1e-9:
                    limits = " and ".join(f"{n} messages per {w:g}s" for n, w in self.rate_windows)
                    raise DeliveryError(f"pacing to {limits} would exceed the "
                                        f"{self.settings.max_wait:g}s wait bound (notify.max_wait)", kind="rate")
                wait_log.warning("%s robot '%s': waiting %.0fs to stay within the platform's rate limit",
                                 self.label, robot.name, wait)
                budget.take(wait)
            code: int | None = None
            try:
                # notify.timeout bounds each read and, as a total deadline, the whole exchange: an endpoint (or a
                # proxy) answering a byte at a time would otherwise hold the end of the run for ever.
                response = within_deadline(self.settings.timeout, self.settings.timeout, lambda: self.session.post(
                    url, data=body, headers=headers, timeout=self.settings.timeout))
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
                    if budget.spent + self.rate_limit_wait <= budget.limit + 1e-9:
                        wait_log.warning("%s robot '%s': rate limit (%s %s): waiting %.0fs, then resending",
                                         self.label, robot.name, code, errmsg.split(", hint:")[0],
                                         self.rate_limit_wait)
                        budget.take(self.rate_limit_wait)
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


def json_answer(response: requests.Response) -> dict[str, Any]:
    """The JSON object a robot API answered with HTTP 200 (WeCom, DingTalk, Feishu all answer errors inside
    it); raises _BadAnswer for another status, a body that is not JSON, or JSON that is not an object."""
    if response.status_code != 200:
        raise _BadAnswer(f"HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise _BadAnswer("the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise _BadAnswer("the answer is not a JSON object")
    return answer


def _parse(response: requests.Response) -> dict[str, Any]:
    answer = json_answer(response)
    if not isinstance(answer.get("errcode"), int):
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


def _mentioned(extras: dict[str, Any]) -> list[str]:
    """Who a message @-mentions, from its WeCom (mentioned_list, mentioned_mobile_list) or DingTalk (at) fields,
    as a person reads them: a mobile number masked (ownership.shown)."""
    names: list[str] = []
    for key in ("mentioned_list", "mentioned_mobile_list"):
        names += [str(n) for n in extras.get(key) or []]
    at = extras.get("at") or {}
    if isinstance(at, dict):
        names += [str(n) for key in ("atUserIds", "atMobiles") for n in at.get(key) or []]
        if at.get("isAtAll"):
            names.append("所有人")
    return [shown_owner(n.replace("@all", "所有人")) for n in names]


def _masked_mentions(extras: dict[str, Any]) -> dict[str, Any]:
    """The message's API fields with every mobile number masked as a person reads it (ownership.shown)."""
    out = dict(extras)
    if isinstance(out.get("mentioned_mobile_list"), list):
        out["mentioned_mobile_list"] = [shown_owner(str(n)) for n in out["mentioned_mobile_list"]]
    at = out.get("at")
    if isinstance(at, dict) and isinstance(at.get("atMobiles"), list):
        out["at"] = {**at, "atMobiles": [shown_owner(str(n)) for n in at["atMobiles"]]}
    return out


def format_dry_run(items: list[dict[str, Any]], lang: str = "en") -> str:
    """The dry-run list as a person would read it on a terminal (in lang: zh or en)."""
    lines = []
    for i, item in enumerate(items, 1):
        origin = say("dry.from_outbox", lang) if item.get("from_outbox") else ""
        notifier = item.get("notifier", "wecom")
        shown = "" if notifier == "wecom" else f"{notifier} "
        if lang == "zh":
            shown = {"wecom": "", "dingtalk": "钉钉", "feishu": "飞书"}.get(notifier, shown)
        if item["endpoint"] == "upload_media":
            lines.append(say("dry.upload", lang, i=i, platform=shown, robot=item["robot"], origin=origin,
                             filename=item["filename"], size=item["bytes"]))
            continue
        payload = item["payload"]
        msgtype = payload.get("msgtype") or payload.get("msg_type", "?")
        body = payload.get(msgtype) or {}
        if msgtype == "interactive":  # Feishu card: its one markdown element
            body = {"content": payload["card"]["elements"][0]["content"]}
        text = body.get("content", body.get("text"))
        size = say("dry.size", lang, n=utf8_len(text)) if isinstance(text, str) else ""
        kind = MSGTYPES.get(msgtype, msgtype) if lang == "zh" else msgtype
        lines.append(say("dry.message", lang, i=i, platform=shown, robot=item["robot"], origin=origin, kind=kind,
                         size=size))
        if isinstance(text, str) and text:
            lines.append(text)
        extras = {k: v for k, v in body.items() if k not in ("content", "text")}
        extras.update({k: v for k, v in payload.items() if k == "at"})
        if extras and lang == "zh":
            names = _mentioned(extras)
            if names:
                lines.append(say("dry.mentions", lang, names="、".join(names)))
        elif extras:
            lines.append(json.dumps(_masked_mentions(extras), ensure_ascii=False))
    return "\n".join(lines)
