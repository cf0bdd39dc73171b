"""Origins (RFC 6454): the scheme, host and port a credential is bound to, and URL userinfo.

A service's credentials (its token, secret config headers, basic auth, userinfo) go only to the origin of
its `base_url` for the selected environment plus the origins listed in its `trusted_origins`. Two URLs
have the same origin when scheme, host (case-insensitive) and port (default 80/443 filled in) are equal;
unlike requests' `should_strip_auth`, an http → https upgrade is a different origin too.
"""

from __future__ import annotations

import base64
import http.cookiejar
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | None) -> str | None:
    """'https://api.example.com:443' for 'https://u:p@API.example.com/x?y'; None for a URL without a host."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:  # a bad port
        return None
    scheme = parts.scheme.lower()
    if not host or not scheme:
        return None
    port = port or _DEFAULT_PORTS.get(scheme)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host.lower()}:{port}"


def allowed(url: str | None, origins: Iterable[str]) -> bool:
    """True when url's origin is one of origins (already normalised with origin_of)."""
    here = origin_of(url)
    return here is not None and here in set(origins)


def host_port(url: str) -> str:
    """'api.example.com:8443' for messages ("credentials withheld: host … is not an origin of …")."""
    origin = origin_of(url)
    return origin.split("://", 1)[1] if origin else url


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(url without userinfo, user, password), percent-decoded; user and password are None without userinfo."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None, None
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=hostport))
    return clean, unquote(user), unquote(password) if sep else ""


def basic_credentials(user: str, password: str) -> str:
    """base64("user:password") as in RFC 7617 (UTF-8)."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class OriginCookiePolicy(http.cookiejar.DefaultCookiePolicy):
    """Cookies bound to the origin that set them (scheme, host and port), like every other credential here.

    RFC 6265 cookies ignore the port and, with a Domain attribute, reach sibling hosts: a session cookie set
    by 127.0.0.1:8001 would go to 127.0.0.1:9000, another service. Each accepted cookie is made host-only
    and stamped with the port it came from (http.cookiejar's RFC 2965 `port` check then refuses other
    ports in every jar it is copied into, also requests' per-request jars); one set over https is sent only
    over https.
    """

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        if not super().set_ok(cookie, request):
            return False
        url = request.get_full_url()
        parts = urlsplit(url)
        # The port as http.cookiejar's request_port() reads it from the Host (its RFC 2965 check compares that).
        _, colon, port = request.host.partition(":")
        cookie.port = port if colon and port.isdigit() else "80"
        cookie.port_specified = True
        cookie.domain = (parts.hostname or cookie.domain).lower()
        cookie.domain_specified = cookie.domain_initial_dot = False
        if parts.scheme.lower() == "https":
            cookie.secure = True
        return True
