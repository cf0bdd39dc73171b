"""A strict local fake of the WeCom group-robot webhook API on 127.0.0.1 (the rules of WeCom's group-robot API
documentation, as docs/wecom.md and notify/wecom.py state them).

    with FakeWeCom(keys=[KEY], clock=clock.now) as fake:
        base_url = fake.base_url            # notify.wecom[].base_url
        fake.rate_limit_next(2)             # the next 2 sends answer 45009
        fake.fail_next(-1, 3)               # the next 3 sends answer errcode -1 (0 = pass one through)
        fake.go_down("refuse")              # refuse | reset | http500 | busy; fake.come_back()
        fake.messages                        # every accepted message (Accepted records)
        fake.hold_next(skip=1)              # the 2nd send from now blocks before it is handled …
        fake.held.wait(30)                  # … (set once it arrived) until fake.release(accept=False)

Like the real server: HTTP 200 with an errcode for every business error; checks in the order
key -> rate -> content type / JSON -> msgtype (exact, lowercase) -> required fields -> UTF-8 byte limits;
20 sends per rolling 60 s per key; upload_media with a multipart 'media' part (6 B..20 MB).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY = "693a91f6-7f2e-4bc4-97a0-0ec2b1fa5aaa"
MSGTYPES = ("text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card")
LIMITS = {"markdown": 4096, "markdown_v2": 4096}
MEDIA_TTL_S = 3 * 24 * 3600


class FakeClock:
    """Shared by the fake server and the client's sleep, so 'waiting a minute' takes no real time."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.t += seconds


@dataclass
class Accepted:
    key: str
    msgtype: str
    payload: dict[str, Any]
    at: float
    warnings: list[str] = field(default_factory=list)  # things the real server silently ignores

    @property
    def content(self) -> str:
        return self.payload.get(self.msgtype, {}).get("content", "")


@dataclass
class Attempt:
    path: str
    key: str
    errcode: int | None  # None: the connection was dropped or HTTP 5xx
    errmsg: str
    at: float


@dataclass
class Upload:
    key: str
    media_type: str
    filename: str
    data: bytes
    at: float
    filelength: str | None  # the Content-Disposition parameter the docs show


class LoopbackServer:
    """A fake robot API on 127.0.0.1 (a free port unless `port` is set), served in a daemon thread; a subclass
    gives its request handler. Used as a context manager: started on enter, stopped on exit."""

    port: int = 0
    _server: ThreadingHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Any:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class FakeWeCom(LoopbackServer):
    def __init__(self, keys: Iterable[str] = (KEY,), *, clock: Callable[[], float] = time.monotonic,
                 per_minute: int = 20, window: float = 60.0, text_limit: int = 2048) -> None:
        self.keys = set(keys)
        self.clock, self.per_minute, self.window, self.text_limit = clock, per_minute, window, text_limit
        self.messages: list[Accepted] = []
        self.attempts: list[Attempt] = []
        self.uploads: dict[str, Upload] = {}
        self.down: str | None = None
        self._rate_burst = 0
        self._forced: deque[int] = deque()
        self._sent: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.held = threading.Event()  # a held send has arrived and waits for release()
        self._hold_skip: int | None = None  # sends to let through before holding one (None: no hold)
        self._release = threading.Event()
        self._accept_held = True

    # ---- lifecycle and switches

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def go_down(self, mode: str = "refuse") -> None:
        """refuse: nothing listens; reset: connections dropped; http500: 502 pages; busy: errcode -1."""
        assert mode in ("refuse", "reset", "http500", "busy")
        self.down = mode
        if mode == "refuse":
            self.stop()

    def come_back(self) -> None:
        if self.down == "refuse":
            self.start()  # same port: clients configured with base_url keep working
        self.down = None

    def rate_limit_next(self, count: int) -> None:
        self._rate_burst += count

    def fail_next(self, errcode: int, count: int = 1) -> None:
        """The next `count` sends answer errcode; 0 lets one send through normally (to fail mid-report)."""
        self._forced.extend([errcode] * count)

    def hold_next(self, skip: int = 0) -> None:
        """Let `skip` sends through, then block the next one before handling it, so a test can kill the client
        at that exact point of its delivery (deterministically, no sleeps)."""
        self.held.clear()
        self._release.clear()
        self._hold_skip = skip

    def release(self, accept: bool = True) -> None:
        """Let the held send go on (accept=True) or drop its connection unanswered, as if it never arrived."""
        self._accept_held = accept
        self._release.set()

    def _hold(self, path: str) -> bool:
        """Called per request; False when the held request must be dropped."""
        if self._hold_skip is None or not path.endswith("/send"):
            return True
        with self._lock:
            if self._hold_skip is None:
                return True
            if self._hold_skip > 0:
                self._hold_skip -= 1
                return True
            self._hold_skip = None
        self.held.set()
        self._release.wait()
        return self._accept_held

    def fill_window(self, key: str = KEY, count: int = 20) -> None:
        """Pretend another sender already used the robot's quota for this minute."""
        self._sent[key].extend([self.clock()] * count)

    def for_key(self, key: str = KEY) -> list[Accepted]:
        return [m for m in self.messages if m.key == key]

    # ---- the API

    def handle(self, path: str, query: dict[str, list[str]], ctype: str, body: bytes) -> dict[str, Any]:
        key = (query.get("key") or [""])[0]
        with self._lock:
            if key not in self.keys:
                return self._error(path, key, 93000, "invalid webhook url")
            if path.endswith("/upload_media"):
                return self._upload(key, query, ctype, body)
            code = self._forced.popleft() if self._forced else 0
            if code:
                return self._error(path, key, code, "system busy" if code == -1 else "forced error")
            sent = self._sent[key]
            while sent and sent[0] <= self.clock() - self.window:
                sent.popleft()
            if self._rate_burst > 0 or len(sent) >= self.per_minute:
                self._rate_burst = max(0, self._rate_burst - 1)
                return self._error(path, key, 45009, "api freq out of limit")
            sent.append(self.clock())  # failed sends count toward the limit too
            return self._send(path, key, ctype, body)

    def _error(self, path: str, key: str, code: int, text: str) -> dict[str, Any]:
        hint = "".join(secrets.choice("0123456789") for _ in range(25))
        errmsg = (f"{text}, hint: [{hint}], from ip: 127.0.0.1, "
                  f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}")
        self.attempts.append(Attempt(path, key, code, errmsg, self.clock()))
        return {"errcode": code, "errmsg": errmsg}

    def _send(self, path: str, key: str, ctype: str, body: bytes) -> dict[str, Any]:
        if ctype.startswith("application/x-www-form-urlencoded"):
            return self._error(path, key, 40008, "invalid message type")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self._error(path, key, 44004, "Warning: wrong json format. empty content")
        if not isinstance(data, dict) or data.get("msgtype") not in MSGTYPES:
            return self._error(path, key, 40008, "invalid message type")
        msgtype = data["msgtype"]
        obj = data.get(msgtype)
        if not isinstance(obj, dict):
            return self._error(path, key, 44004, "empty content")
        warnings: list[str] = []
        problem = self._check(msgtype, obj, key, warnings)
        if problem:
            return self._error(path, key, *problem)
        self.messages.append(Accepted(key, msgtype, data, self.clock(), warnings))
        self.attempts.append(Attempt(path, key, 0, "ok", self.clock()))
        return {"errcode": 0, "errmsg": "ok"}

    def _check(self, msgtype: str, obj: dict[str, Any], key: str, warnings: list[str]) -> tuple[int, str] | None:
        if msgtype in ("text", "markdown", "markdown_v2"):
            content = obj.get("content")
            if not isinstance(content, str) or not content:
                return 44004, "empty content"
            limit = self.text_limit if msgtype == "text" else LIMITS[msgtype]
            if len(content.encode("utf-8")) > limit:
                return 40058, f"{msgtype}.content exceed max length {limit}. invalid Request Parameter"
            extra = set(obj) - ({"content", "mentioned_list", "mentioned_mobile_list"} if msgtype == "text"
                                else {"content"})
            warnings.extend(f"{msgtype}.{name} is ignored" for name in sorted(extra))
            for name in ("mentioned_list", "mentioned_mobile_list"):
                value = obj.get(name)
                if msgtype == "text" and value is not None and (
                        not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                    return 40035, "invalid parameter"
            if msgtype == "markdown_v2" and ("<@" in content or "<font" in content):
                warnings.append("markdown_v2 does not render <@userid> or <font>")
        elif msgtype in ("file", "voice"):
            upload = self.uploads.get(str(obj.get("media_id")))
            if upload is None or upload.key != key or self.clock() - upload.at > MEDIA_TTL_S:
                return 40007, "invalid media_id"
        elif msgtype == "image":
            try:
                raw = base64.b64decode(obj.get("base64", ""), validate=True)
            except (ValueError, TypeError):
                return 40035, "invalid parameter"
            if not raw or hashlib.md5(raw).hexdigest() != obj.get("md5") or len(raw) > 2 * 1024 * 1024:
                return 40035, "invalid parameter"
        elif msgtype == "news":
            articles = obj.get("articles")
            if not isinstance(articles, list) or not articles:
                return 44004, "empty content"
            if len(articles) > 8:
                return 45008, "too many articles"
            if not all(isinstance(a, dict) and a.get("url") for a in articles):
                return 40035, "invalid parameter"
        elif msgtype == "template_card" and "card_action" not in obj:
            return 40035, "invalid parameter"
        return None

    def _upload(self, key: str, query: dict[str, list[str]], ctype: str, body: bytes) -> dict[str, Any]:
        path = "/cgi-bin/webhook/upload_media"
        media_type = (query.get("type") or [""])[0]
        if media_type not in ("file", "voice"):
            return self._error(path, key, 40005, "invalid file type")
        if not ctype.startswith("multipart/form-data"):
            return self._error(path, key, 44001, "empty media data")
        message = BytesParser(policy=policy.default).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        for part in message.iter_parts() if message.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "media":
                break
        else:
            return self._error(path, key, 44001, "empty media data")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename() or ""
        if len(data) <= 5 or len(data) > (2 if media_type == "voice" else 20) * 1024 * 1024:
            return self._error(path, key, 40006, "invalid file size")
        if media_type == "voice" and not data.startswith(b"#!AMR"):
            return self._error(path, key, 40004, "invalid media type")
        media_id = secrets.token_urlsafe(33)
        self.uploads[media_id] = Upload(key, media_type, filename, data, self.clock(),
                                        part.get_param("filelength", header="content-disposition"))
        self.attempts.append(Attempt(path, key, 0, "ok", self.clock()))
        return {"errcode": 0, "errmsg": "ok", "type": media_type, "media_id": media_id,
                "created_at": str(int(time.time()))}


def _handler(fake: FakeWeCom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # keep-alive round trips would otherwise wait on delayed ACKs

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            if fake.down == "reset":
                fake.attempts.append(Attempt(parts.path, "", None, "connection reset", fake.clock()))
                self.close_connection = True
                return
            if fake.down == "http500":
                fake.attempts.append(Attempt(parts.path, "", None, "HTTP 502", fake.clock()))
                return self._reply(502, b"<html>502 Bad Gateway</html>", "text/html")
            if parts.path not in ("/cgi-bin/webhook/send", "/cgi-bin/webhook/upload_media"):
                return self._reply(404, b"not found", "text/plain")
            if not fake._hold(parts.path):
                self.close_connection = True
                return
            if fake.down == "busy":
                answer = {"errcode": -1, "errmsg": "system busy"}
                fake.attempts.append(Attempt(parts.path, "", -1, "system busy", fake.clock()))
            else:
                answer = fake.handle(parts.path, parse_qs(parts.query), self.headers.get("Content-Type", ""), body)
            self._reply(200, json.dumps(answer, ensure_ascii=False).encode("utf-8"), "application/json")

        def do_GET(self) -> None:
            self._reply(200, json.dumps({"errcode": 40008, "errmsg": "invalid message type"}).encode(),
                        "application/json")

        def _reply(self, status: int, data: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# ---- helpers shared by the notify tests


def robot_config(fake: FakeWeCom, **robot: Any) -> dict[str, Any]:
    return {"webhook": KEY, "base_url": fake.base_url, **robot}


def cjk_lines(nbytes: int, line_chars: int = 30) -> str:
    """Report-like Chinese text of exactly nbytes UTF-8 bytes, on lines of line_chars characters."""
    unit = "接口超时请检查订单服务"  # 3 bytes per character
    lines, size = [], 0
    while size + 3 * line_chars + 1 <= nbytes - 3:
        line = (unit * (line_chars // len(unit) + 1))[:line_chars]
        lines.append(line)
        size += 3 * line_chars + 1
    text = "\n".join(lines)
    rest = nbytes - len(text.encode("utf-8")) - 1
    tail = "警" * (rest // 3) + "x" * (rest % 3)
    text = text + "\n" + tail if tail else text
    assert len(text.encode("utf-8")) == nbytes, (len(text.encode("utf-8")), nbytes)
    return text


def reports(fake: FakeWeCom, key: str | None = None) -> list[str]:
    """One text per report a group received: its first screen joined with the details messages (and the
    continuation parts) that follow it (report.render_first_screen, notify/layout.py)."""
    import re

    out: list[str] = []
    for m in fake.messages if key is None else fake.for_key(key):
        if m.msgtype != "markdown":
            continue
        first = m.content.split("\n", 1)[0]
        follows = "· 详情" in first or "· details" in first or re.match(r"\(\d+/\d+\)$", first) or re.search(
            r"\(\d+/\d+\)\*\*$", first)
        if out and follows:
            out[-1] += "\n" + m.content
        else:
            out.append(m.content)
    return out
