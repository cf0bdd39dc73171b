"""One HTTP exchange: build the request, send with connect/read timeouts plus a total deadline,
read the body up to a cap, measure latency. Returns an Exchange; never raises for network trouble.

SKELETON — models and signatures are fixed; bodies to be implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class ProbeError:
    kind: str  # "timeout" | "network" | "redirects" | "invalid_url" | "other"
    sub: str  # timeout: connect|read|total; network: dns|refused|reset|tls|other
    message: str  # short human text, no secrets added by us


@dataclass
class Request:
    """A fully resolved request (URL joined, headers merged, auth applied)."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    has_json: bool = False
    form: dict[str, Any] | None = None
    body: str | bytes | None = None
    timeout: float = 10.0  # total deadline, seconds
    connect_timeout: float = 5.0
    verify_tls: bool = True
    max_body_bytes: int = 1024 * 1024
    max_redirects: int = 5


@dataclass
class Exchange:
    method: str
    url: str  # final URL requested (with query string)
    request_headers: dict[str, str]
    request_body: str | None  # excerpt as text
    status: int | None = None
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""  # at most max_body_bytes
    truncated: bool = False
    elapsed_ms: float = 0.0
    error: ProbeError | None = None

    def text(self, limit: int | None = None) -> str:
        """Body decoded (charset from headers, else utf-8, replacement on errors), optionally cut."""
        raise NotImplementedError


def new_session(verify_tls: bool = True, pool_size: int = 10) -> requests.Session:
    """A Session whose connections support the total deadline (see send)."""
    raise NotImplementedError


def send(session: requests.Session, req: Request) -> Exchange:
    """Send req; enforce connect/read timeouts and the total deadline; cap the body."""
    raise NotImplementedError
