"""Masking of secrets in any header dict, JSON-ish value or text. Applied at every output boundary.

Rules are deliberately conservative about *what* they keep: when in doubt a value is masked, because a
report that hides a harmless field is a nuisance while one that leaks a token is an incident.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "******"
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token")
SECRET_KEY_WORDS = ("password", "passwd", "pwd", "secret", "token", "access_key", "api_key", "apikey", "credential")

# Shorter literals would mask ordinary words and digits all over the report.
MIN_SECRET_LEN = 4

# Headers whose value may start with an auth scheme worth keeping visible ("Bearer ******").
_SCHEME_HEADERS = ("authorization", "proxy-authorization")
_SCHEME_VALUE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]*)\s+\S")

# Bearer/Basic credentials anywhere in text; the token charset excludes '*' so masking is idempotent.
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# header.payload.signature, both JSON parts base64url of '{"' -> 'eyJ'. Signature may be empty (alg none).
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# "key": value pairs (JSON or Python repr). Every pair is matched and the key is checked in Python: a keyword
# inside the pattern would make each quote a backtracking start point. Consuming whole pairs also keeps
# string *values* from being mistaken for keys.
_QUOTED_PAIR = re.compile(
    r"""(?P<q>["'])(?P<key>[^"'\\\n]{1,80})(?P=q)(?P<sep>\s*:\s*)"""
    r"""(?P<val>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|-?\d[\d.eE+-]*)"""
)
# key=value in query strings, form bodies, log lines. The value stops at separators, quotes and backslashes
# and closing brackets/backticks so a match never runs past the end of an enclosing (possibly JSON-escaped)
# string, Markdown inline code or link.
_FORM_PAIR = re.compile(r"(?<![A-Za-z0-9_.\-\[\]])(?P<key>[A-Za-z0-9_.\-\[\]]{1,80})=(?P<val>[^&\s\"'`<>,;)\]}\\]*)")
# "Name: value" lines (raw HTTP headers, YAML, logs).
_LINE_PAIR = re.compile(r"^(?P<lead>[ \t]*)(?P<key>[A-Za-z0-9_.\-]{1,80})(?P<sep>[ \t]*:[ \t]*)(?P<val>\S[^\r\n]*)$",
                        re.MULTILINE)


class Redactor:
    def __init__(self, secrets: tuple[str, ...] | list[str] = (), key_words: tuple[str, ...] = SECRET_KEY_WORDS):
        self._key_words = tuple(k.lower() for k in key_words if k)
        self._secrets: set[str] = set()
        self._literal_re: re.Pattern[str] | None = None
        self._dirty = False
        self._lock = threading.Lock()  # tokens are learnt by request threads while others render
        for s in secrets:
            self.add_secret(s)

    # -- configuration -------------------------------------------------------------------------------
    def add_secret(self, value: str) -> None:
        """Remember a literal secret (a token, a password) to mask wherever it appears."""
        if not isinstance(value, str):
            value = str(value)
        value = value.strip()
        if len(value) < MIN_SECRET_LEN or value == MASK:
            return
        with self._lock:
            if value not in self._secrets:
                self._secrets.add(value)
                self._dirty = True

    def add_secrets(self, values: Iterable[str]) -> None:
        for v in values:
            self.add_secret(v)

    # -- predicates ----------------------------------------------------------------------------------
    def is_secret_key(self, key: Any) -> bool:
        """True for a dict key / parameter name whose value should never be shown."""
        k = str(key).lower()
        return k in SECRET_HEADERS or any(w in k for w in self._key_words)

    # -- masking -------------------------------------------------------------------------------------
    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, val in (headers or {}).items():
            sval = "" if val is None else str(val)
            if self.is_secret_key(name):
                out[name] = self._mask_keyed(str(name), sval)
            else:
                out[name] = self.text(sval)
        return out

    def value(self, data: Any) -> Any:
        """Deep copy of a JSON-ish value with secret-looking keys masked and known secrets masked in strings."""
        if isinstance(data, dict):
            out: dict[Any, Any] = {}
            for k, v in data.items():
                # None/bools carry no secret and masking them hides useful flags like "remember_password".
                if self.is_secret_key(k) and v is not None and not isinstance(v, bool):
                    out[k] = self._mask_keyed(str(k), v) if isinstance(v, str) else MASK
                else:
                    out[k] = self.value(v)
            return out
        if isinstance(data, (list, tuple)):
            return [self.value(v) for v in data]
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, bytes):
            return self.text(data.decode("utf-8", errors="replace"))
        return data  # int/float/bool/None are immutable: a "copy" is the value itself

    def text(self, text: str) -> str:
        """Mask known secrets, Bearer tokens, and key=value / "key": "value" pairs with secret-looking keys."""
        if not text:
            return text
        if not isinstance(text, str):
            text = str(text)
        # Structural rules first (they mask whole values); literals last catch whatever is left.
        text = _JWT.sub(MASK, text)
        text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
        if ":" in text:
            text = _QUOTED_PAIR.sub(self._sub_quoted, text)
            text = _LINE_PAIR.sub(self._sub_line, text)
        if "=" in text:
            text = _FORM_PAIR.sub(self._sub_form, text)
        literal = self._literals()
        if literal is not None:
            text = literal.sub(MASK, text)
        return text

    # -- internals -----------------------------------------------------------------------------------
    def _literals(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._dirty:
                # Longest first so a secret containing another one is masked whole.
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._literal_re = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
                self._dirty = False
            return self._literal_re

    def _mask_keyed(self, key: str, val: str) -> str:
        """Mask the value of a secret key/header, keeping an Authorization scheme word visible."""
        if key.lower() in _SCHEME_HEADERS:
            m = _SCHEME_VALUE.match(val)
            if m:
                return f"{m.group(1)} {MASK}"
        return MASK

    def _sub_quoted(self, m: re.Match[str]) -> str:
        if not self.is_secret_key(m.group("key")):
            return m.group(0)
        val = m.group("val")
        q = val[0] if val[0] in "\"'" else '"'  # numbers become a quoted mask so JSON stays valid
        inner = val[1:-1] if val[0] in "\"'" else val
        masked = self._mask_keyed(m.group("key"), inner)
        return f"{m.group('q')}{m.group('key')}{m.group('q')}{m.group('sep')}{q}{masked}{q}"

    def _sub_line(self, m: re.Match[str]) -> str:
        key = m.group("key")
        if not self.is_secret_key(key):
            return m.group(0)
        return f"{m.group('lead')}{key}{m.group('sep')}{self._mask_keyed(key, m.group('val'))}"

    def _sub_form(self, m: re.Match[str]) -> str:
        if not m.group("val") or not self.is_secret_key(m.group("key")):
            return m.group(0)
        return f"{m.group('key')}={MASK}"


_SECRET_ENV_NAME = re.compile(r"PASS|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|WEBHOOK", re.IGNORECASE)


def env_secrets(environ: dict[str, str] | None = None, min_length: int = 8) -> list[str]:
    """Values of environment variables whose names look secret (USER_PASSWORD, API_TOKEN, WECOM_KEY…).

    Documents may put any ${VAR} into any header or body; masking these values everywhere is the safety
    net for a secret sent under a harmless-looking name. Short values are skipped: masking every "true"
    or "8080" in a report would destroy it and protect nothing.
    """
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if _SECRET_ENV_NAME.search(k) and len(v) >= min_length]
