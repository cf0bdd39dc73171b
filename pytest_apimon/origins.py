"""Origins (RFC 6454): the scheme, host and port a credential is bound to, and URL userinfo.

A service's credentials (its token, secret config headers, basic auth, userinfo) go only to the origin of
its `base_url` for the selected environment plus the origins listed in its `trusted_origins`. Two URLs
have the same origin when scheme, host (case-insensitive) and port (default 80/443 filled in) are equal;
unlike requests' `should_strip_auth`, an http → https upgrade is a different origin too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
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
