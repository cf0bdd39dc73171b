"""Classification: an Exchange plus the interface's expectations -> one Classification with one Category."""

from __future__ import annotations

import codecs
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from . import bodypath, patterns
from .categories import Category
from .documents import BodyCheck, Expect
from .probe import Exchange
from .redact import Redactor, excerpt

_REASON_MAX = 200
_VALUE_MAX = 60  # one quoted value inside a reason
# The run's redactor while classify() runs: every value and reason is masked *before* it is cut (redact.excerpt),
# or a secret straddling a cut would survive as a prefix the later masking cannot recognise. A context
# variable rather than a parameter of each check helper: they only ever shorten text through _cut.
_REDACTOR: ContextVar[Redactor | None] = ContextVar("apimon_classify_redactor", default=None)


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


def classify(exchange: Exchange, expect: Expect, redactor: Redactor | None = None) -> Classification:
    """Transport errors first, then status, then body checks, then latency.

    redactor: the run's masking; the reason and every value quoted in it are masked before they are
    shortened (the reason is then safe to print). Without one, reasons are cut unmasked.
    A document's regular expression that runs over its budget (patterns.RegexTimeout) is the document's fault:
    invalid_document / regex, never retried."""
    token = _REDACTOR.set(redactor)
    try:
        for step in (_transport, _status, _headers, _body, _schema, _latency):
            try:
                outcome = step(exchange, expect)
            except patterns.RegexTimeout as exc:
                return _out(Category.INVALID_DOCUMENT, "regex", str(exc))
            if outcome is not None:
                return outcome
        return _slow(exchange, expect) or HEALTHY
    finally:
        _REDACTOR.reset(token)


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
    if status == 401:
        return _out(Category.AUTH, "status", text)
    if status == 403:  # RFC 9110 §15.5.4: the credentials were understood and are not enough
        return _out(Category.FORBIDDEN, "status", text)
    if status == 404:
        return _out(Category.NOT_FOUND, "status", text)
    if status == 503:
        return _out(Category.UNAVAILABLE, "status", text)
    if status == 429:
        return _out(Category.RATE_LIMITED, "status", text)
    if 500 <= status <= 599:
        return _out(Category.SERVER_ERROR, "status", text)
    return _out(Category.UNEXPECTED, "status", f"HTTP {status}, expected {_describe_allowed(expect.status)}")


# Reason templates of the header and body checks, in one place so a message catalogue can translate them.
# Placeholders: {label} the body path or header name, {want}/{got} JSON-rendered values.
MESSAGES: dict[str, str] = {
    "header_missing": "header {label}: missing",
    "header_absent": "header {label}: expected absent, got {got}",
    "header_equals": "header {label}: expected {want}, {got}",
    "header_contains": "header {label}: expected to contain {want}, {got}",
    "header_regex": "header {label}: expected to match /{want}/, {got}",
    "missing": "{label}: missing{hint}",
    "absent": "{label}: expected absent, got {got}",
    "equals": "{label}: expected {want}, got {got}",
    "not_equals": "{label}: expected anything but {want}",
    "type": "{label}: expected type {want}, got {got}",
    "in": "{label}: expected one of {want}, got {got}",
    "contains": "{label}: expected to contain {want}, got {got}",
    "regex": "{label}: expected to match /{want}/, got {got}",
    "text_contains": "body: expected to contain {want}",
    "text_regex": "body: expected to match /{want}/",
    "not_text": "{label}: expected a string, got {got}",
    "not_number": "{label}: expected a number, got {got}",
    "compare": "{label}: expected {op} {want}, got {got}",
    "no_length": "{label}: expected an array, string or object to measure, got {got}",
    "length": "{label}: expected length {op} {want}, got length {got}",
    "slow": "slow: took {got} ms, warn_ms {want} ms",
    "schema": "schema: {violations}{more}",
}
_SYMBOL = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "equals": "==", "not_equals": "!="}
_COMPARE = {
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "equals": lambda a, b: a == b, "not_equals": lambda a, b: a != b,
}  # fmt: skip


def _say(key: str, **values: Any) -> str:
    return MESSAGES[key].format(**values)


def _headers(ex: Exchange, expect: Expect) -> Outcome | None:
    """expect.headers: exists, equals, contains or regex (re.search) per header; names case-insensitive
    (RFC 9110 §5.1). Several fields of one name arrive joined by ", " (requests/urllib3), as RFC 9110 §5.3 allows."""
    got = {k.lower(): v for k, v in ex.response_headers.items()}
    for check in expect.headers:
        name, op, want = check.name, check.op, check.value
        value = got.get(name.lower())
        shown = "missing" if value is None else f"got {_show(value)}"
        problem: str | None = None
        if op == "exists":
            if want is True and value is None:
                problem = _say("header_missing", label=name)
            elif want is False and value is not None:
                problem = _say("header_absent", label=name, got=_show(value))
        elif op == "equals" and value != want:
            problem = _say("header_equals", label=name, want=_show(want), got=shown)
        elif op == "contains" and (value is None or str(want) not in value):
            problem = _say("header_contains", label=name, want=_show(want), got=shown)
        elif op == "regex" and (value is None or not _search(want, value)):
            problem = _say("header_regex", label=name, want=_cut(str(want), _VALUE_MAX), got=shown)
        if problem:
            return _out(Category.UNEXPECTED, "header", problem)
    return None


def _search(pattern: Any, text: str) -> bool:
    """re.search semantics within the pattern's time budget (patterns.py; compiled when the document loaded).
    Raises patterns.RegexTimeout."""
    try:
        return patterns.search(pattern, text)
    except patterns.PatternError:  # safety net: a pattern that slipped past validation never matches
        return False


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
        reason = f"body truncated at {_size(len(ex.body))} (defaults.max_body_bytes); checks need all of it"
        return _out(Category.UNEXPECTED, "body", reason)
    try:
        text = _body_text(ex)
    except (UnicodeDecodeError, ValueError):
        text = None
    data: Any = None
    if any(c.path is not None for c in expect.body):  # only raw-text checks: the body need not be JSON
        try:
            if text is None:
                raise ValueError("undecodable")
            data = json.loads(text, parse_int=_json_int)
        except (ValueError, RecursionError):
            ctype = next((v for k, v in ex.response_headers.items() if k.lower() == "content-type"), "")
            detail = f" (Content-Type {ctype})" if ctype else ""
            start = _cut(ex.text(40 + _LOOKAHEAD).strip(), 40) if ex.body else ""
            shown = f": {start!r}" if start else " (empty body)"
            return _out(Category.UNEXPECTED, "body", f"response is not JSON{detail}{shown}")
    raw = text if text is not None else ex.text()
    problems = [p for p in (_text_check(raw, c) if c.path is None else _check(data, c) for c in expect.body) if p]
    if not problems:
        return None
    reason = problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
    return _out(Category.UNEXPECTED, "body", reason)


def _schema(ex: Exchange, expect: Expect) -> Outcome | None:
    """expect.schema: the JSON body against a JSON Schema (response_schema.py); the first violations by path."""
    if not isinstance(expect.schema, dict):  # None: no schema; False: switched off
        return None
    if ex.truncated:
        reason = f"body truncated at {_size(len(ex.body))} (defaults.max_body_bytes); the schema needs all of it"
        return _out(Category.UNEXPECTED, "schema", reason)
    try:
        data = json.loads(_body_text(ex))
    except (UnicodeDecodeError, ValueError, RecursionError):
        start = _cut(ex.text(40 + _LOOKAHEAD).strip(), 40) if ex.body else ""
        return _out(Category.UNEXPECTED, "schema", f"response is not JSON: {start!r}" if start else
                    "response is not JSON (empty body)")
    from . import response_schema  # jsonschema's helpers: only for interfaces with expect.schema

    try:
        shown, total = response_schema.violations(response_schema.validator(expect.schema, expect.schema_context),
                                                  data, _REDACTOR.get())
    except patterns.RegexTimeout:
        raise
    except Exception as exc:  # a schema the library cannot apply: the document's fault. Documents' $refs are resolved
        # when they load (response_schema.prepare), so this is a safety net for schemas built in code.
        return _out(Category.INVALID_DOCUMENT, "schema", f"schema cannot be applied: {exc or type(exc).__name__}")
    if not shown:
        return None
    more = f" (+{total - len(shown)}{'+' if total >= 50 else ''} more)" if total > len(shown) else ""
    return _out(Category.UNEXPECTED, "schema", _say("schema", violations="; ".join(shown), more=more))


def _text_check(text: str, check: BodyCheck) -> str | None:
    """contains / regex on the raw response text (HTML, XML, plain text, or JSON as sent)."""
    want = str(check.value)
    if check.op == "contains":
        return None if want in text else _say("text_contains", want=_show(want))
    if check.op == "regex":
        return None if _search(check.value, text) else _say("text_regex", want=_cut(want, _VALUE_MAX))
    return f"body: unknown check {check.op!r}"  # documents validate ops; safety net


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
    path = check.path or ""
    label = path or "$"
    found, value = lookup(data, path)
    op, want = check.op, check.value
    if op == "exists":
        if bool(want) == found:
            return None
        if found:
            return _say("absent", label=label, got=_show(value))
        return _say("missing", label=label, hint=bodypath.hint(data, path))
    if not found:
        return _say("missing", label=label, hint=bodypath.hint(data, path))
    if op == "equals":
        return None if _json_equal(value, want) else _say("equals", label=label, want=_show(want), got=_show(value))
    if op == "not_equals":
        return None if not _json_equal(value, want) else _say("not_equals", label=label, want=_show(want))
    if op == "type":
        return None if _is_type(value, str(want)) else _say("type", label=label, want=want, got=_type_name(value))
    if op == "in":
        if any(_json_equal(value, item) for item in want):
            return None
        return _say("in", label=label, want=_show(list(want)), got=_show(value))
    if op in ("contains", "regex"):
        return _value_text_check(label, value, op, want)
    if op in _COMPARE:
        if not _is_number(value):
            return _say("not_number", label=label, got=_describe(value))
        if _COMPARE[op](value, want):
            return None
        return _say("compare", label=label, op=_SYMBOL[op], want=_show(want), got=_show(value))
    if op == "length":
        if not isinstance(value, str | list | tuple | dict):
            return _say("no_length", label=label, got=_describe(value))
        cmp, count = want
        if _COMPARE[cmp](len(value), count):
            return None
        return _say("length", label=label, op=_SYMBOL[cmp], want=count, got=len(value))
    return f"{label}: unknown check {op!r}"  # documents validate ops; safety net


def _value_text_check(label: str, value: Any, op: str, want: Any) -> str | None:
    """contains on a string (substring) or an array (an element equal to it); regex on a string."""
    if op == "contains" and isinstance(value, list | tuple):
        if any(_json_equal(item, want) for item in value):
            return None
        return _say("contains", label=label, want=_show(want), got=_show(value))
    if not isinstance(value, str):
        return _say("not_text", label=label, got=_describe(value))
    if op == "contains":
        if isinstance(want, str) and want in value:
            return None
        return _say("contains", label=label, want=_show(want), got=_show(value))
    if _search(want, value):
        return None
    return _say("regex", label=label, want=_cut(str(want), _VALUE_MAX), got=_show(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return f"{_type_name(value)} {_show(value)}"


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


def _slow(ex: Exchange, expect: Expect) -> Outcome | None:
    """Degraded (Checkly's term): a healthy answer slower than warn_ms. It passes; sub "slow" flags it."""
    if expect.warn_ms is None or ex.elapsed_ms <= expect.warn_ms:
        return None
    return Classification(None, "slow", _say("slow", got=f"{ex.elapsed_ms:.0f}", want=f"{expect.warn_ms:g}"))


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:g} {unit}" if n % factor == 0 else f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


# Characters read past a cut before masking, so a credential crossing the cut is masked whole.
_LOOKAHEAD = 4096


def _cut(text: str, limit: int) -> str:
    return excerpt(text, limit, _REDACTOR.get())


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
