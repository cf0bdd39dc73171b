"""Masking of secrets in any header dict, JSON-ish value or text. Applied at every output boundary.

Rules are deliberately conservative about *what* they keep: when in doubt a value is masked, because a
report that hides a harmless field is a nuisance while one that leaks a token is an incident.
"""

from __future__ import annotations

import base64
import binascii
import html
import html.entities
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "******"
ELLIPSIS = "…"  # ends every text pytest-apimon shortens (excerpt)
# How a cut is marked: ours ("…") and the ASCII form libraries and _document_fields.describe use.
_CUT_MARK = re.compile(r"…|\.\.\.")

# The one list of secret-looking names (headers, query/form/JSON keys, config keys, env var names).
# A name is split into words (at - _ . space and camelCase, trailing numbers dropped: "X-Hub-Signature-256")
# and judged by its *head*, the last word: `access_token`, `apiKey`, `x-api-key`, `client_secret`, `password`,
# `session_id`, `JSESSIONID`, `x-signature`, `ticket` are credentials; `token_type`, `sign_up_date`,
# `session_count`, `pin_code_length`, `X-Key-Format`, `passwordPolicy`, `tokenizer` are metadata about one.
# A head in SECRET_NAME_WORDS is a credential unless the word before it makes it an ordinary field
# (NOT_SECRET_QUALIFIERS: `sort_key`, `primary_key`, `public_key`, `next_page_token`). A one-word name written
# without separators is a credential when it ends with one of SECRET_NAME_SUFFIXES ("userpassword",
# "accesstoken"). "auth" is not a word here: it names a failure category in reports ({'auth': 2}); a key sent
# as `X-Auth` is masked by value (looks_like_credential, learnt tokens).
SECRET_NAME_WORDS = frozenset((
    "authorization", "cookie", "key", "sig", "hmac", "pin", "passcode", "passphrase", "pwd", "sign",
    "signature", "session", "sessionid", "jsessionid", "phpsessid", "sid", "ticket", "credential", "credentials",
    "otp", "jwt", "secret", "token", "password", "passwd", "pass", "pw", "apikey", "accesskey", "privatekey",
    "appkey", "secretkey", "sessionkey", "signkey", "authkey", "masterkey", "clientsecret", "accesstoken",
    "refreshtoken", "authtoken", "idtoken", "apitoken", "xsrf", "csrf",
))
SECRET_NAME_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "accesskey", "privatekey",
                        "secretkey", "signature", "passphrase", "passcode", "credential", "credentials",
                        "sessionid", "cookie", "authorization")
# Plurals that still hold credentials ({"tokens": [...]}, "api_keys").
_PLURALS = {"tokens": "token", "secrets": "secret", "passwords": "password", "keys": "key", "tickets": "ticket",
            "signatures": "signature", "cookies": "cookie", "sessions": "session", "pins": "pin"}
# Heads that name a form of the credential itself ("token_value", "password_plain"): judge the word before.
_VALUE_TAILS = frozenset(("value", "val", "str", "string", "raw", "b64", "base64", "hex", "plain", "plaintext"))
# The explicit not-a-secret list: a credential word after one of these names an ordinary field.
NOT_SECRET_QUALIFIERS: dict[str, frozenset[str]] = {
    "key": frozenset(("sort", "primary", "foreign", "partition", "public", "idempotency", "cache", "object",
                      "row", "range", "hash", "unique", "composite", "natural", "surrogate", "lookup", "dedup",
                      "dedupe", "map", "dict", "group", "shard", "routing", "index", "i18n", "translation",
                      "message", "locale", "label", "primary", "candidate", "cluster", "order", "s3", "storage")),
    "token": frozenset(("page", "pagination", "continuation", "cursor", "sync", "next", "prev", "previous",
                        "resume", "change", "changes")),
    "session": frozenset(("training", "study", "chat", "music", "game", "practice")),
}
# Session ids are credentials; every other `*_id` names a record.
_SESSION_WORDS = frozenset(("session", "sess"))
# Values that are never a credential, whatever the field is called ("X-Session-Required: true").
_NOT_SECRET_VALUES = frozenset(("true", "false", "yes", "no", "on", "off", "null", "none", "nil", "undefined"))

_WORD_SPLIT = re.compile(r"[-_.\s\[\]/:]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _name_words(name: str) -> list[str]:
    words = [w.lower() for w in _WORD_SPLIT.split(name) if w]
    while len(words) > 1 and words[-1].isdigit():  # "X-Hub-Signature-256": the digest, not the head
        words.pop()
    return words


def is_secret_name(name: Any) -> bool:
    """True for a header, parameter, JSON/form key, config key or environment variable name whose value
    is a credential: `X-Api-Key`, `client_secret`, `accessToken`, `sign`, `x-signature`, `PIN`, `session_id`.

    The head word decides (see SECRET_NAME_WORDS above): `token_type`, `sign_up_date`, `session_count`,
    `public_key_id`, `X-Pin-Mode` are ordinary fields. The list is the union of the usual credential names
    (OWASP logging cheat sheet, curl's and requests' auth headers, cloud SDK key names).
    """
    return _is_secret_name(name if isinstance(name, str) else str(name))


# A pure function of the name, asked for the same few dozen keys (result fields, headers) of every interface:
# masking one report per item called it ~40 times per interface (docs/benchmarks.md, issue #15).
@lru_cache(maxsize=4096)
def _is_secret_name(name: str) -> bool:
    words = _name_words(name)
    if not words:
        return False
    head = words[-1]
    if head in _VALUE_TAILS and len(words) > 1:
        words.pop()
        head = words[-1]
    head = _PLURALS.get(head, head)
    prev = words[-2] if len(words) > 1 else ""
    if head == "id":  # session_id, ASP.NET_SessionId; not user_id, public_key_id, credential_id
        return prev in _SESSION_WORDS
    if head == "code":  # pin_code, otp_code, auth_code (OAuth authorization code); not status_code
        return prev in ("pin", "otp", "auth", "authorization", "verification", "sms", "mfa", "totp")
    if head in SECRET_NAME_WORDS:
        return prev not in NOT_SECRET_QUALIFIERS.get(head, ())
    return len(words) == 1 and head.endswith(SECRET_NAME_SUFFIXES)


def is_secret_value(value: Any) -> bool:
    """False for values that cannot be a credential (booleans, null, flags like 'true'/'off', empty)."""
    if value is None or isinstance(value, bool):
        return False
    text = str(value).strip()
    return bool(text) and text.lower() not in _NOT_SECRET_VALUES


# Shorter literals would mask ordinary words and digits all over the report.
MIN_SECRET_LEN = 4
_SHORT_SECRET_LEN = 8

# Headers whose value may start with an auth scheme worth keeping visible ("Bearer ******").
_SCHEME_HEADERS = ("authorization", "proxy-authorization")
_SCHEME_WORD = re.compile(r"[A-Z][A-Za-z0-9_-]{1,30}")  # auth schemes are capitalised: Token, ApiKey, SSWS
_SCHEME_VALUE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]*)\s+\S")

# Bearer/Basic credentials anywhere in text; the token charset excludes '*' so masking is idempotent. Only
# blanks may separate the scheme from the credential (a URL ending in "/bearer" must not swallow the next
# line), and _credential_like() keeps ordinary words: "Show basic information" is prose, not a credential.
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)([ \t]+)([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_PLAIN_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+")
# URL userinfo (RFC 3986 §3.2.1): the password part is masked wherever a URL is printed.
_USERINFO = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^/?#@\s:\"'<>]*):(?P<pw>[^/?#@\s\"'<>]+)@")
# header.payload.signature, both JSON parts base64url of '{"' -> 'eyJ'. Signature may be empty (alg none).
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# "key": value pairs (JSON or Python repr). Every pair is matched and the key is checked in Python: a keyword
# inside the pattern would make each quote a backtracking start point. Consuming whole pairs also keeps
# string *values* from being mistaken for keys.
_QUOTED_PAIR = re.compile(
    r"""(?P<q>["'])(?P<key>[^"'\\\n]{1,80})(?P=q)(?P<sep>\s*:\s*)"""
    r"""(?P<val>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|-?\d[\d.eE+-]*)"""
)
# The same pair inside a JSON string (a server echoing the request JSON as text: {"echo": "{\"password\": …}"}),
# its quotes escaped once: \"key\": \"value\". Read by the outer string's escapes: \\ + one more escape or
# character is an escape of the inner JSON (\\\" its quote), \n and the like one character; the value ends at
# the first \" of its own. Each step is decided by its first two characters, so the scan cannot backtrack.
_ESCAPED_PAIR = re.compile(
    r'\\"(?P<key>[^"\\\n]{1,80})\\"(?P<sep>\s*:\s*)\\"'
    r'(?P<val>(?:\\\\(?:\\[^\n]|[^"\\\n])|\\[^"\\\n]|[^"\\\n])*)\\"'
)
# key=value in query strings, form bodies, log lines. The value stops at separators, quotes and backslashes
# and closing brackets/backticks so a match never runs past the end of an enclosing (possibly JSON-escaped)
# string, Markdown inline code or link.
_FORM_PAIR = re.compile(r"(?<![A-Za-z0-9_.\-\[\]])(?P<key>[A-Za-z0-9_.\-\[\]]{1,80})=(?P<val>[^&\s\"'`<>,;)\]}\\]*)")
# "Name: value" lines (raw HTTP headers, YAML, logs).
# A "Name: value" line (YAML, HTTP headers); the lead may be http.client's debug prefix for a response header
# ("header: X-Auth-Token: …", printed with HTTPConnection.debuglevel set, before the run has learnt that token).
_LINE_PAIR = re.compile(r"^(?P<lead>[ \t]*(?:header:[ \t]+)?)(?P<key>[A-Za-z0-9_.\-]{1,80})(?P<sep>[ \t]*:[ \t]*)"
                        r"(?P<val>\S[^\r\n]*)$", re.MULTILINE)


def encoded_variants(value: str) -> set[str]:
    """The forms a secret takes in what is printed: itself, as requests/urllib3 encode it in a URL path and a
    query (derived by preparing a URL with requests, not guessed: `requote_uri` keeps `/` and other safe
    characters, urllib3 upper-cases an existing `%xx`), as `urlencode` writes a parameter or form field, and
    as a JSON string escapes it once or twice (a server echoing the request JSON inside a JSON string); and the
    URL forms of those JSON forms (a server echoing the request JSON into a redirect's query, measured by a red
    team: `p%5Cu00e4ssw…` printed in clear)."""
    # Imported here: a run with no secret to mask (an xdist controller of such a run) never needs requests.
    from requests.exceptions import RequestException
    from requests.models import PreparedRequest
    from requests.utils import requote_uri

    texts = {value}
    for ascii_only in (True, False):
        once = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        texts |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    out = set(texts)
    for text in texts:
        # quote(text): urllib.parse.quote's default (`/` kept, `+` as %2B), how Python code builds a path by hand
        # (found by tests/test_fuzz_redact.py: `00000000/+` printed as `00000000/%2B`).
        out |= {quote(text, safe=""), quote(text), quote_plus(text)}
        try:
            out.add(requote_uri(text))
            for template in ("http://h/{}", "http://h/?q={}"):
                prepared = PreparedRequest()
                prepared.prepare_url(template.format(text), None)
                url = prepared.url or ""
                out.add(url[len(template.format("")):])
        except (ValueError, RequestException):  # a value requests refuses in a URL is never sent in one
            pass
    return {v for v in out if len(v) >= MIN_SECRET_LEN}


# Redactor.text remembers what it returned for strings up to this long, at most this many of them: one run masks
# the same service names, URLs and node ids again and again (every report, twice, and the JSON file).
_MEMO_TEXT_MAX = 2048
_MEMO_ENTRIES = 16384
_UNCHANGED = "\x00unchanged\x00"  # memo value: the text needs no mask (a str, so the memo stays dict[str, str])


class Redactor:
    def __init__(self, secrets: tuple[str, ...] | list[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pending: list[str] = []  # secrets learnt since the last compile (_literals)
        self._literal_set: _LiteralSet | None = None
        # text -> masked text, valid for the secrets of _literal_set: a new dict when a secret is learnt, so a
        # thread still masking with the old set cannot store into the new memo (emptied in place only when full).
        self._memo: dict[str, str] = {}
        self._state: tuple[_LiteralSet | None, dict[str, str]] = (None, self._memo)  # read as one
        self._dirty = False
        self._lock = threading.Lock()  # tokens are learnt by request threads while others render
        for s in secrets:
            self.add_secret(s)

    @classmethod
    def with_environment(cls, secrets: Iterable[str] = ()) -> Redactor:
        """A Redactor of `secrets` (a config's, config.Config.secrets) and of the environment's secret-looking
        variables (env_secrets): what every run, merge, watch and test message masks."""
        return cls([*secrets, *env_secrets()])

    # -- configuration -------------------------------------------------------------------------------
    def add_secret(self, value: str) -> None:
        """Remember a literal secret (a token, a password) to mask wherever it appears."""
        if not isinstance(value, str):
            value = str(value)
        value = value.strip()
        if len(value) < MIN_SECRET_LEN or value == MASK or not is_secret_value(value):
            return
        variants = encoded_variants(value)
        with self._lock:
            for v in variants - self._secrets:
                self._secrets.add(v)
                self._pending.append(v)
                self._dirty = True

    def add_secrets(self, values: Iterable[str]) -> None:
        for v in values:
            self.add_secret(v)

    # -- predicates ----------------------------------------------------------------------------------
    def is_known(self, value: str) -> bool:
        """True when value is exactly one of the secrets this redactor masks by value."""
        with self._lock:
            return value.strip() in self._secrets

    def is_secret_key(self, key: Any) -> bool:
        """True for a dict key / parameter name whose value should never be shown."""
        return is_secret_name(key)

    # -- masking -------------------------------------------------------------------------------------
    def headers(self, headers: dict[str, str], received: bool = False) -> dict[str, str]:
        """Headers with every credential masked (is_credential_header); received: a response's headers."""
        out: dict[str, str] = {}
        for name, val in (headers or {}).items():
            sval = "" if val is None else str(val)
            if is_credential_header(name, sval, by_shape=not received):
                out[name] = self._mask_keyed(str(name), sval)
            else:
                out[name] = self.text(sval)
        return out

    def value(self, data: Any, secret: bool = False) -> Any:
        """Deep copy of a JSON-ish value with secret-looking keys masked and known secrets masked in strings.
        Under a secret-looking key every scalar is masked, also inside lists and mappings ({"tokens": [...]})."""
        if isinstance(data, dict):
            out: dict[Any, Any] = {}
            for k, v in data.items():
                under = secret or self.is_secret_key(k)
                # A credential is a string: None, booleans and numbers under a secret-looking name are flags
                # and counts ("remember_password": true, "otp": 6) and keep their value and JSON type.
                if under and isinstance(v, str) and is_secret_value(v):
                    out[k] = self._mask_keyed(str(k), v)
                else:
                    out[k] = self.value(v, under)
            return out
        if isinstance(data, (list, tuple)):
            if _is_secret_pair(data):  # [["password", "…"]]: a name/value pair written as a list
                return [data[0], MASK]
            return [self.value(v, secret) for v in data]
        if secret and isinstance(data, str) and is_secret_value(data):
            return MASK
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, bytes):
            return self.text(data.decode("utf-8", errors="replace"))
        return data  # int/float/bool/None are immutable: a "copy" is the value itself

    def text(self, text: str) -> str:
        """Mask known secrets, Bearer tokens, and key=value / "key": "value" pairs with secret-looking keys.
        Always returns a plain str (a str subclass such as a StrEnum comes back as its plain text: xdist's
        execnet carries no str subclass)."""
        if not text:
            return text
        if text.__class__ is not str:
            text = str.__str__(text) if isinstance(text, str) else str(text)
        literal, memo = self._literals()
        known = memo.get(text)
        if known is not None:
            # Unchanged text comes back as the very object passed in: callers (mask_in_place) keep a container
            # whose strings are all unchanged instead of rebuilding it around an equal copy.
            return text if known is _UNCHANGED else known
        masked = self._mask_text(text, literal)
        if len(text) <= _MEMO_TEXT_MAX:
            if len(memo) >= _MEMO_ENTRIES:
                memo.clear()
            memo[text] = _UNCHANGED if masked == text else masked
        return masked

    def _mask_text(self, text: str, literal: _LiteralSet | None) -> str:
        # A cut made elsewhere first, on the text as it came: a structural rule below could take the rest of a
        # cut secret for a key=value pair and mask only its "value" (a red team: "…Zp0Secret=…").
        if "…" in text or "..." in text:
            text = self._mask_before_cut_marks(text)
        # Structural rules mask whole values, but never inside a known secret (_guarded); the known secrets last.
        text = _guarded(_JWT, lambda m: MASK, text, literal, 0)
        text = _guarded(_AUTH_SCHEME, _sub_scheme, text, literal, 3)
        if "@" in text:
            text = _guarded(_USERINFO, lambda m: f"{m.group('pre')}:{MASK}@", text, literal, "pw")
        if ":" in text:
            text = _guarded(_QUOTED_PAIR, self._sub_quoted, text, literal, "val")
            if '\\"' in text:
                text = _guarded(_ESCAPED_PAIR, self._sub_escaped, text, literal, "val")
            text = _guarded(_LINE_PAIR, self._sub_line, text, literal, "val")
        if "=" in text:
            text = _guarded(_FORM_PAIR, self._sub_form, text, literal, "val")
        if literal is not None:
            text = literal.sub(MASK, text)
        return text

    def excerpt(self, text: str, limit: int | None, *, mark: str = ELLIPSIS) -> str:
        """At most `limit` characters of `text`, masked: the whole text is masked *before* it is cut, so a
        secret (or a `"password": "…"` pair) straddling the cut is recognised, and a cut that still ends
        in the first characters of a known secret ends in MASK instead (mask_partial_tail). `mark` ends a
        cut text. limit None: no cut."""
        return excerpt(text, limit, self, mark=mark)

    def mask_partial_tail(self, text: str) -> str:
        """text with its longest suffix that is the start (MIN_SECRET_LEN+ characters) of a known secret, in
        any of its encoded forms, replaced by MASK: what a cut inside a secret left behind ("…S3CRET-P"). Also when
        that start is an ordinary word: a secret that begins with one ("admin-pass") masks that word at a cut
        (the demo's passwords were changed so as not to begin with their services' names). Also in an escaped
        form (character references, JSON escapes: _decode_escapes), and when the cut ends inside an escape."""
        with self._lock:
            secrets = tuple(self._secrets)
        core = _CUT_ESCAPE.sub("", text)  # an escape the cut broke ("…Lm2&#4") belongs to the masked tail
        decoded, starts = _decode_escapes(core)
        best = len(text)
        for s in secrets:
            # The longest suffix that starts s: its first occurrence of s's head in the last len(s) characters.
            window_start = max(0, len(decoded) - len(s))
            i = decoded.find(s[:MIN_SECRET_LEN], window_start)
            while i != -1:
                if s.startswith(decoded[i:]):
                    best = min(best, starts[i])
                    break
                i = decoded.find(s[:MIN_SECRET_LEN], i + 1)
        return text[:best] + MASK if best < len(text) else text

    def mask_partial_head(self, text: str) -> str:
        """text with its longest prefix that is the end (MIN_SECRET_LEN+ characters) of a known secret replaced by
        MASK: what a cut in the middle of a secret left after the cut mark (pytest's saferepr writes a long string
        as "start...end": a red team saw a token's signature printed whole after "******..."), also in an escaped
        form (_decode_escapes). Not a part of the secret's last all-letters word ("pass" of "admin-pass"): that is
        also an ordinary word."""
        with self._lock:
            secrets = tuple(self._secrets)
        decoded, starts = _decode_escapes(text)
        best = 0
        head4 = decoded[:MIN_SECRET_LEN]
        for s in secrets:
            if len(head4) < MIN_SECRET_LEN or head4 not in s:
                continue
            for k in range(min(len(s), len(decoded)), max(best, MIN_SECRET_LEN - 1), -1):
                head = decoded[:k]
                if s.endswith(head):
                    if not _trailing_word(head, s):
                        best = k
                    break
        if not best:
            return text
        return MASK + text[starts[best]:]

    def _mask_before_cut_marks(self, text: str) -> str:
        """Defence for text cut elsewhere (by a library, or before it reached us): the start of a known
        secret right before a cut mark ("S3CRET-P…", "S3CRET-P...") and the end of one right after it
        ("…Pw9-S3CRET") are masked."""
        pieces = _CUT_MARK.split(text)
        marks = _CUT_MARK.findall(text)
        out = []
        for i, piece in enumerate(pieces):
            if i > 0:
                piece = self.mask_partial_head(piece)
            if i < len(marks):
                piece = self.mask_partial_tail(piece)
            out.append(piece)
            if i < len(marks):
                out.append(marks[i])
        return "".join(out)

    # -- internals -----------------------------------------------------------------------------------
    def _literals(self) -> tuple[_LiteralSet | None, dict[str, str]]:
        """The pattern of the known secrets and the memo of texts masked with exactly these secrets."""
        if not self._dirty:  # the common case, without the lock: the pair is one attribute, read at once
            return self._state
        with self._lock:
            if self._dirty:
                self._literal_set = _LiteralSet.extended(self._literal_set, self._pending)
                self._pending = []
                self._memo = {}
                self._state = (self._literal_set, self._memo)
                self._dirty = False
            return self._state

    def _mask_keyed(self, key: str, val: str) -> str:
        """Mask the value of a secret key/header, keeping an Authorization scheme word visible."""
        if key.lower() in _SCHEME_HEADERS or _AUTH_SCHEME.fullmatch(val.strip()):
            m = _SCHEME_VALUE.match(val)
            if m:
                return f"{m.group(1)} {MASK}"
        return MASK

    def _sub_quoted(self, m: re.Match[str]) -> str:
        val = m.group("val")
        # A number is never a credential by name ("otp_digits": 6); masking it would also change its JSON type.
        if val[0] not in "\"'" or not self.is_secret_key(m.group("key")) or not is_secret_value(val[1:-1]):
            return m.group(0)
        q, inner = val[0], val[1:-1]
        masked = self._mask_keyed(m.group("key"), inner)
        return f"{m.group('q')}{m.group('key')}{m.group('q')}{m.group('sep')}{q}{masked}{q}"

    def _sub_escaped(self, m: re.Match[str]) -> str:
        key, val = m.group("key"), m.group("val")
        if not self.is_secret_key(key) or not is_secret_value(val):
            return m.group(0)
        return f'\\"{key}\\"{m.group("sep")}\\"{self._mask_keyed(key, val)}\\"'

    def _sub_line(self, m: re.Match[str]) -> str:
        key = m.group("key")
        if not self.is_secret_key(key) or not is_secret_value(m.group("val")):
            return m.group(0)
        return f"{m.group('lead')}{key}{m.group('sep')}{self._mask_keyed(key, m.group('val'))}"

    def _sub_form(self, m: re.Match[str]) -> str:
        if not is_secret_value(m.group("val")) or not self.is_secret_key(m.group("key")):
            return m.group(0)
        return f"{m.group('key')}={MASK}"


def _is_secret_pair(data: Any) -> bool:
    """["password", "…"]: a name/value pair written as a two-item list (form-data arrays, header lists)."""
    return (isinstance(data, list | tuple) and len(data) == 2 and isinstance(data[0], str)
            and isinstance(data[1], str) and is_secret_name(data[0]) and is_secret_value(data[1]))


def is_credential_header(name: Any, value: Any, *, by_shape: bool = True) -> bool:
    """The one rule for "this header is a credential", used both to mask it in every output and to send it
    only to its service's origins (engine, ServiceSession, redirects): a secret-looking name
    (is_secret_name) with a real value, a value shaped like a key (looks_like_credential), or a value
    carrying an auth scheme and credential (`X-Custom: Bearer …`, `X-Gateway: Basic dXNlcjpw…`).

    by_shape=False leaves out the key shape, for headers a server sent us (Redactor.headers(received=True)):
    a response's `X-Request-Id: req-8f7a9b2c` is no credential of ours, and a secret it echoes is masked by
    value anyway."""
    if value is None:
        return False
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    if not is_secret_value(text):
        return False
    if is_secret_name(name) or (by_shape and looks_like_credential(text)):
        return True
    m = _AUTH_SCHEME.search(text)
    if m is not None and _credential_like(m.group(1), m.group(3)):
        return True
    # Any other scheme word before a key ("Token k-93jd82hd", "ApiKey a1b2c3d4e5", "SSWS 00Qx…").
    scheme, _, credential = text.strip().partition(" ")
    return by_shape and bool(_SCHEME_WORD.fullmatch(scheme)) and looks_like_credential(credential.strip())


_PRODUCT = re.compile(r"[A-Za-z][A-Za-z0-9._-]*/v?\d+(?:\.\d+)*")  # a User-Agent product token: Mozilla/5.0
_CREDENTIAL_SHAPE = re.compile(r"(?=[^\s]*[A-Za-z])(?=[^\s]*\d)[^\s]{8,}")


def looks_like_credential(value: Any) -> bool:
    """A value that reads like a key or token whatever its field is called: 8+ characters, no blanks,
    letters and digits mixed (`k-93jd82hd`, `a1b2c3d4e5`). Ordinary words, flags, dates, numbers,
    MIME types and user agents do not qualify, so masking such values by literal eats no prose."""
    if not isinstance(value, str) or not is_secret_value(value):
        return False
    text = value.strip()
    return (bool(_CREDENTIAL_SHAPE.fullmatch(text)) and "://" not in text and not text.startswith("/")
            and not _PRODUCT.fullmatch(text))


_HOST_NAME = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::\d+)?")
_VERSION = re.compile(r"v?\d+(?:\.\d+)+(?:[-+][0-9A-Za-z.-]+)?", re.IGNORECASE)
_LETTER_DIGIT_CHANGE = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def looks_like_key(value: Any) -> bool:
    """The rule for a `${VAR}` value substituted into a document or config under any name: masked by value
    when it reads like a key, never when it reads like ordinary text. A key is looks_like_credential (8+
    characters, no blanks, letters and digits, not a URL or path) and not a host name or version, and it
    mixes upper and lower case (`Onyx-Seg-4471`), or alternates letters and digits at least three times
    (`a3f9c2e1`), or is 20+ characters long. `order-2024`, `user_123`, `prod-eu-west-1`, `v1.2.3`,
    `api.example.com`, `Mozilla/5.0`, `2024-01-01`, `production` stay visible."""
    if not looks_like_credential(value):
        return False
    text = str(value).strip()
    if _HOST_NAME.fullmatch(text) or _VERSION.fullmatch(text):
        return False
    letters = [c for c in text if c.isalpha()]
    mixed_case = any(c.isupper() for c in letters) and any(c.islower() for c in letters)
    alternations = len(_LETTER_DIGIT_CHANGE.findall(text))
    return mixed_case or alternations >= 3 or len(text) >= 20


def cookie_values(header_value: str) -> list[str]:
    """The values of a Cookie / Set-Cookie header ("sid=abc; theme=dark" -> ["abc", "dark"]) worth masking."""
    out = []
    for part in header_value.split(";"):
        _name, eq, value = part.strip().partition("=")
        if eq and is_secret_value(value) and len(value.strip()) >= MIN_SECRET_LEN:
            out.append(value.strip())
    return out


def secret_values(data: Any, secret: bool = False) -> list[str]:
    """Every scalar under a secret-looking name, at any depth of headers, parameters or a body
    ({"auth": {"passphrase": "…"}}, {"sign": ["…"]}): the values to mask wherever they show up later."""
    out: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            out += secret_values(v, secret or is_secret_name(k))
            if isinstance(v, str) and "cookie" in str(k).lower():
                out += cookie_values(v)
    elif isinstance(data, list | tuple):
        if _is_secret_pair(data):
            out += secret_values(data[1], True)
        else:
            for v in data:
                out += secret_values(v, secret)
    elif secret and isinstance(data, str) and is_secret_value(data):
        out.append(str(data))
        scheme, _, credential = str(data).strip().partition(" ")  # "Bearer abc": abc may show up alone
        if credential and _PLAIN_WORD.fullmatch(scheme):
            out.append(credential)
    return out


def excerpt(text: str, limit: int | None, redactor: Redactor | None = None, *, mark: str = ELLIPSIS) -> str:
    """The one way pytest-apimon shortens a text that may hold a secret (reasons, values in a reason, schema
    messages, response and request body excerpts): at most `limit` characters, `mark` ending a cut.

    With a redactor the whole text is masked first and the cut is made in the masked text, so a secret
    straddling the cut cannot survive as a prefix; as a second line of defence a cut that ends in the start
    of a known secret (MIN_SECRET_LEN+ characters) ends in MASK (Redactor.mask_partial_tail)."""
    if not isinstance(text, str):
        text = str(text)
    if redactor is not None:
        text = redactor.text(text)
    if limit is None or len(text) <= limit:
        return text
    cut = text[: max(limit - len(mark), 0)]
    if redactor is not None:
        cut = redactor.mask_partial_tail(cut)
    return cut + mark


def credential_header_values(headers: dict[str, Any] | None) -> list[str]:
    """The values to mask by value wherever they show up again (a server echoing the request, a log) for
    every header that is a credential (is_credential_header): the credential after a capitalised scheme word
    (`Token k-93jd82hd` -> `k-93jd82hd`, so the scheme word stays readable), else the whole value, and the
    values of a Cookie header."""
    out: list[str] = []
    for name, value in (headers or {}).items():
        text = value.decode("latin-1") if isinstance(value, bytes) else "" if value is None else str(value)
        if not is_credential_header(name, text):
            continue
        scheme, _, credential = text.strip().partition(" ")
        if credential.strip() and _SCHEME_WORD.fullmatch(scheme):
            # "Bearer k-93jd82hd": the credential alone, wherever it shows up; the scheme word stays readable
            # ("Authorization: Bearer ******", as _mask_keyed writes it), also once known secrets are masked.
            out.append(credential.strip())
        else:
            out.append(text)
        if "cookie" in str(name).lower():
            out += cookie_values(text)
    return out


def mask_in_place(obj: Any, mask: Callable[[str], str], _depth: int = 0) -> Any:
    """Mask every string inside obj: lists and dicts (values and str keys) are changed in place, tuples rebuilt,
    and the attributes of plain objects (pytest's failure representations: entries, lines, function arguments,
    locals, file locations, sections) rewritten; bytes are masked as UTF-8 text, and a list, tuple or dict
    nested deeper than 16 levels becomes its masked repr. Returns the masked object (a new one for str, bytes
    and tuple when something was masked).

    This is what lets the pytest shell mask a report without knowing how pytest will render it.
    """
    if isinstance(obj, str):
        return mask(obj)
    if obj is None or isinstance(obj, _ATOMS):
        return obj
    if isinstance(obj, bytes):  # e.g. a response body a user's check records as a JUnit property
        text = obj.decode("utf-8", "replace")
        masked = mask(text)
        return obj if masked == text else masked.encode("utf-8")
    if _depth > 16:  # a cycle, or nesting past any report's: a container becomes the text it renders as
        return mask(repr(obj)) if isinstance(obj, list | tuple | dict) else obj
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            new = _leaf(v, mask, _depth)
            if new is not v:
                obj[i] = new
        return obj
    if isinstance(obj, tuple):
        items: list[Any] | None = None  # a new tuple only when something was masked
        for i, v in enumerate(obj):
            new = _leaf(v, mask, _depth)
            if new is not v:
                if items is None:
                    items = list(obj)
                items[i] = new
        if items is None:
            return obj  # nothing masked (JUnit properties of a passed check): the same tuple
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, dict):
        renamed: list[tuple[str, str]] = []
        for k, v in obj.items():
            new = _leaf(v, mask, _depth)
            if new is not v:
                obj[k] = new  # replacing a value does not change the dict's size: safe while iterating
            if k.__class__ is str and (key := mask(k)) != k:
                renamed.append((k, key))  # a key is rendered too (str(value) of a JUnit property)
        for old, key in renamed:
            obj[key] = obj.pop(old)
        return obj
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        for k, v in list(attrs.items()):
            masked = _leaf(v, mask, _depth)
            if masked is not v:
                object.__setattr__(obj, k, masked)  # also frozen dataclasses
    return obj


_ATOM_TYPES = frozenset({int, float, bool})  # numbers: nothing to mask (mask_in_place, _leaf)
_ATOMS = tuple(_ATOM_TYPES)  # for isinstance: their subclasses too


def _leaf(value: Any, mask: Callable[[str], str], depth: int) -> Any:
    """mask_in_place one level down, without a call for the common leaves (a report holds thousands)."""
    if value.__class__ is str:
        return mask(value)
    if value is None or value.__class__ in _ATOM_TYPES:
        return value
    return mask_in_place(value, mask, depth + 1)


# Characters written as they are in every escaper's output; every other character (ASCII punctuation, anything
# outside ASCII) may come as a character reference or an escape: Python's html.escape, markupsafe/Jinja2, Go's
# html/template (+ as &#43;) and encoding/json (\u0026), Spring's HtmlUtils (decimal, hex, Latin-1 names),
# .NET's HtmlEncoder (&#x2B;, and everything outside ASCII as &#x…;) and System.Text.Json (\u5BC6), PHP's
# htmlspecialchars (&#039;) and json_encode (\/), OWASP ESAPI (all punctuation but , . - _).
_PLAIN_CHARS = frozenset("-_.,")


@lru_cache(maxsize=4096)
def _char_forms(char: str) -> str:
    """A pattern for `char` as written, or as any character reference HTML allows for it (decimal, hex in either
    case, with leading zeros, every HTML5 name: html.entities.html5), also after the `&` was escaped again
    (&amp;lt;), or as a JSON escape (\\uXXXX in either case, a surrogate pair beyond U+FFFF, \\/ for /). The
    kind of fault: an error page echoes a secret the way its framework escapes it, and every framework writes
    some characters differently (found by two red teams)."""
    if (char.isascii() and char.isalnum()) or char in _PLAIN_CHARS:
        return re.escape(char)
    code = ord(char)

    def hexdigits(text: str) -> str:
        return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in text)

    amp = "&(?:amp;)*"
    names = _html_names().get(char, ())
    units = char.encode("utf-16-be")
    json_escape = "".join(rf"\\u{hexdigits(units[i:i + 2].hex())}" for i in range(0, len(units), 2))
    forms = [re.escape(char), f"{amp}#0*{code};", f"{amp}#[xX]0*{hexdigits(f'{code:x}')};",
             *(f"{amp}{re.escape(n)}" for n in names), json_escape]
    if char == "/":
        forms.append(r"\\/")
    # Percent-encoded (RFC 3986 2.1: hex in either case): URL encoders differ in which characters they keep
    # (JavaScript's encodeURIComponent keeps ! ~ * ' ( ), URLSearchParams escapes ! and ~) and in the case of
    # the hex (.NET's HttpUtility.UrlEncode writes %2f), so each character may come either way; a space also
    # as + (form encoding). tests/test_redact_framework_escapes.py
    forms.append("".join(f"%{hexdigits(f'{byte:02x}')}" for byte in char.encode("utf-8", "surrogatepass")))
    if char == " ":
        forms.append(r"\+")
    return "(?:" + "|".join(forms) + ")"


@lru_cache(maxsize=1)
def _html_names() -> dict[str, tuple[str, ...]]:
    """Character -> its HTML5 reference names ending in ';' (html.entities.html5), for single characters."""
    names: dict[str, list[str]] = {}
    for name, value in html.entities.html5.items():
        if name.endswith(";") and len(value) == 1:
            names.setdefault(value, []).append(name)
    return {char: tuple(sorted(found)) for char, found in names.items()}


class _LiteralSet:
    """The known secrets' patterns (_literal), compiled in a few groups instead of one: a run learns secrets one by
    one while it masks (a token per login, a document's own keys per interface), and recompiling one pattern of
    every secret each time cost time quadratic in their number (a red team: 300 secrets learnt one at a time took
    15 CPU-s). A new group holds the secrets learnt since the last compile; two groups of similar size merge, as a
    binary counter does, so each secret is compiled O(log n) times. Matches are found in the text as it came, by
    every group, and overlapping ones joined: a longer secret containing a shorter one of another group is masked
    whole."""

    def __init__(self, groups: list[tuple[re.Pattern[str], tuple[str, ...]]]) -> None:
        self.groups = groups  # (pattern, its secrets), the largest first

    @classmethod
    def extended(cls, current: _LiteralSet | None, new: Iterable[str]) -> _LiteralSet | None:
        """`current` with the secrets `new` added (a new object: a thread masking with `current` keeps it)."""
        groups = list(current.groups) if current is not None else []
        added = tuple(new)
        if added:
            groups.append((_compile(added), added))
        while len(groups) >= 2 and len(groups[-1][1]) * 2 >= len(groups[-2][1]):
            (_, older), (_, newer) = groups[-2], groups.pop()
            merged = older + newer
            groups[-1] = (_compile(merged), merged)
        return cls(groups) if groups else None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where known secrets occur in `text`: (start, end) ranges, sorted, overlapping ones joined."""
        found = sorted(m.span() for pattern, _ in self.groups for m in pattern.finditer(text))
        joined: list[tuple[int, int]] = []
        for start, end in found:
            if joined and start < joined[-1][1]:
                joined[-1] = (joined[-1][0], max(joined[-1][1], end))
            elif end > start:
                joined.append((start, end))
        return joined

    def sub(self, mask: str, text: str) -> str:
        """`text` with every known secret's occurrence (spans) replaced by `mask`."""
        if len(self.groups) == 1:  # one pattern: its own matches never overlap
            return self.groups[0][0].sub(mask, text)
        spans = self.spans(text)
        if not spans:
            return text
        out, last = [], 0
        for start, end in spans:
            out += [text[last:start], mask]
            last = end
        out.append(text[last:])
        return "".join(out)


def _compile(secrets: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so that within a group a secret containing another one is masked whole.
    return re.compile("|".join(_literal(s) for s in sorted(secrets, key=len, reverse=True)))


def _guarded(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str], text: str,
             literal: _LiteralSet | None, group: int | str) -> str:
    """pattern.sub(repl, text), except for a match whose value (`group`) overlaps an occurrence of a known secret
    (`literal`): that one is left to the known secrets' own pass. A structural rule would otherwise cut a known
    secret apart and mask only the part it took for a value ("kX9+Qa7/Lm2+Zp0Secret==" printed as
    "kX9+Qa7/Lm2+Zp0Secret=******": 'Zp0Secret' read as a key), while a known secret that is only the key of a
    pair ("password") must not stop the rule masking the unknown value next to it (both found by red teams)."""
    if literal is None:
        return pattern.sub(repl, text)
    spans: list[tuple[int, int]] | None = None  # found at the rule's first match only: most texts have none

    def sub(m: re.Match[str]) -> str:
        nonlocal spans
        if spans is None:
            spans = literal.spans(text)
        start, end = m.span(group)
        if any((s < end and start < e) or s < start < e for s, e in spans):
            return m.group(0)
        return repl(m)

    return pattern.sub(sub, text)


# One escaped character: an HTML character reference (decimal, hex, name; after &amp; escaping again) or a JSON
# \uXXXX or \/ escape (the forms _char_forms matches).
_ESCAPE = re.compile(r"&(?:amp;)*(?:#(?P<dec>\d{1,7})|#[xX](?P<hex>[0-9A-Fa-f]{1,6})"
                     r"|(?P<name>[A-Za-z][A-Za-z0-9]{1,31}));|\\u(?P<u>[0-9A-Fa-f]{4})|\\(?P<slash>/)")
# The start of an escape a cut broke off at the end of a text.
_CUT_ESCAPE = re.compile(r"(?:&(?:amp;)*(?:#[xX]?[0-9A-Fa-f]*|[A-Za-z][A-Za-z0-9]*)?|\\(?:u[0-9A-Fa-f]{0,3})?)\Z")


def _decode_escapes(text: str) -> tuple[str, list[int]]:
    """`text` with each escape (_ESCAPE) replaced by its character, and for each character of the result the index
    in `text` where it starts (one more entry: len(text)). Unknown names and invalid code points stay as written."""
    if "&" not in text and "\\" not in text:
        return text, list(range(len(text) + 1))
    out: list[str] = []
    starts: list[int] = []
    i = 0
    for m in _ESCAPE.finditer(text):
        for j in range(i, m.start()):
            out.append(text[j])
            starts.append(j)
        char = _escaped_char(m)
        if char is None:
            for j in range(m.start(), m.end()):
                out.append(text[j])
                starts.append(j)
        else:
            out.append(char)
            starts.append(m.start())
        i = m.end()
    for j in range(i, len(text)):
        out.append(text[j])
        starts.append(j)
    starts.append(len(text))
    return "".join(out), starts


def _escaped_char(m: re.Match[str]) -> str | None:
    try:
        if m["dec"] is not None:
            return chr(int(m["dec"]))
        if m["hex"] is not None:
            return chr(int(m["hex"], 16))
        if m["u"] is not None:
            return chr(int(m["u"], 16))
    except (ValueError, OverflowError):
        return None
    if m["slash"] is not None:
        return "/"
    value = html.entities.html5.get(f"{m['name']};")
    return value if value is not None and len(value) == 1 else None


def _trailing_word(head: str, secret: str) -> bool:
    """Whether `head` (an end of `secret`) lies within the secret's last word: letters only, and the secret has
    something else than a letter before that word ("pass" of "admin-pass")."""
    word = next((i for i, c in enumerate(reversed(secret)) if not c.isalpha()), len(secret))
    return head.isalpha() and len(head) <= word < len(secret)


def _literal(secret: str) -> str:
    """The pattern of one secret (a variant from encoded_variants): each character as written or escaped
    (_char_forms). A short secret (a PIN) is masked only as a whole word, or "1234"
    would eat "12345 ms"."""
    body = "".join(_char_forms(c) for c in secret)
    if len(secret) >= _SHORT_SECRET_LEN:
        return body
    return rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])"


def _sub_scheme(m: re.Match[str]) -> str:
    scheme, cred = m.group(1), m.group(3)
    return f"{scheme}{m.group(2)}{MASK}" if _credential_like(scheme, cred) else m.group(0)


def _credential_like(scheme: str, cred: str) -> bool:
    """A Basic credential is base64 of "user:password"; a bearer token is not a plain dictionary word."""
    if scheme.lower() == "basic":
        try:
            return b":" in base64.b64decode(cred + "=" * (-len(cred) % 4), validate=True)
        except (ValueError, binascii.Error):
            return False
    return len(cred) >= 8 and not _PLAIN_WORD.fullmatch(cred.rstrip("="))


# Environment variables whose names look secret by the rules above but hold none (PWD is the working folder).
_NOT_SECRET_ENV = frozenset(("PWD", "OLDPWD", "SSH_AUTH_SOCK", "GPG_AGENT_INFO", "KRB5CCNAME"))


# Environment variables are judged more generously than field names (SECRET_KEY_BASE, API_TOKEN_RAW): only a
# value of 8+ characters that is not a path is masked, so a wrong guess hides one value, not a common word.
_STRONG_ENV_WORDS = frozenset(("password", "passwd", "secret", "token", "apikey", "credentials", "credential"))
_ENV_METADATA_HEADS = frozenset(("url", "uri", "file", "path", "dir", "type", "name", "host", "port", "user",
                                 "username", "id", "ttl", "timeout", "length", "len", "count", "format", "mode"))


def _env_name_is_secret(name: str) -> bool:
    if name.upper() in _NOT_SECRET_ENV:
        return False
    if is_secret_name(name) or "WEBHOOK" in name.upper() or name.upper().endswith(("_PASS", "_PW")):
        return True
    words = _name_words(name)
    return bool(words) and words[-1] not in _ENV_METADATA_HEADS and bool(_STRONG_ENV_WORDS & set(words))


def _env_value_may_be_secret(value: str) -> bool:
    # A file path (GPG_KEY=/home/u/.gnupg/key.asc) is where a secret lives, not the secret: masking it would
    # hide paths all over the report.
    return is_secret_value(value) and not value.startswith(("/", "~", "./"))


def env_secrets(environ: dict[str, str] | None = None, min_length: int = 8) -> list[str]:
    """Values of environment variables whose names look secret (USER_PASSWORD, API_TOKEN, WECOM_KEY…).

    Documents may put any ${VAR} into any header or body; masking these values everywhere is the safety
    net for a secret sent under a harmless-looking name. Short values are skipped: masking every "true"
    or "8080" in a report would destroy it and protect nothing.
    """
    env = os.environ if environ is None else environ
    return [v for k, v in env.items()
            if _env_name_is_secret(k) and len(v) >= min_length and _env_value_may_be_secret(v)]
