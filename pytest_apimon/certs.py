"""TLS certificate expiry: the notAfter of each HTTPS origin's certificate, days left, and the thresholds.

probe.py reads the certificate of the connection each request actually used (the DER form, which the
`ssl` module returns also with verification off) and keeps its notAfter per origin in the Exchange; the
engine fails an interface whose origin's certificate has fewer than `expect.cert_days` (else the service's or
the global `cert_fail_days`) days left; at the end of the run `summarize` gives one `CertStatus` per origin for
the report, the warning (fewer than `cert_warn_days` days left, at most once a day per origin in WeCom,
state.py remembers when), the status page and the Prometheus gauge.

Parsing uses the `cryptography` library (RFC 5280 §4.1.2.5 validity; its `not_valid_after_utc`): the
standard library decodes a peer certificate only after verifying it (`getpeercert()` is empty otherwise).
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from .origins import basic_credentials

log = logging.getLogger("pytest_apimon")

DAY = 86400.0
DEFAULT_WARN_DAYS = 14.0
DEFAULT_FAIL_DAYS = 3.0

# Reason templates (messages.py translates them; keep the two in step).
MESSAGES = {
    "expires": "certificate of {origin} expires in {left} (notAfter {not_after})",
    "expired": "certificate of {origin} expired {ago} ago (notAfter {not_after})",
}


def not_after(der: bytes) -> float:
    """The certificate's notAfter as epoch seconds (UTC). Raises ValueError for bytes that are no X.509
    certificate in DER."""
    from cryptography import x509  # imported on first use: only HTTPS runs need it

    try:
        cert = x509.load_der_x509_certificate(der)
    except Exception as exc:  # cryptography raises ValueError, but a malformed date can raise others
        raise ValueError(f"unreadable certificate: {exc}") from None
    return cert.not_valid_after_utc.timestamp()


def peer_not_after(sock: Any) -> float | None:
    """notAfter (epoch seconds) of the peer certificate of a TLS socket (ssl.SSLSocket or urllib3's
    SSLTransport), None when there is none or it cannot be read: inspecting a certificate never fails a request.

    The DER form (`getpeercert(binary_form=True)`) is returned with verification off too; the decoded form is
    empty then, hence the parsing here."""
    try:
        der = sock.getpeercert(binary_form=True)
        return not_after(der) if der else None
    except Exception as exc:
        log.warning("cannot read the TLS certificate of %s: %s", getattr(sock, "server_hostname", "?"), exc)
        return None


def expired_not_after(url: str, proxy: str | None, timeout: float, *,
                      resolve: Callable[[str, int, float], list[Any]]) -> float | None:
    """notAfter of the certificate `url`'s server presents, read with verification off: the only way to learn
    it after a verified handshake refused the certificate as expired. One TLS handshake, no request sent; direct
    (`resolve(host, port, timeout)`: getaddrinfo within the deadline, probe.resolve) or through an http:// proxy
    (CONNECT, stdlib http.client); None on any failure or for an https:// proxy."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if not proxy:
            infos = resolve(host, port, timeout)
            with socket.create_connection(infos[0][4][:2], timeout=timeout) as raw, \
                    context.wrap_socket(raw, server_hostname=host) as tls:
                return peer_not_after(tls)
        via = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        if via.scheme != "http":
            return None
        headers = {}
        if via.username:
            credentials = basic_credentials(unquote(via.username), unquote(via.password or ""))
            headers["Proxy-Authorization"] = "Basic " + credentials
        conn = http.client.HTTPSConnection(via.hostname or "", via.port or 80, timeout=timeout, context=context)
        conn.set_tunnel(host, port, headers=headers)
        try:
            conn.connect()
            return peer_not_after(conn.sock)
        finally:
            conn.close()
    except Exception:
        return None


def days_left(when: float, now: float) -> float:
    """Days (fractional, negative once expired) from `now` to `when`, both epoch seconds."""
    return (when - now) / DAY


def fmt_not_after(when: float) -> str:
    """'2026-12-01 12:00 UTC': certificates state their validity in UTC (RFC 5280 §4.1.2.5)."""
    return datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _span(days: float) -> str:
    """Whole days, or hours under one day: rounded to the hour, then down to whole days (4 days 23 h 59 min is
    '5 days' as a person counts it the moment a 5-day certificate is checked; 2 days 14 h is '2 days', never
    more time than there is)."""
    if round(abs(days) * 24) >= 24:
        n = round(abs(days) * 24) // 24
        return f"{n} day" if n == 1 else f"{n} days"
    hours = round(abs(days) * 1440) // 60  # the same rule one unit down: to the minute, then down to hours
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def describe(origin: str, when: float, now: float) -> str:
    """'certificate of https://a:443 expires in 2 days (notAfter 2026-12-01 12:00 UTC)', or '… expired 3 days
    ago (…)'."""
    left = days_left(when, now)
    if left < 0:
        return MESSAGES["expired"].format(origin=origin, ago=_span(left), not_after=fmt_not_after(when))
    return MESSAGES["expires"].format(origin=origin, left=_span(left), not_after=fmt_not_after(when))


def failing(certificates: Mapping[str, float], fail_days: float, now: float) -> tuple[str, float] | None:
    """The (origin, notAfter) with the fewest days left when that is fewer than `fail_days`, else None."""
    if not certificates:
        return None
    origin, when = min(certificates.items(), key=lambda item: item[1])
    return (origin, when) if days_left(when, now) < fail_days else None


@dataclass
class CertStatus:
    """One HTTPS origin's certificate as seen in a run."""

    origin: str  # 'https://api.example.com:443' (origins.origin_of)
    not_after: float  # epoch seconds
    days_left: float
    warn_days: float  # the largest cert_warn_days among the services that use it
    fail_days: float  # the largest cert_fail_days among them (an interface's expect.cert_days may differ)
    services: list[str] = field(default_factory=list)

    @property
    def level(self) -> str:
        """'failing' (fewer than fail_days left), 'warning' (fewer than warn_days), or 'ok'."""
        if self.days_left < self.fail_days:
            return "failing"
        return "warning" if self.days_left < self.warn_days else "ok"

    def describe(self, now: float) -> str:
        """The catalogue line (see `describe`) for this origin at `now`."""
        return describe(self.origin, self.not_after, now)

    def to_dict(self) -> dict[str, object]:
        """The JSON report's entry: notAfter as text and epoch seconds, days left (2 decimals), level."""
        return {"origin": self.origin, "not_after": fmt_not_after(self.not_after),
                "not_after_ts": self.not_after, "days_left": round(self.days_left, 2), "level": self.level,
                "warn_days": self.warn_days, "fail_days": self.fail_days, "services": list(self.services)}


def summarize(readings: Iterable[tuple[str, Mapping[str, float]]], thresholds: Mapping[str, tuple[float, float]],
              now: float) -> list[CertStatus]:
    """One CertStatus per origin, sorted by notAfter (soonest first).

    readings: (service, {origin: notAfter}) per checked interface; thresholds: service -> (warn_days, fail_days).
    Connections of one run may see two certificates of one origin (a renewal mid-run, several servers behind
    one name): the sooner notAfter is kept, so a stale server is not hidden by a renewed one."""
    seen: dict[str, CertStatus] = {}
    for service, certificates in readings:
        warn, fail = thresholds.get(service, (DEFAULT_WARN_DAYS, DEFAULT_FAIL_DAYS))
        for origin, when in certificates.items():
            status = seen.get(origin)
            if status is None:
                seen[origin] = CertStatus(origin, when, days_left(when, now), warn, fail, [service])
                continue
            if when < status.not_after:
                status.not_after, status.days_left = when, days_left(when, now)
            status.warn_days, status.fail_days = max(status.warn_days, warn), max(status.fail_days, fail)
            if service not in status.services:
                status.services.append(service)
    return sorted(seen.values(), key=lambda s: (s.not_after, s.origin))


def due(warnings: Iterable[CertStatus], known: Mapping[str, tuple[float, float | None]], now: float,
        every: float = DAY) -> list[CertStatus]:
    """The warnings to send now: at most one per origin per `every` seconds (a rolling day, not a calendar
    day, so a warning first seen at 23:50 is not repeated ten minutes later).

    known: origin -> (notAfter, warned_at) as stored (state.py); a different notAfter (a renewed certificate
    that again expires soon) counts as never warned about."""
    out = []
    for status in warnings:
        stored_not_after, warned_at = known.get(status.origin, (None, None))
        if warned_at is None or stored_not_after != status.not_after or now - warned_at >= every:
            out.append(status)
    return out
