"""Field validators for interface documents (private helper of documents.py).

Each validator takes (value, path, problems), records what is wrong with the expected shape and
returns the normalised value, or INVALID. Collecting instead of raising lets one error report
every problem of an interface at once.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from . import bodypath
from .loader import MissingVariable, Path_, did_you_mean, substitute_env, substituted_values

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
INTERFACE_KEYS = (
    "name", "method", "path", "url", "params", "headers", "json", "form", "body",
    "auth", "expect", "timeout", "tags", "skip", "description", "owner", "severity",
)  # fmt: skip
EXPECT_KEYS = ("status", "body", "max_ms", "headers", "warn_ms", "schema", "cert_days")
BODY_CHECK_OPS = (
    "equals", "not_equals", "exists", "type", "in", "contains", "regex", "gt", "ge", "lt", "le", "length",
)  # fmt: skip
# Checks on the raw response text when a check has no `path`: they work on HTML, XML and plain text too.
TEXT_CHECK_OPS = ("contains", "regex")
COMPARISON_OPS = ("gt", "ge", "lt", "le")
LENGTH_OPS = ("equals", "not_equals") + COMPARISON_OPS
HEADER_CHECK_OPS = ("exists", "equals", "contains", "regex")
BODY_CHECK_KEYS = ("path",) + BODY_CHECK_OPS
BODY_KEYS = ("json", "form", "body")
CHECK_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
TAG_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Markers pytest (or its usual plugins) gives a meaning: a tag must not silently skip or xfail an item.
RESERVED_TAGS = ("skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "timeout", "flaky")
SKIP_REASON = "skipped in document"

INVALID: Any = object()
_STATUS_CLASS = re.compile(r"^[1-5]xx$", re.IGNORECASE)


class Problems(list[tuple[Path_, str]]):
    """(field path, message) pairs. A value that came from ${VAR} substitution is shown as the ${VAR} the
    author wrote, never as its value: `method: "${PASSWORD}"` must not print the password."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self.substituted: dict[str, str] = {}  # substituted value -> the text as written

    def add(self, path: Path_, message: str) -> None:
        for value in sorted(self.substituted, key=len, reverse=True):
            raw = self.substituted[value]
            message = message.replace(value, raw)
            if len(value) > 40:  # describe() shows the first 37 characters only
                message = message.replace(value[:37], raw)
        self.append((tuple(path), message))


def describe(value: Any) -> str:
    """How a value reads in 'got ...': type plus a short rendering."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value:g}"
    if isinstance(value, str):
        return f"string {(value if len(value) <= 40 else value[:37] + '...')!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (_dt.date, _dt.datetime)):  # YAML turns unquoted 2024-01-01 into a date
        return f"date {value.isoformat()} (quote it to keep it a string)"
    return type(value).__name__


def substitute(value: Any, path: Path_, environ: Mapping[str, str], problems: Problems) -> Any:
    """${VAR} substitution in every string value (keys excluded); unset variables become problems."""
    if isinstance(value, str):
        try:
            result = substitute_env(value, environ)
            if result != value and result.strip():
                # Each variable's own value too (a message may quote part of the text), as validators may
                # print it: case changed, or quoted with repr() (escaped backslashes, quotes, non-ASCII).
                found = {result: value, **{v: raw for v, raw in substituted_values(value, environ).items()
                                           if len(v.strip()) >= 4}}
                for text, raw in found.items():
                    for variant in (text, text.upper(), text.lower(), repr(text)[1:-1], ascii(text)[1:-1]):
                        problems.substituted.setdefault(variant, raw)
            return result
        except MissingVariable as exc:
            problems.add(path, str(exc))
            return value
    if isinstance(value, dict):
        return {k: substitute(v, path + (k,), environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, path + (i,), environ, problems) for i, v in enumerate(value)]
    return value


_SENT_AS_TEXT = ("params", "headers", "form")  # values that go on the wire as text
_TARGETS = ("path", "url")


def as_written(raw: dict[Any, Any], prefix: Path_, source: Mapping[Path_, str]) -> dict[Any, Any]:
    """Numbers in params/headers/form and a numeric path/url replaced by their source text.

    YAML and JSON read `1.10` as 1.1 and `007` as 7; a query parameter must be sent as the user wrote it.
    `source` is loader.Parsed.source (field path -> text of a plain number). Returns a new dict.
    """
    out = dict(raw)

    def text(value: Any, path: Path_) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and path in source:
            return source[path]
        return value

    for key in _TARGETS:
        if key in out:
            out[key] = text(out[key], prefix + (key,))
    if isinstance(out.get("expect"), dict):
        out["expect"] = _expect_as_written(out["expect"], prefix + ("expect",), text)
    for key in _SENT_AS_TEXT:
        section = out.get(key)
        if not isinstance(section, dict):
            continue
        fixed: dict[Any, Any] = {}
        for name, value in section.items():
            where = prefix + (key, name)
            if isinstance(value, list):
                fixed[name] = [text(v, where + (i,)) for i, v in enumerate(value)]
            else:
                fixed[name] = text(value, where)
        out[key] = fixed
    return out


def _expect_as_written(expect: dict[Any, Any], prefix: Path_, text: Callable[[Any, Path_], Any]) -> dict[Any, Any]:
    """Numbers that a check compares as text (header values, `contains` on the raw body): `X-Version: 1.10`
    and `{contains: 007}` mean the text as written."""
    out = dict(expect)
    headers = out.get("headers")
    if isinstance(headers, dict):
        out["headers"] = {
            name: {op: text(v, prefix + ("headers", name, op)) if op in ("equals", "contains") else v
                   for op, v in check.items()} if isinstance(check, dict) else text(check, prefix + ("headers", name))
            for name, check in headers.items()
        }
    body = out.get("body")
    if isinstance(body, list):
        out["body"] = [
            {op: text(v, prefix + ("body", i, op)) if op == "contains" else v for op, v in check.items()}
            if isinstance(check, dict) and "path" not in check else check
            for i, check in enumerate(body)
        ]
    return out


def wire_text(value: Any) -> Any:
    """A scalar as it goes into a query string or form: true/false (JSON spelling), numbers as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float))  # bool is an int


def unknown_key(key: Any, allowed: tuple[str, ...]) -> str:
    hint = did_you_mean(str(key), allowed)
    return f"unknown key '{key}'" + (hint or f"; expected one of {', '.join(allowed)}")


def _string(value: Any, path: Path_, p: Problems) -> Any:
    if isinstance(value, str):
        return value
    p.add(path, f"expected a string, got {describe(value)}")
    return INVALID


def _positive(unit: str, limit: float) -> Callable[[Any, Path_, Problems], Any]:
    """A number in (0, limit]: a huge or infinite timeout overflows the platform's timers."""

    def check(value: Any, path: Path_, p: Problems) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= limit:
            return float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
            p.add(path, f"expected at most {limit:g} {unit}, got {describe(value)}")
            return INVALID
        p.add(path, f"expected a positive number of {unit}, got {describe(value)}")
        return INVALID

    return check


def _days(value: Any, path: Path_, p: Problems) -> Any:
    """A number of days in [0, 36500] (expect.cert_days: 0 fails only an expired certificate)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 36500:
        return float(value)
    p.add(path, f"expected a number of days from 0 to 36500, got {describe(value)}")
    return INVALID


def _mapping(value: Any, path: Path_, p: Problems, what: str) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        p.add(path, f"expected {what}, got {describe(value)}")
        return None
    for key in value:
        if not isinstance(key, str):
            p.add(path + (str(key),), f"keys of {path[-1]} must be strings, got {describe(key)} (quote it)")
    return value


def _name(value: Any, path: Path_, p: Problems) -> Any:
    if not isinstance(value, str):
        p.add(path, f"expected the interface name as a string, got {describe(value)}")
        return INVALID
    name = value.strip()
    if not name:
        p.add(path, "the interface name must not be empty")
    elif "\n" in name or "\r" in name:
        p.add(path, "the interface name must be a single line")
    elif "::" in name:
        p.add(path, f"the interface name must not contain '::' (pytest uses it in node ids), got {name!r}")
    else:
        return name
    return INVALID


def _method(value: Any, path: Path_, p: Problems) -> Any:
    method = value.strip().upper() if isinstance(value, str) else None
    if method in HTTP_METHODS:
        return method
    got = f"unknown HTTP method '{value}'" if isinstance(value, str) else f"got {describe(value)}"
    p.add(path, f"{got}{did_you_mean(method or '', HTTP_METHODS)}; expected one of {', '.join(HTTP_METHODS)}")
    return INVALID


def _path(value: Any, path: Path_, p: Problems) -> Any:
    if _string(value, path, p) is INVALID:
        return INVALID
    text = value.strip()
    if "://" in text:
        p.add(path, f"'path' is joined to the service base URL and must not be a full URL, got {text!r}; use 'url'")
    elif not text:
        p.add(path, "'path' must not be empty (use '/' for the base URL itself)")
    elif any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        p.add(path, f"'path' must not contain whitespace or control characters (encode spaces as %20), got {text!r}")
    else:
        return text if text.startswith("/") else "/" + text
    return INVALID


def url_problem(text: str) -> str | None:
    """What is wrong with an absolute http(s) URL, or None."""
    if not text:
        return "it is empty"
    if any(c.isspace() for c in text):
        return "it contains whitespace (encode spaces as %20)"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return "it contains a control character"
    if "://" not in text:
        hint = "; for a path relative to the service base URL use 'path'" if text.startswith("/") else ""
        return "expected an absolute URL starting with http:// or https://" + hint
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for http://[::1/x
        return f"{exc} (an IPv6 host is written in brackets: http://[::1]:8080/)"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"scheme '{parts.scheme}' is not http or https{did_you_mean(scheme, ('http', 'https'))}"
    if not host:
        return f"missing host after '{parts.scheme}://'"
    if ":" not in host and any(not label or len(label) > 63 for label in host.rstrip(".").split(".")):
        return f"host name {host!r} has an empty label or one longer than 63 characters (RFC 1035)"
    hostport = parts.netloc.rpartition("@")[2]
    tail = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    if ":" in tail:
        port = tail.partition(":")[2]  # 'h:8080:9090' has no valid port either
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            return f"the port is not a number between 1 and 65535 (got {port!r})"
    return None


def _url(value: Any, path: Path_, p: Problems) -> Any:
    if _string(value, path, p) is INVALID:
        return INVALID
    text = value.strip()
    problem = url_problem(text)
    if problem:
        p.add(path, f"malformed URL {text!r}: {problem}")
        return INVALID
    return text


def _params(value: Any, path: Path_, p: Problems) -> Any:
    if (mapping := _mapping(value, path, p, "a mapping of query parameters")) is None:
        return INVALID
    before = len(p)
    out: dict[str, Any] = {}
    for key, item in mapping.items():
        if _is_scalar(item):
            out[key] = wire_text(item)
        elif isinstance(item, list) and all(_is_scalar(x) for x in item):
            out[key] = [wire_text(x) for x in item]
        else:
            p.add(path + (key,), f"expected a string, number, boolean or a list of those, got {describe(item)}")
    return out if len(p) == before else INVALID


def _headers(value: Any, path: Path_, p: Problems) -> Any:
    if (mapping := _mapping(value, path, p, "a mapping of header names to values")) is None:
        return INVALID
    out: dict[str, str] = {}
    for key, item in mapping.items():
        if isinstance(item, (int, float, str)) and not isinstance(item, bool):
            text = item if isinstance(item, str) else str(wire_text(item))
            problem = header_problem(str(key), text)
            if problem:
                p.add(path + (key,), problem)
            else:
                out[key] = text
        else:
            extra = " (quote it in YAML)" if isinstance(item, bool) else ""
            p.add(path + (key,), f"expected a string or number, got {describe(item)}{extra}")
    return out if len(out) == len(mapping) else INVALID


def _form(value: Any, path: Path_, p: Problems) -> Any:
    if (mapping := _mapping(value, path, p, "a mapping of form fields")) is None:
        return INVALID
    bad = [k for k, v in mapping.items() if not _is_scalar(v)]
    for key in bad:
        p.add(path + (key,), f"expected a string, number or boolean, got {describe(mapping[key])}")
    return INVALID if bad else {k: wire_text(v) for k, v in mapping.items()}


# RFC 9110 §5.1: a field name is a token. http.client encodes values as ISO-8859-1 and refuses CR/LF.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def header_problem(name: str, value: str) -> str | None:
    """Why a header cannot be sent as written (RFC 9110 §5.1, §5.5), or None.

    Rule: a name must be a token; a value must be one line of ISO-8859-1 text without leading
    whitespace. Values are never re-encoded silently (servers disagree on RFC 8187 / percent-encoding):
    a value outside ISO-8859-1 is rejected, and the message gives its UTF-8 percent-encoding to copy.
    """
    if not _TOKEN.fullmatch(name):
        return (f"header name {name!r} cannot be sent: a name is letters, digits and !#$%&'*+-.^_`|~ only "
                "(no spaces, colons or non-ASCII)")  # fmt: skip
    if any(c in value for c in "\r\n\0"):
        return "header value cannot be sent: it contains a line break or NUL"
    if value[:1] in (" ", "\t"):
        return "header value cannot be sent: it starts with whitespace"
    bad = next((c for c in value if ord(c) > 0xFF), None)
    if bad is not None:
        encoded = quote(value, safe="")
        return (f"header value contains {bad!r}, which HTTP/1.1 headers cannot carry (only ISO-8859-1); "
                f"if the service expects UTF-8 percent-encoding, write {encoded!r}")  # fmt: skip
    return None


def _json_value(value: Any, path: Path_, p: Problems) -> Any:
    """Any JSON value; YAML extras (dates, non-string keys, NaN/Infinity) are rejected where they occur."""
    if isinstance(value, float) and not math.isfinite(value):
        p.add(path, f"expected a JSON value, got {value!r}: JSON has no NaN or Infinity (RFC 8259); send a string")
        return INVALID
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, list):
        items = [_json_value(v, path + (i,), p) for i, v in enumerate(value)]
        return INVALID if any(v is INVALID for v in items) else items
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                p.add(path + (str(k),), f"JSON object keys must be strings, got {describe(k)} (quote it)")
            out[k] = _json_value(v, path + (k,), p)
        return INVALID if any(v is INVALID for v in out.values()) or len(out) != len(value) else out
    p.add(path, f"expected a JSON value, got {describe(value)}")
    return INVALID


def _auth(value: Any, path: Path_, p: Problems) -> Any:
    if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
        return value.strip() if isinstance(value, str) else value
    p.add(path, f"expected true, false or the name of the service whose token to use, got {describe(value)}")
    return INVALID


def _status_one(value: Any) -> int | str | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())  # "${STATUS}" substitutes to a string
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 100 <= value <= 599 else None
    if isinstance(value, str) and _STATUS_CLASS.match(value.strip()):
        return value.strip().lower()
    return None


def _status(value: Any, path: Path_, p: Problems) -> Any:
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        code = _status_one(item)
        if code is not None:
            out.append(code)
            continue
        where = path + (i,) if isinstance(value, list) else path
        if isinstance(item, int) and not isinstance(item, bool):
            p.add(where, f"status code {item} is out of range: expected 100-599")
        elif isinstance(value, list):
            p.add(where, f"expected a status code (100-599) or a pattern like '2xx', got {describe(item)}")
        else:
            p.add(where, f"expected a list of status codes or a single code (100-599 or a pattern like '2xx'), "
                         f"got {describe(item)}")  # fmt: skip
    return tuple(out) if len(out) == len(items) else INVALID


def _body_path(value: Any, path: Path_, p: Problems) -> Any:
    if _string(value, path, p) is INVALID:
        return INVALID
    text = value.strip()
    if text in ("", "$"):
        return text
    if text.startswith(("$.", "$[")):  # JSONPath habit: '$.data.id' means 'data.id'
        text = text[1:].removeprefix(".")
    try:
        bodypath.parse(text)
    except bodypath.BodyPathError as exc:
        p.add(path, f"malformed body path {value!r}: {exc}; expected keys and [index] like 'data.items[0].id', "
                    "a quoted key like data[\"a.b\"] ('' = whole body)")  # fmt: skip
        return INVALID
    return text


_OPS_TEXT = ", ".join(BODY_CHECK_OPS)


def _number(value: Any, path: Path_, p: Problems, what: str = "a number") -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    p.add(path, f"expected {what}, got {describe(value)}")
    return INVALID


def _regex(value: Any, path: Path_, p: Problems) -> Any:
    """A Python `re` pattern (re.search: it may match anywhere) -> patterns.Pattern: compiled now, once, so a typo
    is a document error, with the document's time budget for every match (limits.regex_timeout_ms)."""
    from . import patterns

    if _string(value, path, p) is INVALID:
        return INVALID
    try:
        return patterns.compile_pattern(value)
    except patterns.PatternError as exc:
        p.add(path, str(exc))
        return INVALID


def _length(value: Any, path: Path_, p: Problems) -> Any:
    """`length: 3` or `length: {ge: 1}` -> (comparison, count)."""
    def count(item: Any, where: Path_) -> Any:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            return item
        p.add(where, f"expected a length (an integer >= 0), got {describe(item)}")
        return INVALID

    if isinstance(value, dict):
        ops = [k for k in value if k in LENGTH_OPS]
        for key in value:
            if key not in LENGTH_OPS:
                p.add(path + (str(key),), unknown_key(key, LENGTH_OPS))
        if len(ops) != 1 or len(value) != 1:
            if not ops:
                p.add(path, f"expected exactly one of {', '.join(LENGTH_OPS)}")
            elif len(ops) > 1:
                p.add(path + (ops[1],), f"expected exactly one comparison, got '{ops[0]}' and '{ops[1]}'")
            return INVALID
        n = count(value[ops[0]], path + (ops[0],))
        return INVALID if n is INVALID else (ops[0], n)
    n = count(value, path)
    return INVALID if n is INVALID else ("equals", n)


def _op_value(op: str, value: Any, path: Path_, p: Problems) -> Any:
    if op in ("equals", "not_equals"):
        return _json_value(value, path, p)
    if op == "exists":
        if not isinstance(value, bool):
            p.add(path, f"expected true or false, got {describe(value)}")
            return INVALID
        return value
    if op == "type":
        # Unquoted `type: null` in YAML is None: it can only mean the null type.
        name = "null" if value is None else value
        if name not in CHECK_TYPES:
            hint = did_you_mean(name, CHECK_TYPES) if isinstance(name, str) else ""
            p.add(path, f"unknown type {describe(name)}{hint}; expected one of {', '.join(CHECK_TYPES)}")
            return INVALID
        return name
    if op == "in":
        if not isinstance(value, list) or not value:
            p.add(path, f"expected a non-empty list of allowed values, got {describe(value)}")
            return INVALID
        items = _json_value(value, path, p)
        return INVALID if items is INVALID else tuple(items)
    if op == "contains":
        return _json_value(value, path, p)
    if op == "regex":
        return _regex(value, path, p)
    if op in COMPARISON_OPS:
        return _number(value, path, p)
    return _length(value, path, p)


def _check(value: Any, path: Path_, p: Problems) -> Any:
    if not isinstance(value, dict):
        p.add(path, f"expected a body check (a mapping with 'path' and one of {_OPS_TEXT}), got "
                    f"{describe(value)}")  # fmt: skip
        return INVALID
    before = len(p)
    for key in value:
        if key not in BODY_CHECK_KEYS:
            p.add(path + (str(key),), unknown_key(key, BODY_CHECK_KEYS))
    ops = [k for k in BODY_CHECK_OPS if k in value]
    check_path: Any = None  # None: the raw response text (contains / regex only)
    if "path" in value:
        check_path = _body_path(value["path"], path + ("path",), p)
    elif not ops or (len(ops) == 1 and ops[0] not in TEXT_CHECK_OPS):  # two checks: that error comes first
        p.add(path + ("path",), "missing required field 'path' (use '' for the whole body; only contains and "
                                "regex may leave it out to check the raw text)")  # fmt: skip
    op_value: Any = INVALID
    if not ops:
        p.add(path, f"missing check: expected exactly one of {_OPS_TEXT}")
    elif len(ops) > 1:
        p.add(path + (ops[1],), f"expected exactly one check per mapping, got '{ops[0]}' and '{ops[1]}' "
                                "(write two checks)")  # fmt: skip
    else:
        op_value = _op_value(ops[0], value[ops[0]], path + (ops[0],), p)
        if ops[0] == "contains" and check_path is None and op_value is not INVALID:
            # The raw body is text: a number is its text as written (as_written), as in a header check.
            if isinstance(op_value, (int, float)) and not isinstance(op_value, bool):
                op_value = str(wire_text(op_value))
            elif not isinstance(op_value, str):
                p.add(path + (ops[0],), f"expected text to find in the raw body, got {describe(op_value)}")
    return (check_path, ops[0], op_value) if len(p) == before else INVALID


def _checks(value: Any, path: Path_, p: Problems) -> Any:
    if not isinstance(value, list):
        p.add(path, f"expected a list of body checks (each with 'path' and one of {_OPS_TEXT}), got "
                    f"{describe(value)}")  # fmt: skip
        return INVALID
    checks = [_check(item, path + (i,), p) for i, item in enumerate(value)]
    return INVALID if any(c is INVALID for c in checks) else tuple(checks)


def _header_check(item: Any, path: Path_, p: Problems) -> Any:
    """One header's check -> (op, value): a string or number is `equals`, true/false is `exists`, or a mapping
    with exactly one of exists, equals, contains, regex."""
    if isinstance(item, bool):
        return ("exists", item)
    if isinstance(item, (int, float, str)):
        return ("equals", str(wire_text(item)))
    if not isinstance(item, dict):
        p.add(path, f"expected the exact header value, true/false for present/absent, or a mapping with one of "
                    f"{', '.join(HEADER_CHECK_OPS)}; got {describe(item)}")  # fmt: skip
        return INVALID
    before = len(p)
    for key in item:
        if key not in HEADER_CHECK_OPS:
            p.add(path + (str(key),), unknown_key(key, HEADER_CHECK_OPS))
    ops = [k for k in HEADER_CHECK_OPS if k in item]
    if not ops:
        p.add(path, f"missing check: expected exactly one of {', '.join(HEADER_CHECK_OPS)}")
        return INVALID
    if len(ops) > 1:
        p.add(path + (ops[1],), f"expected exactly one check per header, got '{ops[0]}' and '{ops[1]}'")
        return INVALID
    op, want = ops[0], item[ops[0]]
    if op == "exists":
        if not isinstance(want, bool):
            p.add(path + (op,), f"expected true or false, got {describe(want)}")
    elif op == "regex":
        want = _regex(want, path + (op,), p)
    elif isinstance(want, (int, float, str)) and not isinstance(want, bool):
        want = str(wire_text(want))
    else:
        p.add(path + (op,), f"expected a string, got {describe(want)}")
    return (op, want) if len(p) == before else INVALID


def _response_schema(value: Any, path: Path_, p: Problems) -> Any:
    """An inline JSON Schema (mapping), a schema file relative to the document, or false (no schema check, e.g.
    to opt out of an imported OpenAPI response schema) -> (schema or False, response_schema.SchemaContext or None).
    Every `$ref` is resolved now (local files inside the pool only), so a bad schema fails before any request."""
    from . import response_schema

    if value is False:
        return (False, None)
    where = response_schema.place.get()
    try:
        if isinstance(value, dict):
            return (value, response_schema.prepare(value, None, where))
        if isinstance(value, str) and value.strip():
            schema, file = response_schema.load_schema(value.strip(), where)
            return (schema, response_schema.prepare(schema, file, where))
    except response_schema.SchemaProblem as exc:
        p.add(path + exc.at if isinstance(value, dict) else path, str(exc))
        return INVALID
    p.add(path, f"expected a JSON Schema (a mapping), the path of a schema file relative to this document, or "
                f"false; got {describe(value)}")  # fmt: skip
    return INVALID


def _expect_headers(value: Any, path: Path_, p: Problems) -> Any:
    """name -> (op, value); see _header_check. E.g. Location after a 302, Content-Type contains json."""
    if (mapping := _mapping(value, path, p, "a mapping of response header names to checks")) is None:
        return INVALID
    before = len(p)
    out: dict[str, tuple[str, Any]] = {}
    seen: dict[str, str] = {}  # lower-case name -> the spelling first used
    for key, item in mapping.items():
        if not isinstance(key, str):
            continue  # _mapping reported it
        if not _TOKEN.fullmatch(key):
            p.add(path + (key,), f"header name {key!r} can never be in a response: a field name is a token, letters, "
                                 "digits and !#$%&'*+-.^_`|~ only, no spaces, colons or non-ASCII (RFC 9110 §5.1)")
            continue
        if key.lower() in seen:
            p.add(path + (key,), f"header {key!r} is checked twice (also as {seen[key.lower()]!r}): header names "
                                 "are case-insensitive (RFC 9110 §5.1), keep one check per header")
            continue
        seen[key.lower()] = key
        check = _header_check(item, path + (key,), p)
        if check is not INVALID:
            out[key] = check
    return out if len(p) == before else INVALID


_EXPECT_PARSERS: dict[str, Callable[[Any, Path_, Problems], Any]] = {
    "status": _status,
    "body": _checks,
    "max_ms": _positive("milliseconds", 86_400_000),
    "headers": _expect_headers,
    "warn_ms": _positive("milliseconds", 86_400_000),
    "schema": _response_schema,
    "cert_days": _days,
}


def _expect(value: Any, path: Path_, p: Problems) -> Any:
    """Only the keys given: defaults merge per key, so absence must stay visible."""
    what = "a mapping with status, body, headers and/or max_ms (also warn_ms, schema, cert_days)"
    if (mapping := _mapping(value, path, p, what)) is None:
        return INVALID
    out = parse_fields(mapping, path, p, EXPECT_KEYS, parsers=_EXPECT_PARSERS)
    if "warn_ms" in out and "max_ms" in out and out["warn_ms"] >= out["max_ms"]:
        p.add(path + ("warn_ms",), f"warn_ms ({out['warn_ms']:g}) must be less than max_ms ({out['max_ms']:g}): "
                                   "slower than warn_ms but within max_ms is 'slow', beyond max_ms is a failure")
        out.pop("warn_ms")
    return out


def _tags(value: Any, path: Path_, p: Problems) -> Any:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        p.add(path, f"expected a tag or a list of tags, got {describe(value)}")
        return INVALID
    before = len(p)
    for i, tag in enumerate(items):
        where = path + (i,) if isinstance(value, list) else path
        if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
            p.add(where, f"invalid tag {describe(tag)}: tags become pytest markers, so use letters, digits and "
                         "underscores, not starting with a digit (e.g. smoke, p0, user_center)")  # fmt: skip
        elif tag in RESERVED_TAGS:
            p.add(where, f"tag '{tag}' is reserved by pytest; to skip an interface use the 'skip' field")
    return tuple(dict.fromkeys(items)) if len(p) == before else INVALID


def _skip(value: Any, path: Path_, p: Problems) -> Any:
    if isinstance(value, bool):
        return SKIP_REASON if value else None
    if isinstance(value, str):
        return value.strip() or SKIP_REASON
    p.add(path, f"expected a reason (string) or true, got {describe(value)}")
    return INVALID


def _owner(value: Any, path: Path_, p: Problems) -> Any:
    from .ownership import parse_owners

    try:
        return parse_owners(value)
    except ValueError as exc:
        p.add(path, str(exc))
        return INVALID


def _severity(value: Any, path: Path_, p: Problems) -> Any:
    from .ownership import parse_severity

    try:
        return parse_severity(value).value
    except ValueError as exc:
        p.add(path, str(exc))
        return INVALID


_PARSERS: dict[str, Callable[[Any, Path_, Problems], Any]] = {
    "name": _name,
    "method": _method,
    "path": _path,
    "url": _url,
    "params": _params,
    "headers": _headers,
    "json": _json_value,
    "form": _form,
    "body": _string,
    "auth": _auth,
    "expect": _expect,
    "timeout": _positive("seconds", 86_400),
    "tags": _tags,
    "skip": _skip,
    "description": _string,
    "owner": _owner,
    "severity": _severity,
}


def parse_fields(
    raw: Mapping[Any, Any],
    prefix: Path_,
    p: Problems,
    allowed: tuple[str, ...],
    *,
    also_known: tuple[str, ...] = (),
    parsers: Mapping[str, Callable[[Any, Path_, Problems], Any]] = _PARSERS,
) -> dict[str, Any]:
    """Validate each known key; unknown keys get a 'did you mean'. Returns only the valid values."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in allowed:
            p.add(prefix + (str(key),), unknown_key(key, allowed + also_known))
            continue
        parsed = parsers[key](value, prefix + (key,), p)
        if parsed is not INVALID:
            out[key] = parsed
    return out
