"""Per-service tokens: one login per service, shared by all threads of a process.

A failed login is remembered for the run so N interfaces do not cause N logins (no login storm);
each of them reports the one root cause instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from .classify import lookup
from .config import Config, LoginAuth
from .probe import Exchange, Request, send
from .redact import Redactor


class LoginFailed(Exception):
    """The token for a service could not be obtained; str() is the one-line root cause."""


@dataclass
class Token:
    service: str
    value: str
    obtained_at: float
    expires_at: float | None = None

    def apply(self, auth: LoginAuth, req: Request) -> None:
        if auth.query_param:
            req.params = {**req.params, auth.query_param: self.value}
        else:
            req.headers = {**req.headers, auth.header: f"{auth.scheme} {self.value}".strip()}


class TokenManager:
    def __init__(
        self,
        config: Config,
        session_for: Callable[[str], requests.Session],
        redactor: Redactor,
    ) -> None:
        self._config = config
        self._session_for = session_for
        self._redactor = redactor
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._tokens: dict[str, Token] = {}
        self._failures: dict[str, str] = {}
        self.logins = 0  # logins performed by this process

    def _service_lock(self, service: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(service, threading.Lock())

    def token(self, service: str) -> Token:
        """The service's valid token, logging in at most once at a time per service."""
        with self._service_lock(service):
            if service in self._failures:
                raise LoginFailed(self._failures[service])
            tok = self._tokens.get(service)
            if tok and (tok.expires_at is None or tok.expires_at > time.time() + 5):
                return tok
            try:
                tok = self._login(service)
            except LoginFailed as exc:
                self._failures[service] = str(exc)
                raise
            self._tokens[service] = tok
            return tok

    def invalidate(self, service: str, token: Token) -> None:
        """Forget a token the server rejected (only if no other thread replaced it meanwhile)."""
        with self._service_lock(service):
            if self._tokens.get(service) is token:
                del self._tokens[service]

    def _login(self, service: str) -> Token:
        svc = self._config.service(service)
        auth = svc.auth
        if auth is None:
            raise LoginFailed(f"service '{service}' has no auth configured")
        if auth.url:
            url = auth.url
        elif svc.base_url:
            url = svc.base_url + (auth.path or "")
        else:
            raise LoginFailed(f"login to {service} failed: no base_url for service '{service}'")
        req = Request(
            method=auth.method,
            url=url,
            headers={**svc.headers, **auth.headers},
            json=auth.json,
            has_json=auth.json is not None,
            form=auth.form,
            timeout=svc.timeout or self._config.defaults.timeout,
            connect_timeout=self._config.defaults.connect_timeout,
            verify_tls=svc.verify_tls,
            max_body_bytes=self._config.defaults.max_body_bytes,
            max_redirects=self._config.defaults.max_redirects,
        )
        self.logins += 1
        ex = send(self._session_for(service), req)
        prefix = f"login to {service} failed: {auth.method} {ex.url}"
        if ex.error:
            raise LoginFailed(f"{prefix} → {ex.error.message}")
        if ex.status is None or not 200 <= ex.status < 300:
            raise LoginFailed(f"{prefix} → {ex.status}")
        value, expires_in = self._extract(auth, ex)
        if not value:
            where = f"header {auth.token_header}" if auth.token_header else f"'{auth.token_path}'"
            raise LoginFailed(f"{prefix} → {ex.status}, but no token at {where}")
        self._redactor.add_secret(value)
        now = time.time()
        return Token(service, value, now, now + expires_in if expires_in else None)

    @staticmethod
    def _extract(auth: LoginAuth, ex: Exchange) -> tuple[str | None, float | None]:
        if auth.token_header:
            lowered = {k.lower(): v for k, v in ex.response_headers.items()}
            return lowered.get(auth.token_header.lower()), None
        try:
            data = json.loads(ex.body.decode("utf-8", "replace"))
        except ValueError:
            return None, None
        found, value = lookup(data, auth.token_path)
        if not found or not isinstance(value, (str, int)) or value == "":
            return None, None
        expires_in = None
        parent = auth.token_path.rsplit(".", 1)[0] if "." in auth.token_path else ""
        ok, exp = lookup(data, f"{parent}.expires_in" if parent else "expires_in")
        if ok and isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp > 0:
            expires_in = float(exp)
        return str(value), expires_in
