"""Strict local fakes of the DingTalk (钉钉) and Feishu (飞书) custom group-robot webhooks, on 127.0.0.1.

    with FakeDingTalk(tokens={TOKEN: SECRET}, clock=clock.now) as fake:   # secret None: no signing
        base_url = fake.base_url            # notify.dingtalk[].base_url
        fake.keyword = "监控"                # the robot's keyword security setting
        fake.fail_next(-1, 2)               # the next 2 sends answer code -1
        fake.messages                       # every accepted message (Accepted records, as in fake_wecom)

Like the real servers (notify/dingtalk.py and notify/feishu.py cite the documentation): HTTP 200 with an
error code for every business error; checks in the order token -> signature -> rate -> body size -> JSON ->
message type -> required fields -> keyword. Signatures are checked against the wall clock (`wall`), rates
against the injected `clock`, so tests can fill a minute without sleeping.
DingTalk: 20 sends per rolling 60 s per token (130101), 20 000-byte bodies (460101), HMAC of
"timestamp_ms\\nsecret" keyed by the secret in the URL (310000). Feishu: 100 per 60 s and 5 per second per
token (11232), 20 KB bodies (9499), HMAC keyed by "timestamp_s\\nsecret" over nothing, in the body (19021).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from fake_wecom import Accepted, LoopbackServer

DINGTALK_TOKEN = "b7d3c0e8f1a24a6c9e5d2b4f8a1c3e5d7f9b2d4c6e8a0b1c3d5e7f9a1b3c5d7e"
FEISHU_TOKEN = "2f1c9a4e-5b7d-4c3a-8e6f-0a9b8c7d6e5f"
SECRET = "SECa1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f"


class _FakeRobotServer(LoopbackServer):
    per_window: tuple[tuple[int, float], ...] = ()

    def __init__(self, tokens: Mapping[str, str | None], *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.tokens = dict(tokens)
        self.clock, self.wall = clock, wall
        self.keyword: str | None = None
        self.messages: list[Accepted] = []
        self.errors: list[tuple[int, str]] = []
        self._forced: deque[int] = deque()
        self._sent: dict[tuple[str, int], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def fail_next(self, code: int, count: int = 1) -> None:
        self._forced.extend([code] * count)

    def _rate_ok(self, token: str) -> bool:
        now = self.clock()
        for i, (limit, window) in enumerate(self.per_window):
            sent = self._sent[(token, i)]
            while sent and sent[0] <= now - window:
                sent.popleft()
            if len(sent) >= limit:
                return False
        for i in range(len(self.per_window)):
            self._sent[(token, i)].append(now)
        return True

    def handle(self, path: str, query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
        raise NotImplementedError


class FakeDingTalk(_FakeRobotServer):
    per_window = ((20, 60.0),)
    MSGTYPES = ("text", "markdown", "link", "actionCard", "feedCard")

    def _error(self, code: int, msg: str) -> dict[str, Any]:
        self.errors.append((code, msg))
        return {"errcode": code, "errmsg": msg}

    def handle(self, path: str, query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
        if path != "/robot/send":
            return self._error(404, "not found")
        token = (query.get("access_token") or [""])[0]
        with self._lock:
            if token not in self.tokens:
                return self._error(300001, "token is not exist")
            secret = self.tokens[token]
            if secret is not None:
                stamp, sign = (query.get("timestamp") or [""])[0], (query.get("sign") or [""])[0]
                if not stamp.isdigit() or abs(int(stamp) / 1000 - self.wall()) > 3600:
                    return self._error(310000, "invalid timestamp")
                expected = base64.b64encode(hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(),
                                                     hashlib.sha256).digest()).decode()
                if unquote_plus(sign) != expected and sign != expected:
                    return self._error(310000, "sign not match")
            code = self._forced.popleft() if self._forced else 0
            if code:
                return self._error(code, "系统繁忙" if code == -1 else "forced error")
            if not self._rate_ok(token):
                return self._error(130101, "send too fast, exceed 20 times per minute")
            if len(body) > 20000:
                return self._error(460101, "message too long, exceed 20000 bytes")
            try:
                data = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return self._error(40035, "缺少参数 json")
            msgtype = data.get("msgtype") if isinstance(data, dict) else None
            if msgtype not in self.MSGTYPES:
                return self._error(40035, "缺少参数 msgtype")
            obj = data.get(msgtype)
            if msgtype == "markdown":
                if not isinstance(obj, dict) or not obj.get("title") or not obj.get("text"):
                    return self._error(40035, "缺少参数 markdown.title/text")
                text = obj["text"]
            elif msgtype == "text":
                if not isinstance(obj, dict) or not obj.get("content"):
                    return self._error(40035, "缺少参数 text.content")
                text = obj["content"]
            else:
                text = json.dumps(obj, ensure_ascii=False)
            if self.keyword and self.keyword not in text:
                return self._error(310000, "keywords not in content")
            warnings = []
            at = data.get("at") or {}
            for who in [*at.get("atMobiles", []), *at.get("atUserIds", [])]:
                if f"@{who}" not in text:
                    warnings.append(f"{who} is in at but not written as @{who} in the text: not highlighted")
            self.messages.append(Accepted(token, msgtype, {**data, msgtype: {**obj, "content": text}},
                                          self.clock(), warnings))
            return {"errcode": 0, "errmsg": "ok"}


class FakeFeishu(_FakeRobotServer):
    per_window = ((100, 60.0), (5, 1.0))
    MSGTYPES = ("text", "post", "image", "share_chat", "interactive")

    def _error(self, code: int, msg: str) -> dict[str, Any]:
        self.errors.append((code, msg))
        return {"code": code, "data": {}, "msg": msg}

    def handle(self, path: str, query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
        prefix = "/open-apis/bot/v2/hook/"
        if not path.startswith(prefix):
            return self._error(404, "not found")
        token = path[len(prefix):]
        with self._lock:
            if token not in self.tokens:
                return self._error(19001, "param invalid: incoming webhook access token invalid")
            if len(body) > 20 * 1024:
                return self._error(9499, "Bad Request")
            try:
                data = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return self._error(9499, "Bad Request")
            if not isinstance(data, dict):
                return self._error(9499, "Bad Request")
            secret = self.tokens[token]
            if secret is not None:
                stamp, sign = str(data.get("timestamp", "")), data.get("sign")
                expected = base64.b64encode(hmac.new(f"{stamp}\n{secret}".encode(), b"",
                                                     hashlib.sha256).digest()).decode()
                if not stamp.isdigit() or abs(int(stamp) - self.wall()) > 3600 or sign != expected:
                    return self._error(19021, "sign match fail or timestamp is not within one hour from current "
                                              "time")
            code = self._forced.popleft() if self._forced else 0
            if code:
                return self._error(code, "forced error")
            if not self._rate_ok(token):
                return self._error(11232, "frequency limited psm[lark.oapi.app_platform_runtime]")
            msgtype = data.get("msg_type")
            if msgtype not in self.MSGTYPES:
                return self._error(19002, "params error, msg_type need")
            if msgtype == "interactive":
                card = data.get("card")
                if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
                    return self._error(9499, "Bad Request")
                text = "\n".join(str(e.get("content", "")) for e in card["elements"] if isinstance(e, dict))
            elif msgtype == "text":
                content = data.get("content")
                if not isinstance(content, dict) or not content.get("text"):
                    return self._error(9499, "Bad Request")
                text = content["text"]
            else:
                text = json.dumps(data.get("content"), ensure_ascii=False)
            if self.keyword and self.keyword not in text + json.dumps(data.get("card", {}), ensure_ascii=False):
                return self._error(19024, "Key Words Not Found")
            self.messages.append(Accepted(token, msgtype, {**data, msgtype: {"content": text}}, self.clock()))
            return {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}


def _handler(fake: _FakeRobotServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            answer = fake.handle(parts.path, parse_qs(parts.query), body)
            data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
