"""Classification: an Exchange plus the interface's expectations -> one Classification with one Category."""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from . import bodypath
from .categories import Category
from .documents import BodyCheck, Expect
from .probe import Exchange

_REASON_MAX = 200
_VALUE_MAX = 60  # one quoted value inside a reason


@dataclass(frozen=True)
class Classification:
    category: Category | None  # None = healthy
    sub: str = ""  # sub-reason: connect/read/total, dns/refused/reset/tls, status, body, latency, ...
    reason: str = ""  # one human line, e.g. "HTTP 503", "read timeout after 10 s", "data.id: expected 1, got 2"

    @property
    def passed(self) -> bool:
        return self.category is None


HEALTHY = Classification(None)
Outcome = Classification  # the former name, for code not yet renamed; `Outcome` is now categories.Outcome


def classify(exchange: Exchange, expect: Expect) -> Classification:
    """Transport errors first, then status, then body checks, then latency."""
    for step in (_transport, _status, _headers, _body, _latency):
        outcome = step(exchange, expect)
        if outcome is not None:
            return outcome
    return HEALTHY


def _out(category: Category, sub: str, reason: str) -> Classification:
    return Classification(category, sub, _cut(" ".join(reason.split()), _REASON_MAX))


def _transport(ex: Exchange, expect: Expect) -> Classification | None:
    err = ex.error
    if err is None:
        if ex.status is None:  # cannot happen with probe.send; do not report it as healthy
            return _out(Category.NETWORK, "other", "no response")
        return None
    if err.kind == "timeout":
        return _out(Category.TIMEOUT, err.sub or "total", err.message)
    if err.kind == "network":
        return _out(Category.NETWORK, err.sub or "other", err.message)
    if err.kind == "response":  # it arrived but cannot be read: the server's fault, not the network's
        return _out(Category.UNEXPECTED, err.sub or "response", err.message)
    if err.kind == "redirects":
        return _out(Category.UNEXPECTED, "redirects", err.message)
    if err.kind == "invalid_url":  # URLs are validated when documents load; this is a safety net
        return _out(Category.UNEXPECTED, "invalid_url", err.message)
    if err.kind == "other":  # the request could not even be built (e.g. unencodable body)
        return _out(Category.UNEXPECTED, err.sub or "other", err.message)
    return _out(Category.NETWORK, "other", err.message)


def _status(ex: Exchange, expect: Expect) -> Classification | None:
    status = ex.status
    assert status is not None  # _transport handled it
    if status_allowed(status, expect.status):
        return None
    text = f"HTTP {status}" + (f" {ex.reason}" if ex.reason else "")
    if status in (401, 403):
        return _out(Category.AUTH, "status", text)
    if status == 404:
        return _out(Category.NOT_FOUND, "status", text)
    if status == 503:
        return _out(Category.UNAVAILABLE, "status", text)
    if status == 429:
        return _out(Category.RATE_LIMITED, "status", text)
    if 500 <= status <= 599:
        return _out(Category.SERVER_ERROR, "status", text)
    return _out(Category.UNEXPECTED, "status", f"HTTP {status}, expected {_describe_allowed(expect.status)}")


def _headers(ex: Exchange, expect: Expect) -> Outcome | None:
    """expect.headers: exact value or presence, names case-insensitive (RFC 9110 §5.1)."""
    got = {k.lower(): v for k, v in ex.response_headers.items()}
    for name, want in expect.headers:
        value = got.get(name.lower())
        if want is True and value is None:
            return _out(Category.UNEXPECTED, "header", f"header {name}: missing")
        if want is False and value is not None:
            return _out(Category.UNEXPECTED, "header", f"header {name}: expected absent, got {_show(value)}")
        if isinstance(want, str) and value != want:
            shown = "missing" if value is None else f"got {_show(value)}"
            return _out(Category.UNEXPECTED, "header", f"header {name}: expected {_show(want)}, {shown}")
    return None


def _describe_allowed(allowed: tuple[int | str, ...]) -> str:
    return ", ".join(str(a).lower() for a in allowed) if allowed else "2xx"


def _json_int(text: str) -> int | Decimal:
    """An integer of a JSON response. Python refuses int() of more than 4300 digits (CVE-2020-10735's limit),
    which made valid JSON read as "not JSON"; such a number is kept exactly as a Decimal."""
    return int(text) if len(text) <= 4000 else Decimal(text)


def _body(ex: Exchange, expect: Expect) -> Classification | None:
    if not expect.body:
        return None
    if ex.truncated:
        return _out(Category.UNEXPECTED, "body", f"body truncated at {_size(len(ex.body))}; checks need all of it")
    try:
        data = json.loads(_body_text(ex), parse_int=_json_int)
    except (UnicodeDecodeError, ValueError, RecursionError):
        ctype = next((v for k, v in ex.response_headers.items() if k.lower() == "content-type"), "")
        detail = f" (Content-Type {ctype})" if ctype else ""
        excerpt = ex.text(40).strip() if ex.body else ""
        shown = f": {excerpt!r}" if excerpt else " (empty body)"
        return _out(Category.UNEXPECTED, "body", f"response is not JSON{detail}{shown}")
    problems = [p for p in (_check(data, c) for c in expect.body) if p]
    if not problems:
        return None
    reason = problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    return _out(Category.UNEXPECTED, "body", reason)


def _body_text(ex: Exchange) -> str:
    """The body decoded with the Content-Type charset (GBK, Shift_JIS...) when Python knows it, else UTF-8."""
    charset = ex.charset()
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    text = ex.body.decode(charset) if charset else ex.body.decode("utf-8-sig")
    return text.removeprefix("\ufeff")


def _check(data: Any, check: BodyCheck) -> str | None:
    """None if the check passes, else one reason line."""
    label = check.path or "$"
    found, value = lookup(data, check.path)
    if check.op == "exists":
        if bool(check.value) == found:
            return None
        if found:
            return f"{label}: expected absent, got {_show(value)}"
        return f"{label}: missing{bodypath.hint(data, check.path)}"
    if not found:
        return f"{label}: missing{bodypath.hint(data, check.path)}"
    if check.op == "equals":
        if _json_equal(value, check.value):
            return None
        return f"{label}: expected {_show(check.value)}, got {_show(value)}"
    if check.op == "type":
        if _is_type(value, str(check.value)):
            return None
        return f"{label}: expected type {check.value}, got {_type_name(value)}"
    return f"{label}: unknown check {check.op!r}"  # documents validate ops; safety net


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but booleans are not numbers (True != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":  # JSON has no int/float split: 3.0 counts as an integer
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    return _type_name(value) == name


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return _cut(text, _VALUE_MAX)


def _latency(ex: Exchange, expect: Expect) -> Classification | None:
    if expect.max_ms is None or ex.elapsed_ms <= expect.max_ms:
        return None
    return _out(Category.UNEXPECTED, "latency", f"took {ex.elapsed_ms:.0f} ms, limit {expect.max_ms:g} ms")


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:g} {unit}" if n % factor == 0 else f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after(headers: dict[str, str], now: float) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 §10.2.3), else None.

    The value is either delay-seconds (a non-negative integer) or an HTTP-date, compared with `now` (epoch seconds);
    a date in the past means 0. Anything else (a negative or fractional number, garbage) is ignored, as the RFC
    gives it no meaning: the caller then uses its normal backoff."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):  # ASCII digits only: str.isdigit() also accepts '²'
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime forms carry no zone: HTTP dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


_PATTERN = re.compile(r"^([1-5])xx$", re.IGNORECASE)


def status_allowed(status: int, allowed: tuple[int | str, ...]) -> bool:
    """allowed: ints and '2xx'-style patterns; empty means 200-299."""
    if not allowed:
        return 200 <= status <= 299
    for item in allowed:
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if status == item:
                return True
            continue
        text = str(item).strip()
        if text.isdigit() and int(text) == status:  # "404" from a loosely typed document
            return True
        m = _PATTERN.match(text)
        if m and status // 100 == int(m.group(1)):
            return True
    return False


def lookup(data: object, path: str) -> tuple[bool, object]:
    """Resolve a body path like 'data.items[0].id' or 'data["a.b"]' ('' or '$' = whole); see bodypath.py."""
    return bodypath.lookup(data, path)
