"""config.yaml: the validated configuration model, with ${VAR} / ${VAR:-default} substitution.

Every problem raises one ConfigError naming the file, line and field path; the first error wins so
the user fixes one thing at a time with a precise pointer instead of a wall of follow-on errors.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from .loader import MissingVariable, Parsed, ParseError, Path_, did_you_mean, format_path, parse, substitute_env

if TYPE_CHECKING:
    from .notify.settings import NotifySettings


class ConfigError(Exception):
    """A bad config: message names the file, line when known, the field path and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, field: str = "") -> None:
        self.file, self.line, self.field, self.message = file, line, field, message
        where = (file or "config") + (f":{line}" if line else "")
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


@dataclass(frozen=True)
class LoginAuth:
    """Login request that returns a token (issue 2 scope: the 'login' kind)."""

    method: str = "POST"
    path: str | None = None  # joined to the service base URL
    url: str | None = None
    json: Any = None
    form: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    token_path: str = "token"  # JSON path in the login response, e.g. data.token
    token_header: str | None = None  # alternatively: take the token from this response header
    header: str = "Authorization"  # how the token is sent
    scheme: str = "Bearer"  # "" sends the bare token
    query_param: str | None = None  # send as ?param=token instead of a header


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    base_url: str | None  # for the selected environment; None if not configured
    headers: dict[str, str] = field(default_factory=dict)
    verify_tls: bool = True
    timeout: float | None = None
    auth: LoginAuth | None = None


@dataclass(frozen=True)
class Defaults:
    timeout: float = 10.0  # seconds, whole request deadline
    connect_timeout: float = 5.0
    interval: float = 900.0  # seconds between scheduled runs (15 min)
    retries: int = 3
    retry_delay: float = 1.0  # first backoff; then x backoff_factor: 1 s, 2 s, 4 s
    backoff_factor: float = 2.0
    max_body_bytes: int = 1024 * 1024
    max_redirects: int = 5
    verify_tls: bool = True


@dataclass(frozen=True)
class LoggingConfig:
    file: str | None = ".apimon/apimon.log"  # relative to the config file's folder; None disables
    max_bytes: int = 1024 * 1024
    backups: int = 5
    level: str = "INFO"


@dataclass(frozen=True)
class ReportConfig:
    language: str = "zh"  # zh | en
    title: str | None = None
    markdown: str | None = None  # default path for the Markdown report (relative to config dir)
    json: str | None = None


@dataclass(frozen=True)
class Config:
    path: str | None  # the file it came from (None: built-in defaults)
    env: str  # selected environment name
    defaults: Defaults = field(default_factory=Defaults)
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    secrets: tuple[str, ...] = ()  # secret-looking auth values and credential headers; masked in outputs
    notify: NotifySettings = field(default_factory=lambda: _notify_settings()())
    state_dir: str = ".apimon"  # run state (outbox, last run); relative to the config file's folder

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent if self.path else Path.cwd()

    @property
    def state_path(self) -> Path:
        return self.base_dir / self.state_dir

    def service(self, name: str) -> ServiceConfig:
        """The service's config, or an empty one (no base URL) when it is not configured."""
        return self.services.get(name) or ServiceConfig(name=name, base_url=None)


DEFAULT_ENV = "default"
LANGUAGES = ("zh", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
AUTH_TYPES_LATER = ("static", "oauth2", "basic")

_TOP_KEYS = ("env", "defaults", "services", "logging", "report", "notify", "state_dir")


def _notify_settings() -> type[NotifySettings]:
    # notify.settings imports ConfigError from here: import lazily to avoid a cycle.
    from .notify.settings import NotifySettings

    return NotifySettings
_SERVICE_KEYS = ("base_url", "headers", "verify_tls", "timeout", "auth")
_AUTH_KEYS = ("type",) + tuple(LoginAuth.__dataclass_fields__)
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

SECRET_KEY_WORDS = ("password", "passwd", "pwd", "secret", "token", "key", "credential")
SECRET_HEADER_NAMES = ("authorization", "cookie", "x-api-key")
SECRET_HEADER_WORDS = ("token", "secret")

# ---------------------------------------------------------------- durations and sizes

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?", re.I)
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?", re.I)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _describe(value: Any) -> str:
    """How a wrong value is shown in an error: YAML spelling, not Python's."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, Mapping | list):
        return "a mapping" if isinstance(value, Mapping) else "a list"
    return repr(value) if isinstance(value, str) else str(value)


def _number(value: Any) -> float | None:
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
    number = _number(value)
    if number is None and isinstance(value, str) and value.strip():
        m = _DURATION.fullmatch(value.strip())
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            number = h * 3600 + mi * 60 + s
    if number is None:
        raise ValueError(f"expected a number of seconds, got {_describe(value)} (durations like '30s', '15m', "
                         "'1h30m' also work)")
    if number < 0:
        raise ValueError(f"expected a duration >= 0, got {_describe(value)}")
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
                         f"got {_describe(value)}")
    if number < 0:
        raise ValueError(f"expected a size >= 0, got {_describe(value)}")
    return int(number)


def _looks_secret_key(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_KEY_WORDS)


def _looks_secret_header(name: str) -> bool:
    low = name.lower()
    return low in SECRET_HEADER_NAMES or any(word in low for word in SECRET_HEADER_WORDS)


class _Reader:
    """Walks the parsed YAML, substituting ${VAR} in string values and converting each field."""

    def __init__(self, parsed: Parsed, file: str | None, environ: Mapping[str, str]) -> None:
        self.parsed, self.file, self.environ = parsed, file, environ
        self.secrets: list[str] = []

    def fail(self, path: Path_, message: str) -> NoReturn:
        raise ConfigError(message, file=self.file, line=self.parsed.line(path), field=format_path(path))

    def sub(self, value: Any, path: Path_) -> Any:
        """Substitute ${VAR} in every string inside value (keys excluded)."""
        if isinstance(value, str):
            try:
                return substitute_env(value, self.environ)
            except MissingVariable as exc:
                self.fail(path, str(exc))
        if isinstance(value, Mapping):
            return {k: self.sub(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.sub(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def mapping(self, value: Any, path: Path_, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A section (null = empty) with string keys, rejecting unknown keys with a did-you-mean."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {_describe(value)}")
        for key in value:
            if not isinstance(key, str):
                self.fail(path, f"keys must be strings, got {_describe(key)}")
            if allowed is not None and key not in allowed:
                self.fail(path + (key,), f"unknown key '{key}'{did_you_mean(key, allowed)}; "
                                         f"allowed: {', '.join(allowed)}")
        return dict(value)

    def get(self, section: dict[str, Any], path: Path_, key: str, convert: Any, default: Any) -> Any:
        """section[key] substituted and converted, or default when absent; conversion errors name the field."""
        if key not in section:
            return default
        value = self.sub(section[key], path + (key,))
        try:
            return convert(value)
        except ValueError as exc:
            self.fail(path + (key,), str(exc))

    def url(self, value: Any, path: Path_) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected an absolute http(s) URL, got {_describe(value)}")
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            self.fail(path, f"expected an absolute http(s) URL with a host, got {url!r}")
        if parts.password:
            self.secrets.append(parts.password)
        return url.rstrip("/")

    # ---- sections

    def section(self, raw: Any, name: str, fields: dict[str, Any], cls: Any) -> Any:
        """A flat section: every field is one converter applied to its substituted value."""
        sec, d = self.mapping(raw, (name,), tuple(fields)), cls()
        return cls(**{k: self.get(sec, (name,), k, conv, getattr(d, k)) for k, conv in fields.items()})

    def base_url(self, raw: Any, path: Path_, service: str, env: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            return self.url(self.sub(raw, path), path)
        urls = self.mapping(raw, path)
        chosen = env if env in urls else DEFAULT_ENV if DEFAULT_ENV in urls else None
        if chosen is None:
            self.fail(path, f"service '{service}' has no base_url for environment '{env}' "
                            f"(it has: {', '.join(urls) or 'none'}); add '{env}:' or a 'default:' fallback")
        for name, value in urls.items():
            if name == chosen:
                continue
            # Other environments are checked for typos, but a ${VAR} only they need must not block this run.
            try:
                other = substitute_env(value, self.environ) if isinstance(value, str) else value
            except MissingVariable:
                continue
            self.url(other, path + (name,))
        return self.url(self.sub(urls[chosen], path + (chosen,)), path + (chosen,))

    def headers(self, raw: Any, path: Path_) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.mapping(self.sub(raw, path), path).items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.fail(path + (name,), f"expected a string or number header value, got {_describe(value)}")
            out[name] = str(value)
            if out[name] and _looks_secret_header(name):
                # Also the credential alone ("Bearer abc" -> "abc"): it may show up without its scheme.
                self.secrets += [out[name], *out[name].split(None, 1)[1:]]
        return out

    def collect_auth_secrets(self, value: Any, secret: bool = False) -> None:
        """Strings under a secret-looking key, at any depth of a login body."""
        if isinstance(value, Mapping):
            for k, v in value.items():
                self.collect_auth_secrets(v, secret or (isinstance(k, str) and _looks_secret_key(k)))
        elif isinstance(value, list):
            for v in value:
                self.collect_auth_secrets(v, secret)
        elif secret and isinstance(value, str) and value:
            self.secrets.append(value)

    def auth(self, raw: Any, path: Path_, base_url: str | None) -> LoginAuth | None:
        if raw is None:
            return None
        sec = self.mapping(raw, path)
        kind = self.get(sec, path, "type", _string, None)
        if kind is None:
            self.fail(path, "missing 'type' (supported: login)")
        if kind in AUTH_TYPES_LATER:
            self.fail(path + ("type",), f"auth type '{kind}' is not supported yet (supported: login)")
        if kind != "login":
            self.fail(path + ("type",), f"unknown auth type '{kind}'{did_you_mean(kind, ('login',))} "
                                        "(supported: login)")
        self.mapping(sec, path, _AUTH_KEYS)
        for a, b in (("path", "url"), ("json", "form"), ("token_path", "token_header")):
            if sec.get(a) is not None and sec.get(b) is not None:
                self.fail(path + (b,), f"use either '{a}' or '{b}', not both")
        d = LoginAuth()
        login_path = self.get(sec, path, "path", _opt(_string), None)
        url = self.url(self.sub(sec["url"], path + ("url",)), path + ("url",)) if sec.get("url") is not None else None
        if login_path is None and url is None:
            self.fail(path, "login needs 'path' (joined to base_url) or an absolute 'url'")
        if login_path is not None and base_url is None:
            self.fail(path + ("path",), "'path' needs the service's base_url; set base_url or use an absolute 'url'")
        body = self.sub(sec.get("json"), path + ("json",))
        raw_form = self.sub(sec.get("form"), path + ("form",))
        form = None if raw_form is None else self.mapping(raw_form, path + ("form",))
        headers = self.headers(sec.get("headers"), path + ("headers",))
        # The login body is sent, never shown: everything under a secret-looking key is masked later.
        self.collect_auth_secrets(body)
        self.collect_auth_secrets(form)
        self.collect_auth_secrets({k: v for k, v in headers.items() if _looks_secret_key(k)})
        return LoginAuth(
            method=self.get(sec, path, "method", _choice(_HTTP_METHODS, str.upper, "an HTTP method"), d.method),
            path=login_path,
            url=url,
            json=body,
            form=form,
            headers=headers,
            token_path=self.get(sec, path, "token_path", _nonempty, d.token_path),
            token_header=self.get(sec, path, "token_header", _opt(_nonempty), None),
            header=self.get(sec, path, "header", _nonempty, d.header),
            scheme=self.get(sec, path, "scheme", _opt(_string), d.scheme) or "",  # null, "": bare token
            query_param=self.get(sec, path, "query_param", _opt(_nonempty), None),
        )

    def services(self, raw: Any, env: str, defaults: Defaults) -> dict[str, ServiceConfig]:
        out: dict[str, ServiceConfig] = {}
        for name, value in self.mapping(raw, ("services",)).items():
            path: Path_ = ("services", name)
            sec = self.mapping(value, path, _SERVICE_KEYS)
            base_url = self.base_url(sec.get("base_url"), path + ("base_url",), name, env)
            out[name] = ServiceConfig(
                name=name,
                base_url=base_url,
                headers=self.headers(sec.get("headers"), path + ("headers",)),
                verify_tls=self.get(sec, path, "verify_tls", _bool, defaults.verify_tls),
                timeout=self.get(sec, path, "timeout", _opt(_positive(parse_duration)), None),
                auth=self.auth(sec.get("auth"), path + ("auth",), base_url),
            )
        return out

# ---------------------------------------------------------------- converters (raise ValueError)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    return value


def _nonempty(value: Any) -> str:
    if not _string(value).strip():
        raise ValueError("expected a non-empty string")
    return value


def _opt(convert: Any) -> Any:
    return lambda value: None if value is None else convert(value)


def _positive(convert: Any) -> Any:
    def check(value: Any) -> Any:
        result = convert(value)
        if result <= 0:
            raise ValueError(f"expected a value > 0, got {_describe(value)}")
        return result

    return check


def _count(value: Any) -> int:
    number = _number(value)
    if number is None or number != int(number) or number < 0:
        raise ValueError(f"expected a whole number >= 0, got {_describe(value)}")
    return int(number)


def _factor(value: Any) -> float:
    number = _number(value)
    if number is None or number <= 0:
        raise ValueError(f"expected a number > 0, got {_describe(value)}")
    return number


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:  # "${VERIFY:-true}" arrives as text
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {_describe(value)}")


def _choice(choices: tuple[str, ...], normalize: Any, what: str) -> Any:
    def check(value: Any) -> str:
        text = normalize(_string(value).strip())
        if text not in choices:
            raise ValueError(f"expected {what} ({', '.join(choices)}), got {text!r}{did_you_mean(text, choices)}")
        return text

    return check


def _dedupe(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


_DEFAULTS: dict[str, Any] = {  # field -> converter; the keys are also the allowed keys
    "timeout": _positive(parse_duration),
    "connect_timeout": _positive(parse_duration),
    "interval": _positive(parse_duration),
    "retries": _count,
    "retry_delay": parse_duration,  # 0 = retry at once
    "backoff_factor": _factor,
    "max_body_bytes": _positive(parse_size),
    "max_redirects": _count,
    "verify_tls": _bool,
}
_LOGGING: dict[str, Any] = {
    "file": _opt(_nonempty),  # null disables the file
    "max_bytes": _positive(parse_size),
    "backups": _count,
    "level": _choice(LOG_LEVELS, str.upper, "a logging level"),
}
_REPORT: dict[str, Any] = {
    "language": _choice(LANGUAGES, str.lower, "a report language"),
    "title": _opt(_string),
    "markdown": _opt(_nonempty),
    "json": _opt(_nonempty),
}


def load_config(path: Path | None, env: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load, substitute and validate. path None -> built-in defaults; a missing file is an error. Raises ConfigError.

    env (from --apimon-env) overrides the file's `env:`; environ defaults to os.environ.
    """
    if path is None:
        return Config(path=None, env=env or DEFAULT_ENV)
    path = Path(path).absolute()  # base_dir must not depend on a later chdir
    file = str(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" if not path.exists() else f"not a file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=file) from None
    try:
        parsed = parse(text, path.suffix)
    except ParseError as exc:
        raise ConfigError(exc.message, file=file, line=exc.line) from None

    reader = _Reader(parsed, file, os.environ if environ is None else environ)
    top = reader.mapping(parsed.data, (), _TOP_KEYS)
    file_env = reader.get(top, (), "env", _opt(_nonempty), None)
    selected = env or file_env or DEFAULT_ENV
    defaults = reader.section(top.get("defaults"), "defaults", _DEFAULTS, Defaults)
    services = reader.services(top.get("services"), selected, defaults)
    from .notify.settings import parse_notify

    notify = parse_notify(top.get("notify"), file=file, environ=reader.environ, line_of=parsed.line)
    state_dir = reader.get(top, (), "state_dir", _opt(_nonempty), None) or ".apimon"
    return Config(
        path=file,
        env=selected,
        defaults=defaults,
        services=services,
        logging=reader.section(top.get("logging"), "logging", _LOGGING, LoggingConfig),
        report=reader.section(top.get("report"), "report", _REPORT, ReportConfig),
        secrets=_dedupe([*reader.secrets, *notify.secrets]),
        notify=notify,
        state_dir=state_dir,
    )
