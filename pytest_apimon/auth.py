"""Per-service credentials: tokens fetched once, refreshed in time, shared by threads and processes.

For a `login` or `oauth2` service, `token()` looks in three places, cheapest first: this process's
memory, then (holding the service's login lock) the shared TokenCache file, then the token endpoint,
writing what it got back to the file. One login per service serves every thread, every xdist worker
using the same cache directory, and later runs while the token lives. `static` and `basic` services
never log in.

A failed login is remembered for the run, in memory and in the file tagged with the run id, so N
interfaces on M workers cause one failed login, not N*M (no login storm), and every interface reports
the same one-line root cause. The next run (a new run id) tries again.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urljoin, urlsplit, urlunsplit

import requests
import requests.auth

from ._config_reader import finite_number
from .categories import Category
from .classify import lookup
from .config import AuthConfig, BasicAuth, Config, LoginAuth, OAuth2Auth, ServiceConfig, StaticAuth
from .errors import ApimonError
from .origins import allowed, basic_credentials, split_userinfo
from .probe import Exchange, Request, send
from .redact import Redactor, excerpt, is_credential_header
from .tokencache import CacheEntry, TokenCache, fingerprint

log = logging.getLogger("pytest_apimon")

# A 401 answered with a token we were sure of triggers a fresh login; an interface that 401s for
# other reasons must not turn into one login per call. Beyond this many per service, a 401 stands.
MAX_RELOGINS_PER_RUN = 3
# A token living no longer than the refresh margin is still used this long after it was obtained.
MIN_TOKEN_REUSE_S = 10.0
_SEND_SLACK_S = 1.0  # a token this close to expiry may die in transit: do not send it


class LoginFailed(ApimonError):
    """The token for a service could not be obtained; str() is the one-line root cause.

    `category` says what the root cause is, derived from the message so that a failure shared through the
    token cache (a plain string) keeps it: a login endpoint that cannot be reached is the service being down
    (network / timeout, counted by the storm guard), a 5xx is a server error, and only the rest (401, 403, other
    4xx, no token in a 2xx answer, no base_url) is `auth`.
    """

    @property
    def category(self) -> Category:
        return login_category(str(self))


# The stable English openings of a login failure that is not a credential problem (the zh catalogue in
# messages.py translates them): "service unreachable: the login endpoint refused the connection (…)".
UNREACHABLE = "service unreachable: the login endpoint"
LOGIN_SERVER_ERROR = "service error: the login endpoint answered"
_UNREACHABLE_PHRASES = {
    ("network", "refused"): "refused the connection",
    ("network", "dns"): "has no DNS record",
    ("network", "tls"): "failed the TLS handshake",
    ("network", "reset"): "dropped the connection",
    ("network", "other"): "could not be reached",
    ("timeout", "connect"): "did not accept a connection in time",
    ("timeout", "write"): "did not read the request in time",
    ("timeout", "read"): "did not answer in time",
    ("timeout", "total"): "did not answer in time",
}


def login_category(message: str) -> Category:
    """The Category of a login failure message (see LoginFailed)."""
    if message.startswith(UNREACHABLE):
        return Category.TIMEOUT if " in time" in message.split("(", 1)[0] else Category.NETWORK
    if message.startswith(LOGIN_SERVER_ERROR):
        return Category.UNAVAILABLE if " 503" in message.split("(", 1)[0] else Category.SERVER_ERROR
    return Category.AUTH


@dataclass
class Token:
    service: str
    value: str = field(repr=False)  # never in a repr, a traceback or a log line
    obtained_at: float
    expires_at: float | None = None  # None: unknown (or never, for static/basic)

    def apply(self, auth: AuthConfig, req: Request) -> None:
        apply_auth(auth, self, req)


def apply_auth(auth: AuthConfig, token: Token, req: Request) -> None:
    """Put the credential where the auth config says: a header (with scheme) or a query parameter, and
    name it in req.credential_* so a redirect to another origin drops it (probe.CredentialSession)."""
    if isinstance(auth, BasicAuth):
        req.headers = {**req.headers, "Authorization": f"Basic {token.value}"}
        req.credential_headers = (*req.credential_headers, "Authorization")
    elif auth.query_param:
        req.params = {**req.params, auth.query_param: token.value}
        req.credential_params = (*req.credential_params, auth.query_param)
    else:
        req.headers = {**req.headers, auth.header: f"{auth.scheme} {token.value}".strip()}
        req.credential_headers = (*req.credential_headers, auth.header)


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (epoch seconds) of a JWT, without checking the signature; None if not a JWT with exp."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _seconds(value: Any) -> float | None:
    """A positive, finite lifetime from a number or numeric string (json.loads accepts Infinity)."""
    number = finite_number(value)
    return number if number is not None and number > 0 else None


class TokenManager:
    """Thread-safe per service: one fetch at a time, the other threads wait and reuse its token.

    cache: shared TokenCache (None: this process only). run_id: the same for all workers of one run
    (a fresh one by default), scopes shared login failures and tokens of unknown lifetime.
    """

    def __init__(
        self,
        config: Config,
        session_for: Callable[[str], requests.Session],
        redactor: Redactor,
        *,
        cache: TokenCache | None = None,
        run_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._session_for = session_for
        self._redactor = redactor
        self._cache = cache
        self.run_id = run_id or uuid.uuid4().hex
        self._clock = clock
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._tokens: dict[str, Token] = {}
        self._failures: dict[str, str] = {}
        self._rejected: dict[str, set[str]] = {}  # token values a server refused, per service
        self._relogins: Counter[str] = Counter()
        self._keys: dict[str, str] = {}
        self._stats: Counter[str] = Counter()
        self._warned: set[str] = set()
        self.warnings: list[str] = []  # once per service, for the run's summary

    # ---- public

    @property
    def logins(self) -> int:
        return self._stats["logins"]

    def stats(self) -> dict[str, int]:
        """logins: token requests sent (failed ones too); login_failures; cache_hits: token() answered
        without a login (memory or file); cache_misses: token() that needed a login; file_hits; relogins
        (after a 401). Plain ints, so the lead can sum them across workers."""
        with self._lock:
            keys = ("logins", "login_failures", "cache_hits", "cache_misses", "file_hits", "relogins")
            return {k: self._stats[k] for k in keys}

    def apply(self, service: str, req: Request) -> Token:
        """Authorize req with the service's credential; returns the token used (for invalidate)."""
        tok = self.token(service)
        apply_auth(self._auth(service), tok, req)
        return tok

    def token(self, service: str) -> Token:
        """The service's usable token, fetching at most once at a time. Raises LoginFailed."""
        auth = self._auth(service)
        if isinstance(auth, StaticAuth | BasicAuth):
            # Built once: this runs for every request of the service (its value is in config.secrets too).
            held = self._tokens.get(service)
            if held is None:
                value = auth.token if isinstance(auth, StaticAuth) else auth.credentials
                self._redactor.add_secret(value)
                held = self._tokens.setdefault(service, Token(service, value, 0.0))
            return held
        with self._service_lock(service):
            now = self._clock()
            held = self._tokens.get(service)
            if held is not None and self._fresh(auth, held, now):
                self._count("cache_hits")
                return held
            if service in self._failures:
                return self._fallback(service, held, now)
            if self._cache is None:
                return self._fetch(service, auth, held, now)
            with self._cache.login_lock(service):
                entry = self._cache.get(self._key(service, auth))
                tok = self._from_entry(service, auth, entry, now)
                if tok is not None:
                    self._redactor.add_secret(tok.value)
                    self._tokens[service] = tok
                    self._count("cache_hits", "file_hits")
                    return tok
                if entry is not None and entry.error and entry.run_id == self.run_id:
                    self._failures[service] = entry.error  # another worker of this run already failed
                    return self._fallback(service, held, now)
                return self._fetch(service, auth, held, now)

    def invalidate(self, service: str, token: Token) -> bool:
        """The server answered 401 to `token`. True: fetch a token again and retry once; False: a fresh
        token will not help (static/basic, or too many re-logins this run), report the 401."""
        auth = self._auth(service)
        if not isinstance(auth, LoginAuth | OAuth2Auth):
            return False
        with self._service_lock(service):
            rejected = self._rejected.setdefault(service, set())
            if token.value in rejected:
                return True  # another thread already dropped it; token() gives the replacement
            held = self._tokens.get(service)
            if held is not None and held.value != token.value:
                return True  # already replaced
            if self._relogins[service] >= MAX_RELOGINS_PER_RUN:
                return False
            self._relogins[service] += 1
            self._count("relogins")
            rejected.add(token.value)
            self._tokens.pop(service, None)
            if self._cache is not None:
                self._cache.remove(self._key(service, auth), value=token.value)
            return True

    # ---- internals

    def _auth(self, service: str) -> AuthConfig:
        auth = self._config.service(service).auth
        if auth is None:
            raise LoginFailed(f"service '{service}' has no auth configured")
        return auth

    def _service_lock(self, service: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(service, threading.Lock())

    def _count(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._stats[name] += 1

    def _key(self, service: str, auth: LoginAuth | OAuth2Auth) -> str:
        if service not in self._keys:
            material = {k: v for k, v in asdict(auth).items() if k != "refresh_before"}
            svc = self._config.service(service)
            material.update(kind=auth.kind, service=service, base_url=svc.base_url, headers=svc.headers)
            self._keys[service] = f"{service}:{fingerprint(material)}"
        return self._keys[service]

    @staticmethod
    def _fresh(auth: LoginAuth | OAuth2Auth, tok: Token, now: float) -> bool:
        """Not within refresh_before of its expiry; for short-lived tokens at most half their lifetime
        counts as the margin, or a 60 s token with the default 300 s margin would never be used. A token
        that lives no longer than the margin is used for at least MIN_TOKEN_REUSE_S after it was obtained:
        `expires_in: 1` must not mean one login per interface (a 401 still triggers one refresh)."""
        if tok.expires_at is None:
            return True
        lifetime = max(tok.expires_at - tok.obtained_at, 0.0)
        margin = min(auth.refresh_before, lifetime / 2)
        if tok.expires_at - now > max(margin, _SEND_SLACK_S):
            return True
        return lifetime <= auth.refresh_before and 0 <= now - tok.obtained_at < MIN_TOKEN_REUSE_S

    def _warn_short_lived(self, service: str, auth: LoginAuth | OAuth2Auth, tok: Token) -> None:
        """Once per service: a token too short-lived for the refresh margin is reused for a floor period."""
        if tok.expires_at is None or service in self._warned:
            return
        lifetime = max(tok.expires_at - tok.obtained_at, 0.0)
        if lifetime <= auth.refresh_before and lifetime / 2 < MIN_TOKEN_REUSE_S:
            self._warned.add(service)
            message = (f"service '{service}': the login returned a token that lives {lifetime:g} s, not more than "
                       f"refresh_before ({auth.refresh_before:g} s); it is reused for {MIN_TOKEN_REUSE_S:g} s "
                       "instead of logging in for every request (check the server's expires_in or set ttl)")
            self.warnings.append(message)
            log.warning("%s", message)

    @staticmethod
    def _usable(tok: Token | None, now: float) -> bool:
        return tok is not None and (tok.expires_at is None or tok.expires_at - now > _SEND_SLACK_S)

    def _from_entry(self, service: str, auth: LoginAuth | OAuth2Auth, entry: CacheEntry | None,
                    now: float) -> Token | None:
        if entry is None or not entry.value or entry.value in self._rejected.get(service, ()):
            return None
        if entry.expires_at is None and entry.run_id != self.run_id:
            return None  # unknown lifetime: fine within the run that got it, never across runs
        tok = Token(service, entry.value, entry.obtained_at, entry.expires_at)
        return tok if self._fresh(auth, tok, now) else None

    def _fallback(self, service: str, held: Token | None, now: float) -> Token:
        """After a failed refresh, a token that has not expired yet still beats an error."""
        if held is not None and self._usable(held, now):
            self._count("cache_hits")
            return held
        self._count("cache_misses")
        raise LoginFailed(self._failures[service])

    def _fetch(self, service: str, auth: LoginAuth | OAuth2Auth, held: Token | None, now: float) -> Token:
        """Log in (the caller holds the locks), remember the outcome in memory and in the cache."""
        self._count("logins")
        try:
            tok = self._login(service, auth) if isinstance(auth, LoginAuth) else self._oauth2(service, auth)
        except LoginFailed as exc:
            self._count("login_failures")
            # The message carries the login URL and the server's words: mask it before it is kept, written
            # to the cache file or raised to users' fixtures (none of which mask on their own).
            message = self._redactor.text(str(exc))
            self._failures[service] = message
            if self._cache is not None:
                self._cache.put(self._key(service, auth),
                                CacheEntry(service, obtained_at=now, run_id=self.run_id, error=message))
            return self._fallback(service, held, now)
        self._count("cache_misses")
        self._redactor.add_secret(tok.value)
        self._warn_short_lived(service, auth, tok)
        self._tokens[service] = tok
        if self._cache is not None:
            self._cache.put(self._key(service, auth), CacheEntry(service, tok.value, tok.obtained_at,
                                                                 tok.expires_at, self.run_id))
        return tok

    def _request(self, svc: ServiceConfig, method: str, url: str, headers: dict[str, str], **body: Any) -> Request:
        """A token request: never follows a redirect (its body holds the password, and a redirect could carry
        it to another host or re-send it); the service's secret headers only when url is one of its origins."""
        d = self._config.defaults
        timeout = svc.timeout or d.timeout
        url, user, password = split_userinfo(url)
        if not allowed(url, svc.origins):
            secret = {k for k, v in svc.headers.items() if is_credential_header(k, v)}
            headers = {k: v for k, v in headers.items() if k not in secret or svc.headers[k] != v}
        if user is not None and not any(k.lower() == "authorization" for k in headers):
            self._redactor.add_secrets([password or "", basic_credentials(user, password or "")])
            headers = {**headers, "Authorization": "Basic " + basic_credentials(user, password or "")}
        return Request(method=method, url=url, headers=headers, timeout=timeout,
                       connect_timeout=min(d.connect_timeout, timeout), verify_tls=svc.verify_tls,
                       ca_bundle=svc.ca_bundle, max_body_bytes=d.max_body_bytes, follow_redirects=False,
                       credential_headers=tuple(k for k, v in headers.items() if is_credential_header(k, v)), **body)

    def _exchange(self, service: str, req: Request) -> tuple[Exchange, Any]:
        """Send the login request; a non-2xx answer, a redirect or a network error is the LoginFailed message."""
        ex = send(self._session_for(service), req)
        prefix = f"login to {service} failed: {req.method} {ex.url}"
        if ex.error:
            phrase = _UNREACHABLE_PHRASES.get((ex.error.kind, ex.error.sub))
            if phrase is not None:  # the service is down, not the credentials wrong: say so first
                raise LoginFailed(f"{UNREACHABLE} {phrase} ({req.method} {ex.url} → {ex.error.message})")
            raise LoginFailed(f"{prefix} → {ex.error.message}")
        if ex.status is not None and 300 <= ex.status < 400:
            target = next((v for k, v in ex.response_headers.items() if k.lower() == "location"), "")
            where = urljoin(ex.url, target) if target else "(no Location)"
            raise LoginFailed(f"{prefix} → {ex.status} redirect to {where}: a login never follows a redirect "
                              "(it would carry the credentials along); configure the final login URL")
        try:
            data = json.loads(ex.body.decode("utf-8", "replace")) if ex.body else None
        except ValueError:
            data = None
        says = _server_says(data, self._redactor)
        if ex.status is not None and 500 <= ex.status <= 599:
            raise LoginFailed(f"{LOGIN_SERVER_ERROR} HTTP {ex.status} ({req.method} {ex.url}{says})")
        if ex.status is None or not 200 <= ex.status < 300:
            raise LoginFailed(f"{prefix} → {ex.status}{says}")
        return ex, data

    def _login(self, service: str, auth: LoginAuth) -> Token:
        svc = self._config.service(service)
        if auth.url:
            url = auth.url
        elif svc.base_url:
            url = svc.base_url + (auth.path or "")
        else:
            raise LoginFailed(f"login to {service} failed: no base_url for service '{service}'")
        req = self._request(svc, auth.method, url, {**svc.headers, **auth.headers}, json=auth.json,
                            has_json=auth.json is not None, form=auth.form)
        ex, data = self._exchange(service, req)
        prefix = f"login to {service} failed: {auth.method} {ex.url} → {ex.status}, but"
        if auth.token_header:
            value = next((v for k, v in ex.response_headers.items() if k.lower() == auth.token_header.lower()), None)
            where = f"no token in response header {auth.token_header}"
        else:
            found, raw = lookup(data, auth.token_path) if data is not None else (False, None)
            ok = found and isinstance(raw, str | int) and not isinstance(raw, bool)
            value = str(raw) if ok else None
            where = f"no token at '{auth.token_path}' in the response" + ("" if data is not None else " (not JSON)")
        if not value or not value.strip():
            raise LoginFailed(f"{prefix} {where}")
        value = value.strip()
        now = self._clock()
        return Token(service, value, now, self._expiry(auth, value, data, now, prefix))

    def _expiry(self, auth: LoginAuth, value: str, data: Any, now: float, prefix: str) -> float | None:
        if auth.ttl:
            return now + auth.ttl
        if auth.expiry == "jwt":
            exp = jwt_expiry(value)
            if exp is None:
                raise LoginFailed(f"{prefix} the token is not a JWT with an 'exp' claim (expiry: jwt)")
            return exp if exp > now else None  # already past: clock skew; rely on 401 → refresh
        if auth.expires_in_path:
            seconds = _seconds(lookup(data, auth.expires_in_path)[1]) if data is not None else None
            if seconds is None:
                raise LoginFailed(f"{prefix} no lifetime in seconds at '{auth.expires_in_path}' (expires_in_path)")
            return now + seconds
        if not auth.token_header and data is not None:
            parent = auth.token_path.rsplit(".", 1)[0] if "." in auth.token_path else ""
            seconds = _seconds(lookup(data, f"{parent}.expires_in" if parent else "expires_in")[1])
            if seconds is not None:
                return now + seconds
        exp = jwt_expiry(value)
        return exp if exp is not None and exp > now else None

    def _oauth2(self, service: str, auth: OAuth2Auth) -> Token:
        svc = self._config.service(service)
        form = {"grant_type": "client_credentials"}
        if auth.scope:
            form["scope"] = auth.scope
        if auth.audience:
            form["audience"] = auth.audience
        form.update(auth.extra_params)
        headers = {"Accept": "application/json", **auth.headers}
        if auth.client_auth == "basic":  # RFC 6749 §2.3.1: form-encode, then base64
            pair = f"{quote_plus(auth.client_id)}:{quote_plus(auth.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form.update(client_id=auth.client_id, client_secret=auth.client_secret)
        ex, data = self._exchange(service, self._request(svc, "POST", auth.token_url, headers, form=form))
        found, raw = lookup(data, "access_token") if data is not None else (False, None)
        if not found or not isinstance(raw, str) or not raw.strip():
            raise LoginFailed(f"login to {service} failed: POST {ex.url} → {ex.status}, but no access_token "
                              "in the response")
        now = self._clock()
        seconds = _seconds(data.get("expires_in")) if isinstance(data, dict) else None
        expires_at = now + seconds if seconds else now + auth.ttl if auth.ttl else None
        return Token(service, raw.strip(), now, expires_at)


class SessionAuth(requests.auth.AuthBase):
    """`session.auth = SessionAuth(manager, "nurse")`: the service's credential on every request of a plain
    requests.Session (for user-written checks), with the same one-refresh-one-retry on 401 as the engine."""

    def __init__(self, manager: TokenManager, service: str) -> None:
        self.manager, self.service = manager, service

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if not allowed(r.url, self.manager._config.service(self.service).origins):
            return r  # the credential stays with its service's origins
        tok = self._authorize(r)
        r.register_hook("response", self._retry_on_401(tok))
        return r

    def _authorize(self, r: requests.PreparedRequest) -> Token:
        tok = self.manager.token(self.service)
        carrier = Request(method=r.method or "GET", url=r.url or "")
        apply_auth(self.manager._auth(self.service), tok, carrier)
        r.headers.update(carrier.headers)
        for name, value in carrier.params.items():  # replace, never repeat, a token parameter
            parts = urlsplit(r.url or "")
            query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
            r.url = urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))
        return tok

    def _retry_on_401(self, tok: Token) -> Callable[..., requests.Response]:
        def hook(resp: requests.Response, **kwargs: Any) -> requests.Response:
            if resp.status_code != 401 or not self.manager.invalidate(self.service, tok):
                return resp
            retry = resp.request.copy()
            retry.hooks = {"response": []}  # one retry only
            self._authorize(retry)
            resp.close()
            new = resp.connection.send(retry, **kwargs)
            new.history.append(resp)
            return new

        return hook


def _server_says(data: Any, redactor: Redactor | None = None) -> str:
    """The server's own short explanation of a refused login, if its JSON has one: at most 120 characters,
    masked before it is cut (redact.excerpt; it may quote the credentials it refused)."""
    if not isinstance(data, dict):
        return ""
    for key in ("error_description", "error", "msg", "message"):
        if isinstance(data.get(key), str) and data[key].strip():
            return f" ({excerpt(' '.join(data[key].split()), 120, redactor)})"
    return ""
