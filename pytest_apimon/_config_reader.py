"""The generic half of config loading: ConfigError, value converters and the YAML walker.

Kept apart from config.py so the models and section layout stay readable; config.py re-exports
ConfigError, parse_duration and parse_size, which other modules import from there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

from ._document_fields import header_problem, url_problem
from .errors import ApimonError
from .loader import MissingVariable, Parsed, Path_, did_you_mean, format_path, substitute_env, substituted_values
from .redact import (
    MIN_SECRET_LEN,
    cookie_values,
    is_credential_header,
    is_secret_name,
    is_secret_value,
    looks_like_credential,
    looks_like_key,
    secret_values,
)


class ConfigError(ApimonError):
    """A bad config: message names the file, line when known, the field path and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str = "") -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = (file or "config") + (f":{line}" if line else "")
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


# ---------------------------------------------------------------- durations and sizes

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?", re.I)
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?", re.I)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def describe(value: Any) -> str:
    """How a wrong value is shown in an error: YAML spelling, not Python's."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, Mapping | list):
        return "a mapping" if isinstance(value, Mapping) else "a list"
    return repr(value) if isinstance(value, str) else str(value)


def finite_number(value: Any) -> float | None:
    """A finite int/float, or a string holding one (values substituted from ${VAR} arrive as strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):  # `timeout: yes` is a mistake, not 1
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like '30s', '15m', '1h', '1h30m'. Raises ValueError."""
    number = finite_number(value)
    if number is None and isinstance(value, str) and value.strip():
        m = _DURATION.fullmatch(value.strip())
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            number = h * 3600 + mi * 60 + s
    if number is None:
        raise ValueError(f"expected a number of seconds, got {describe(value)} (durations like '30s', '15m', "
                         "'1h30m' also work)")
    if number < 0:
        raise ValueError(f"expected a duration >= 0, got {describe(value)}")
    return number


def parse_size(value: Any) -> int:
    """Bytes from an int or a string like '1MiB', '512KiB', '2MB' (KB/MB/GB = 1000^n, KiB/MiB/GiB = 1024^n)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m:
            number = float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]
    if number is None or (number != int(number) and not isinstance(value, str)):
        raise ValueError(f"expected a size in bytes (a whole number, or '512KiB', '1MiB', '2MB'), "
                         f"got {describe(value)}")
    if number < 0:
        raise ValueError(f"expected a size >= 0, got {describe(value)}")
    return int(number)


# ---------------------------------------------------------------- converters (raise ValueError)


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {describe(value)}")
    return value


def nonempty(value: Any) -> str:
    if not string(value).strip():
        raise ValueError("expected a non-empty string")
    return value


def string_or_number(value: Any) -> str:
    """A string, or a number written without quotes (a client id of digits is still an id)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return string(value)


def opt(convert: Any) -> Any:
    """`convert`, but null is a value of its own (None: "off", e.g. `logging.file: null`), not "not set"."""

    def convert_or_none(value: Any) -> Any:
        return None if value is None else convert(value)

    convert_or_none.nullable = True  # type: ignore[attr-defined]  # read by SectionReader.value
    return convert_or_none


def positive(convert: Any) -> Any:
    def check(value: Any) -> Any:
        result = convert(value)
        if result <= 0:
            raise ValueError(f"expected a value > 0, got {describe(value)}")
        return result

    return check


def count(value: Any) -> int:
    number = finite_number(value)
    if number is None or number != int(number) or number < 0:
        raise ValueError(f"expected a whole number >= 0, got {describe(value)}")
    return int(number)


def at_least(minimum: int) -> Callable[[Any], int]:
    """A whole number >= minimum ("3" and 3.0 too: values from ${VAR} arrive as text)."""

    def convert(value: Any) -> int:
        number = finite_number(value)
        if number is None or number != int(number):
            raise ValueError(f"expected a whole number >= {minimum}, got {describe(value)}")
        if number < minimum:
            raise ValueError(f"expected a whole number >= {minimum}, got {int(number)}")
        return int(number)

    return convert


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration > 0 like 2h or 30m, got {describe(value)}")
    return seconds


def at_most(limit: float, convert: Any, unit: str = "") -> Any:
    """convert(value), refused above `limit`: a huge timeout or backoff overflows the platform's timers
    (OverflowError in a worker thread, i.e. a hung run), so it is an impossible value."""

    def check(value: Any) -> Any:
        result = convert(value)
        if result is not None and result > limit:
            raise ValueError(f"expected at most {limit:g}{unit}, got {describe(value)}")
        return result

    return check


def factor(value: Any) -> float:
    number = finite_number(value)
    if number is None or number <= 0:
        raise ValueError(f"expected a number > 0, got {describe(value)}")
    return number


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:  # "${VERIFY:-true}" arrives as text
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {describe(value)}")


def body_path(value: Any) -> str:
    """A body path (token_path, expires_in_path), in the grammar of bodypath.py."""
    from . import bodypath

    text = nonempty(value).strip()
    try:
        bodypath.parse(text)
    except bodypath.BodyPathError as exc:
        raise ValueError(f"malformed path {text!r}: {exc}; expected e.g. data.token or data[\"access.token\"]") \
            from None
    return text


def choice(choices: tuple[str, ...], normalize: Any, what: str) -> Any:
    def check(value: Any) -> str:
        text = normalize(string(value).strip())
        if text not in choices:
            raise ValueError(f"expected {what} ({', '.join(choices)}), got {text!r}{did_you_mean(text, choices)}")
        return text

    return check


def dedupe(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


# ---------------------------------------------------------------- the walker


class SectionReader:
    """What every config section parser needs (config.yaml, notify:, alerts:): fail with the field path and
    line, ${VAR} substitution, and mappings that reject unknown keys with a did-you-mean."""

    def __init__(self, file: str | None, environ: Mapping[str, str],
                 line_of: Callable[[Path_], int | None] | None = None) -> None:
        self.file, self.environ = file, environ
        self.line_of = line_of or (lambda _path: None)
        # Substituted text -> the ${VAR} as written: an error message shows what the author wrote, never a
        # variable's value (`timeout: "${DB_PASSWORD}"` must not print the password), like documents do.
        self.substituted: dict[str, str] = {}
        self.secrets: list[str] = []  # values to mask wherever they show up (see Reader.collect_secrets)

    def fail(self, path: Path_, message: str) -> NoReturn:
        raise ConfigError(self.as_written(message), file=self.file, line=self.line_of(path), field=format_path(path))

    def as_written(self, message: str) -> str:
        """message with every substituted value (also upper/lower-cased, or cut to describe()'s 37 characters)
        replaced by the ${VAR} it came from."""
        for value in sorted(self.substituted, key=len, reverse=True):
            raw = self.substituted[value]
            # Validators may change the case or quote the value with repr() ('a\\b' for a\b, escaped non-ASCII).
            for variant in {value, value.upper(), value.lower(), repr(value)[1:-1], ascii(value)[1:-1]}:
                message = message.replace(variant, raw)
                if len(variant) > 40:
                    message = message.replace(variant[:37], raw)
        return message

    def substitute(self, text: str) -> str:
        """substitute_env(text) that remembers each substituted value for as_written(); MissingVariable."""
        result = substitute_env(text, self.environ)
        if result != text:
            self.remember(text, result)
        return result

    def remember(self, text: str, result: str) -> None:
        found = substituted_values(text, self.environ)
        if result.strip() and len(result) >= MIN_SECRET_LEN:
            found.setdefault(result, text)
        for value, raw in found.items():
            if len(value.strip()) >= MIN_SECRET_LEN:  # "1" or "on" would rewrite every digit of a message
                self.substituted.setdefault(value, raw)
            if looks_like_key(value):  # any ${VAR} that reads like a key is masked by value (docs/auth.md)
                self.secrets.append(value)

    def sub(self, value: Any, path: Path_) -> Any:
        """Substitute ${VAR} in every string inside value (keys excluded)."""
        if isinstance(value, str):
            try:
                return self.substitute(value)
            except MissingVariable as exc:
                self.fail(path, str(exc))
        if isinstance(value, Mapping):
            return {k: self.sub(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sub(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def value(self, section: Mapping[str, Any], path: Path_, key: str, convert: Callable[[Any], Any],
              default: Any) -> Any:
        """The one rule for a field, in every section: absent or null (YAML's "not set") gives `default`,
        unless the converter is `opt(...)`, for which null means None ("off"). Otherwise ${VAR} is
        substituted at any depth and `convert` applied; its ValueError/TypeError becomes a ConfigError naming
        the file, line and field path."""
        if key not in section or (section[key] is None and not getattr(convert, "nullable", False)):
            return default
        value = self.sub(section[key], path + (key,))
        try:
            return convert(value)
        except (TypeError, ValueError) as exc:
            self.fail(path + (key,), str(exc))

    def mapping(self, value: Any, path: Path_, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A section (null = empty) with string keys, rejecting unknown keys with a did-you-mean."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {describe(value)}")
        for key in value:
            if not isinstance(key, str):
                self.fail(path, f"keys must be strings, got {describe(key)}")
            if allowed is not None and key not in allowed:
                self.fail(path + (key,), f"unknown key '{key}'{did_you_mean(key, allowed)}; "
                                         f"allowed: {', '.join(allowed)}")
        return dict(value)


class Reader(SectionReader):
    """Walks the parsed YAML, substituting ${VAR} in string values and converting each field."""

    def __init__(self, parsed: Parsed, file: str | None, environ: Mapping[str, str]) -> None:
        super().__init__(file, environ, parsed.line)
        self.parsed = parsed

    get = SectionReader.value  # the name config.py uses

    def exclusive(self, section: dict[str, Any], path: Path_, *keys: str) -> None:
        """At most one of keys may be set (null counts as unset)."""
        present = [k for k in keys if section.get(k) is not None]
        if len(present) > 1:
            either = f"either '{present[0]}' or '{present[1]}'" if len(keys) == 2 else \
                f"only one of {', '.join(repr(k) for k in keys)}"
            self.fail(path + (present[1],), f"use {either}, not both")

    def url(self, value: Any, path: Path_, *, base: bool = False) -> str:
        """An absolute http(s) URL (bad IPv6 literal, port outside 1-65535 rejected); `base`: a base URL,
        which paths are appended to, so it has no query string or fragment."""
        if not isinstance(value, str):
            self.fail(path, f"expected an absolute http(s) URL, got {describe(value)}")
        url = value.strip()
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not host:
            self.fail(path, f"expected an absolute http(s) URL with a host, got {url!r}"
                            + (f": {url_problem(url)}" if url_problem(url) else ""))
        problem = url_problem(url)
        if problem:
            self.fail(path, f"malformed URL {url!r}: {problem}")
        if base and (parts.query or parts.fragment or url.endswith(("?", "#"))):
            self.fail(path, f"a base URL cannot have a query string or fragment, got {url!r} "
                            "(paths are appended to it; put query parameters in each interface's params)")
        if parts.password:
            self.secrets.append(parts.password)
        # `?access_token=…` in a configured URL is a credential too.
        self.secrets += secret_values(dict(parse_qsl(parts.query, keep_blank_values=True)))
        return url.rstrip("/")

    def headers(self, raw: Any, path: Path_) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.mapping(self.sub(raw, path), path).items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.fail(path + (name,), f"expected a string or number header value, got {describe(value)}")
            out[name] = str(value)
            problem = header_problem(name, out[name])
            if problem:
                self.fail(path + (name,), problem)
            # The rule that also binds it to the service's origins (redact.is_credential_header): a secret name,
            # a key under a harmless name (`X-Partner: k-93jd82hd`), a scheme and credential (`X-Gw: Token …`).
            if is_credential_header(name, out[name]):
                # Also the credential alone ("Bearer abc" -> "abc"): it may show up without its scheme.
                self.secrets += [out[name], *out[name].split(None, 1)[1:]]
                if "cookie" in name.lower():
                    self.secrets += cookie_values(out[name])
        return out

    def collect_secrets(self, value: Any, secret: bool = False) -> None:
        """Strings under a secret-looking key, at any depth of a request body."""
        if isinstance(value, Mapping):
            for k, v in value.items():
                self.collect_secrets(v, secret or (isinstance(k, str) and is_secret_name(k)))
        elif isinstance(value, list):
            for v in value:
                self.collect_secrets(v, secret)
        elif (secret and isinstance(value, str | int) and is_secret_value(value)) or looks_like_credential(value):
            self.secrets.append(str(value))

    def section(self, raw: Any, name: str, fields: dict[str, Any], cls: Any) -> Any:
        """A flat section: every field is one converter applied to its substituted value."""
        sec, d = self.mapping(raw, (name,), tuple(fields)), cls()
        return cls(**{k: self.get(sec, (name,), k, conv, getattr(d, k)) for k, conv in fields.items()})
