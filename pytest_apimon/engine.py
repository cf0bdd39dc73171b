"""Checking one interface end to end: resolve the request, apply the token, probe, classify.

The engine owns the per-service `requests.Session`s (connection reuse) and the TokenManager.
It turns every outcome, including problems of its own inputs, into an InterfaceResult; it
never raises for a bad interface, so one broken entry cannot stop the others.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from . import certs
from .auth import LoginFailed, SessionAuth, Token, TokenManager
from .categories import Category, Outcome
from .classify import Classification, classify, retry_after
from .config import Config, LoginAuth, OAuth2Auth
from .documents import Interface
from .errors import ApimonError
from .origins import OriginCookiePolicy, allowed, basic_credentials, host_port, split_userinfo
from .probe import CredentialSession, Exchange, Request, guard_connections, new_session, send, within_deadline
from .redact import (
    Redactor,
    credential_header_values,
    is_credential_header,
    is_secret_name,
    looks_like_credential,
    secret_values,
)
from .reproduce import curl_command
from .results import InterfaceResult
from .tokencache import TokenCache

# A `{name}` (OpenAPI) or `{{name}}` (Postman) left in the URL before its query: a template nobody filled, also
# percent-encoded (a value that was itself a template, "%7BpetId%7D", is what the false PASS sent).
_TEMPLATE_LEFT = re.compile(r"\{[^{}/?#]*\}|%7B[^/?#]*?%7D", re.IGNORECASE)
REQUEST_EXCERPT = 2048
RESPONSE_EXCERPT = 2048
# Characters read past an excerpt's cut before masking (redact.excerpt), so a secret crossing it is masked whole.
_LOOKAHEAD = 4096


class UnfilledTemplate(ApimonError, ValueError):
    """The URL still holds a `{…}` template variable (see Engine.build_request)."""


class Engine:
    def __init__(self, config: Config, redactor: Redactor | None = None, pool_size: int = 10, *,
                 token_cache: TokenCache | None = None, run_id: str | None = None) -> None:
        self.config = config
        self.pool_size = pool_size  # connections kept per service: match the per-host concurrency cap
        self.redactor = redactor or Redactor(config.secrets)
        self._sessions: dict[str, requests.Session] = {}
        self._lock = threading.Lock()
        self.clock: Callable[[], float] = time.time  # "now" for certificate expiry; tests inject one
        self._token_cache = token_cache
        # token_cache: shared with the other workers (and later runs); run_id: the same in every worker.
        self.tokens = TokenManager(config, self.session, self.redactor, cache=token_cache, run_id=run_id)

    def session(self, service: str) -> requests.Session:
        with self._lock:
            sess = self._sessions.get(service)
            if sess is None:
                sess = new_session(verify_tls=self.config.service(service).verify_tls, pool_size=self.pool_size,
                                   max_redirects=self.config.defaults.max_redirects)
                sess.is_known_secret = self.redactor.is_known
                sess.mask = self.redactor.text
                self._sessions[service] = sess
            return sess

    def close(self) -> None:
        with self._lock:
            for sess in self._sessions.values():
                sess.close()
            self._sessions.clear()

    def timeout_for(self, itf: Interface) -> float:
        return itf.timeout or self.config.service(itf.service).timeout or self.config.defaults.timeout

    def attempt_budget(self, itf: Interface) -> float:
        """Seconds one check() of `itf` may take while every request in it keeps its own deadline: the base of the
        hang guards (runner.Runner's `deadline`, the pytest-timeout marker of retries.add_markers).

        Twice the request's deadline (the request, and its resend after a 401), and for an interface that sends
        a login or OAuth2 token, twice (the first token, the refreshed one) the login's own deadline (its auth
        service's `timeout`, which may be longer than the interface's) plus the wait for another thread's or
        process's login of that service. A budget shorter than that called a login that was merely slow to
        time out "the check hung (hang guard)" instead of reporting the login's timeout."""
        request = self.timeout_for(itf)
        service = self.auth_service(itf)
        if service is None or not isinstance(self.config.service(service).auth, LoginAuth | OAuth2Auth):
            return 2 * request
        login = self.config.service(service).timeout or self.config.defaults.timeout
        other = max(login, self._token_cache.lock_timeout if self._token_cache is not None else 0.0)
        return 2 * (request + login + other)

    def build_request(self, itf: Interface) -> Request:
        """The resolved request. ValueError when the service has no base URL for a `path`, or when the URL
        (before its query) still holds a `{…}` template variable: such a request is never sent.

        Credentials are bound to origins (origins.py): the service's secret-looking config headers go only to
        its own origins; URL userinfo becomes `Authorization: Basic` for that URL (RFC 7617) and leaves the URL.
        """
        svc = self.config.service(itf.service)
        if itf.url:
            url = itf.url
        elif svc.base_url or itf.fallback_base_url:  # a spec's own server only when none is configured
            url = (svc.base_url or itf.fallback_base_url or "") + (itf.path or "")
        else:
            raise ValueError(
                f"interface uses path '{itf.path}' but service '{itf.service}' has no base_url "
                f"for environment '{self.config.env}' in {self.config.path or 'the config'}"
            )
        left = _TEMPLATE_LEFT.search(url.split("?", 1)[0].split("#", 1)[0])
        if left:  # never send a literal template: the server would see /etag/%7Betag%7D and may answer 200
            raise UnfilledTemplate(f"URL still holds the template variable {left.group(0)}: it is never sent; "
                                   "give it a value (apimon overrides `params` for an imported spec)")
        url, user, password = split_userinfo(url)
        # A document's own credentials (a ${VAR} or a literal under a secret-looking name) are masked by value.
        body = itf.json if itf.has_json else None
        self.redactor.add_secrets(secret_values([itf.headers, itf.params, itf.form, body]))
        self.redactor.add_secrets(v for v in itf.headers.values() if looks_like_credential(v))
        self.redactor.add_secrets(secret_values(dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))))
        trusted = allowed(url, svc.origins)
        headers = {k: v for k, v in svc.headers.items() if trusted or not is_credential_header(k, v)}
        headers.update(itf.headers)
        credential_headers = [k for k, v in headers.items() if is_credential_header(k, v)]
        self.redactor.add_secrets(credential_header_values(headers))
        if user is not None:
            self.redactor.add_secrets([password or "", basic_credentials(user, password or "")])
            if not any(k.lower() == "authorization" for k in headers):
                headers["Authorization"] = "Basic " + basic_credentials(user, password or "")
                credential_headers.append("Authorization")
        d = self.config.defaults
        timeout = self.timeout_for(itf)
        return Request(
            method=itf.method,
            url=url,
            params=dict(itf.params),
            headers=headers,
            json=itf.json if itf.has_json else None,
            has_json=itf.has_json,
            form=itf.form,
            body=itf.body,
            timeout=timeout,
            connect_timeout=min(d.connect_timeout, timeout),
            verify_tls=svc.verify_tls if itf.verify_tls is None else itf.verify_tls,
            ca_bundle=svc.ca_bundle,
            max_body_bytes=d.max_body_bytes,
            # Postman's followRedirects: false, or a 3xx in expect.status: the redirect itself is the answer.
            follow_redirects=itf.follow_redirects and itf.expect.follow_redirects,
            credential_headers=tuple(credential_headers),
            credential_params=tuple(k for k in itf.params if is_secret_name(k)),
        )

    def withheld(self, itf: Interface, req: Request) -> str | None:
        """Why the service's credentials are not sent to req.url, or None when they may be."""
        notes = []
        svc = self.config.service(itf.service)
        if any(is_credential_header(k, v) for k, v in svc.headers.items()) and not allowed(req.url, svc.origins):
            notes.append(itf.service)
        auth_svc = self.auth_service(itf)
        if auth_svc and auth_svc not in notes and not allowed(req.url, self.config.service(auth_svc).origins):
            notes.append(auth_svc)
        if not notes:
            return None
        return (f"credentials withheld: host {host_port(req.url)} is not an origin of service "
                f"{' or '.join(notes)} (add it to services.{notes[0]}.trusted_origins if it should get them)")

    def auth_service(self, itf: Interface) -> str | None:
        """Which service's token this interface sends, if any."""
        if isinstance(itf.auth, str):
            return itf.auth  # another service's token; a missing auth config is reported, not ignored
        if itf.auth is not None:
            return itf.service if itf.auth else None
        return itf.service if self.config.service(itf.service).auth is not None else None

    def check(self, itf: Interface) -> InterfaceResult:
        """One check of `itf` (one attempt; retries belong to runner.Runner and retries.py).

        Builds the request from the document and config, attaches its auth service's token only when the URL is
        one of that service's origins (origins.allowed), sends it under the probe's timeouts and total deadline
        (probe.send), and classifies the exchange against `itf.expect` (classify.classify). A 401 answered to a
        cached token invalidates it and resends once with a fresh token.

        Returns a new InterfaceResult with `nodeid` empty (the caller sets it) and `attempts` 1:
        - passed: outcome PASSED, `status`, `elapsed_ms` (milliseconds of the whole exchange, redirects
          included, rounded to 0.1), `url` masked, `slow`/`warn_ms` when slower than expect.warn_ms;
        - failed: outcome FAILED with exactly one `category`, its `sub` reason and a masked one-line `reason`;
          with a response also masked request/response excerpts, a masked `curl` line (`reproduce`) and
          `retry_after` (seconds, from a Retry-After header). A template or config error is INVALID_DOCUMENT
          (sub 'template' / 'config', nothing sent); a failed login is the login's category with sub 'login'.
        `started_at` is Unix seconds (time.time()) when the check began.

        Network, TLS, timeout, DNS and HTTP problems never raise: they become categories. Only a programming
        error propagates (the plugin then reports the item as an `unexpected` failure).
        """
        started = time.time()
        result = InterfaceResult(
            nodeid="", service=itf.service, module=itf.module, name=itf.name, method=itf.method,
            url=itf.url or itf.path or "", file=itf.file, line=itf.line, tags=list(itf.tags), started_at=started,
        )
        try:
            req = self.build_request(itf)
        except ValueError as exc:
            sub = "template" if isinstance(exc, UnfilledTemplate) else "config"
            return self._fail(result, Classification(Category.INVALID_DOCUMENT, sub, str(exc)))

        token: Token | None = None
        withheld = self.withheld(itf, req)
        auth_svc = self.auth_service(itf)
        if auth_svc and not allowed(req.url, self.config.service(auth_svc).origins):
            auth_svc = None  # the token stays with its service's origins
        if auth_svc:
            try:
                token = self.tokens.apply(auth_svc, req)
            except LoginFailed as exc:
                result.url = self.redactor.text(req.url)
                result.login_service = auth_svc
                return self._fail(result, Classification(Category(exc.category), "login", str(exc)))

        ex = send(self.session(itf.service), req)
        if ex.status == 401 and token is not None and auth_svc and self.tokens.invalidate(auth_svc, token):
            # The token may have been revoked or expired early: one fresh token, one retry.
            req = self.build_request(itf)
            try:
                token = self.tokens.apply(auth_svc, req)
            except LoginFailed as exc:
                result.login_service = auth_svc
                return self._fail(result, Classification(Category(exc.category), "login", str(exc)), ex, req)
            ex = send(self.session(itf.service), req)

        result.certificates = dict(ex.certificates)
        outcome = classify(ex, itf.expect, self.redactor)
        if outcome.passed:
            outcome = self._certificate(itf, ex) or outcome
        if outcome.passed:
            result.slow, result.warn_ms = outcome.sub == "slow", itf.expect.warn_ms
            self._fill(result, ex, details=False)  # excerpts only matter for problems: saves CPU and memory
            return result
        if withheld:
            outcome = replace(outcome, reason=f"{outcome.reason} ({withheld})" if outcome.reason else withheld)
        if ex.status is not None:  # 429, 503 and others may say when to come back (runner.RetryPolicy)
            result.retry_after = retry_after(ex.response_headers, time.time())
        return self._fail(result, outcome, ex, req)

    def _certificate(self, itf: Interface, ex: Exchange) -> Classification | None:
        """`unexpected`/`cert` when a certificate of the answer's origins has fewer days left than
        expect.cert_days, else the service's (else the global) cert_fail_days (certs.py). Judged after the
        answer's own checks: a wrong answer is the more urgent news."""
        days = itf.expect.cert_days
        if days is None:
            days = self.config.cert_days(itf.service)[1]
        found = certs.failing(ex.certificates, days, self.clock())
        if found is None:
            return None
        return Classification(Category.UNEXPECTED, "cert", certs.describe(*found, self.clock()))

    def _fill(self, result: InterfaceResult, ex: Exchange, details: bool = True, req: Request | None = None) -> None:
        r = self.redactor
        result.url = r.text(ex.url)
        result.status = ex.status
        result.elapsed_ms = round(ex.elapsed_ms, 1)
        if not details:
            return
        # What the tool itself sent as a credential is masked by value everywhere from now on: a server echoing
        # `X-Partner: Token k-93jd82hd` back in its body or a header is masked like the request header.
        r.add_secrets(credential_header_values(ex.request_headers))
        result.request_headers = r.headers(ex.request_headers)
        result.request_body = r.excerpt(ex.request_body or "", REQUEST_EXCERPT)
        result.response_headers = r.headers(ex.response_headers, received=True)
        result.response_body = (r.excerpt(ex.text(RESPONSE_EXCERPT + _LOOKAHEAD), RESPONSE_EXCERPT)
                                if ex.status is not None else "")
        result.reproduce = curl_command(
            ex.method, ex.url, ex.request_headers, ex.request_body, redactor=r,
            timeout_s=req.timeout if req else None, verify_tls=req.verify_tls if req else True,
            follow_redirects=req.follow_redirects if req else True,
        )

    def _fail(self, result: InterfaceResult, outcome: Classification, ex: Exchange | None = None,
              req: Request | None = None) -> InterfaceResult:
        if ex is not None:
            self._fill(result, ex, req=req)
        result.outcome = Outcome.FAILED
        assert outcome.category is not None
        result.category = outcome.category
        result.sub = outcome.sub
        result.reason = self.redactor.text(outcome.reason)
        return result


class ServiceSession(CredentialSession):
    """A requests.Session bound to one service: relative URLs join its base URL (for user-written checks).

    Its credentials go only to the service's origins, like the engine's requests. The decision is taken in
    send(), the one method every path goes through (request(), prepare_request() + send(), and each hop of
    a redirect, which requests sends with send()): to another origin a request loses every credential
    header (redact.is_credential_header, the rule masking uses too), Cookie and Authorization included.
    Cookies are origin-bound as well (origins.OriginCookiePolicy): one set by 127.0.0.1:A never goes to :B.
    """

    def __init__(self, base_url: str | None, origins: tuple[str, ...] = (), *, timeout: float = 10.0,
                 connect_timeout: float = 5.0) -> None:
        """`timeout`, `connect_timeout`: seconds, the service's (config.yaml). A request sent without `timeout=`
        gets (connect_timeout, timeout) and every request the total deadline `timeout` (longer if the caller's own
        read timeout is), as the documents' requests do (probe.send): without them a user's check against a
        stalled service waited for ever, and pytest-timeout guards only the interface items."""
        super().__init__()
        self.base_url = base_url
        self.origins = origins
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.cookies.set_policy(OriginCookiePolicy())
        guard_connections(self)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        url = url.decode() if isinstance(url, bytes) else url
        if self.base_url and "://" not in url:
            url = self.base_url.rstrip("/") + "/" + url.lstrip("/")
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if not allowed(request.url, self.origins):
            request = request.copy()  # the caller's PreparedRequest stays as it was built
            for name, value in list(request.headers.items()):
                if (name.lower() in self.credential_headers or name.lower() in _ALWAYS_CREDENTIALS
                        or is_credential_header(name, value) or self._carries_secret(value)):
                    del request.headers[name]
        total = self.timeout
        given = kwargs.get("timeout")
        if given is None:
            kwargs["timeout"] = (self.connect_timeout, self.timeout)
        else:  # the caller's own timeouts stand; the total deadline is never shorter than their read timeout
            read = given[1] if isinstance(given, tuple) else given
            if isinstance(read, int | float):
                total = max(total, float(read))
        send = super().send
        return within_deadline(total, self.connect_timeout, lambda: send(request, **kwargs))


# Sent by a client only to carry a credential, whatever its value looks like.
_ALWAYS_CREDENTIALS = frozenset(("authorization", "proxy-authorization", "cookie"))


def service_session(engine: Engine, service: str) -> ServiceSession:
    """An authenticated session for `service`: its base URL, default headers, TLS setting and token."""
    svc = engine.config.service(service)
    timeout = svc.timeout or engine.config.defaults.timeout
    sess = ServiceSession(svc.base_url, svc.origins, timeout=timeout,
                          connect_timeout=engine.config.defaults.connect_timeout)
    sess.headers.update(svc.headers)
    sess.credential_headers.update(k.lower() for k, v in svc.headers.items() if is_credential_header(k, v))
    sess.is_known_secret = engine.redactor.is_known
    sess.mask = engine.redactor.text
    sess.verify = (svc.ca_bundle or True) if svc.verify_tls else False
    if svc.auth is not None:
        sess.auth = SessionAuth(engine.tokens, service)
    return sess
