"""config.yaml: the validated configuration model, with ${VAR} / ${VAR:-default} substitution.

Every problem raises one ConfigError naming the file, line and field path; the first error wins so
the user fixes one thing at a time with a precise pointer instead of a wall of follow-on errors.
Converters and the generic YAML walker live in _config_reader.py.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from . import _config_reader as c
from ._config_reader import ConfigError, parse_duration, parse_size
from .loader import (
    DEFAULT_LIMITS,
    Limits,
    MissingVariable,
    Parsed,
    ParseError,
    Path_,
    did_you_mean,
    parse,
    read_limited,
)
from .origins import origin_of

if TYPE_CHECKING:
    from .maintenance import MaintenanceSettings
    from .notify.settings import NotifySettings
    from .policy_settings import PolicySettings, StateSettings

__all__ = ["AuthConfig", "BasicAuth", "Config", "ConfigError", "LoginAuth", "OAuth2Auth", "ServiceConfig",
           "StaticAuth", "load_config", "parse_duration", "parse_size"]

DEFAULT_REFRESH_BEFORE = 300.0  # seconds: refresh a token this long before it expires


@dataclass(frozen=True)
class LoginAuth:
    """A login request whose response carries the token."""

    kind: ClassVar[str] = "login"
    method: str = "POST"
    path: str | None = None  # joined to the service base URL
    url: str | None = None
    json: Any = field(default=None, repr=False)  # holds the password: never in a repr or a traceback
    form: dict[str, Any] | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    token_path: str = "token"  # JSON path in the login response, e.g. data.token
    token_header: str | None = None  # alternatively: take the token from this response header
    # Lifetime, at most one of these; none set: the token's sibling `expires_in`, else a JWT's `exp`, else unknown.
    expires_in_path: str | None = None  # JSON path of the lifetime in seconds, e.g. data.expires_in
    expiry: str | None = None  # "jwt": the token is a JWT, its `exp` claim is the expiry
    ttl: float | None = None  # seconds, for servers that do not say
    header: str = "Authorization"  # how the token is sent
    scheme: str = "Bearer"  # "" sends the bare token
    query_param: str | None = None  # send as ?param=token instead of a header
    refresh_before: float = DEFAULT_REFRESH_BEFORE


@dataclass(frozen=True)
class StaticAuth:
    """A fixed token, normally from the environment (`token: ${NURSE_TOKEN}`)."""

    kind: ClassVar[str] = "static"
    token: str = field(default="", repr=False)
    header: str = "Authorization"
    scheme: str = "Bearer"
    query_param: str | None = None


@dataclass(frozen=True)
class OAuth2Auth:
    """OAuth2 client credentials grant (RFC 6749 §4.4); the access token is sent as a Bearer token."""

    kind: ClassVar[str] = "oauth2"
    header: ClassVar[str] = "Authorization"
    scheme: ClassVar[str] = "Bearer"
    query_param: ClassVar[str | None] = None
    token_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str | None = None  # space-separated (a YAML list is joined)
    audience: str | None = None
    extra_params: dict[str, str] = field(default_factory=dict, repr=False)  # more form fields of the token request
    client_auth: str = "body"  # body: client_id/secret as form fields; basic: HTTP Basic header
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    ttl: float | None = None  # used when the response has no expires_in
    refresh_before: float = DEFAULT_REFRESH_BEFORE


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic auth: no login request, every call carries `Authorization: Basic …`."""

    kind: ClassVar[str] = "basic"
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def credentials(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


AuthConfig = LoginAuth | StaticAuth | OAuth2Auth | BasicAuth
AUTH_KINDS: dict[str, type[Any]] = {cls.kind: cls for cls in (LoginAuth, StaticAuth, OAuth2Auth, BasicAuth)}


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    base_url: str | None = field(repr=False)  # for the selected environment (may hold userinfo); None if not set
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    verify_tls: bool = True
    timeout: float | None = None
    auth: AuthConfig | None = None
    # Further origins ("https://sso.example.com:443") the service's credentials may go to, besides base_url's.
    trusted_origins: tuple[str, ...] = ()

    @property
    def origins(self) -> tuple[str, ...]:
        """Every origin the service's credentials may be sent to: base_url's, then trusted_origins."""
        own = origin_of(self.base_url)
        return (own, *self.trusted_origins) if own else self.trusted_origins
    owner: tuple[str, ...] = ()  # userids / mobiles of the people who answer for this service
    severity: str | None = None  # P0 | P1 | P2 for its interfaces (documents may override)
    # TLS: CA certificates to verify its origins with (absolute path, from a path relative to the config file);
    # certificate expiry thresholds in days (certs.py): fewer left than warn is a warning, than fail a failure.
    ca_bundle: str | None = None
    cert_warn_days: float = 14.0
    cert_fail_days: float = 3.0


@dataclass(frozen=True)
class Defaults:
    timeout: float = 10.0  # seconds, whole request deadline
    connect_timeout: float = 5.0
    interval: float = 900.0  # seconds between scheduled runs (15 min)
    retries: int = 3
    retry_delay: float = 1.0  # first backoff; then x backoff_factor: 1 s, 2 s, 4 s
    backoff_factor: float = 2.0
    max_retry_after: float = 30.0  # longest wait honoured for one Retry-After (429/503…); longer ones are capped
    max_body_bytes: int = 1024 * 1024
    max_redirects: int = 5
    verify_tls: bool = True
    concurrency: int = 32  # requests in flight at once (single-process runs); see bench/ and README
    max_per_host: int = 32  # cap per host, so one slow service cannot take every slot
    cert_warn_days: float = 14.0  # certificate expiry warning below this many days left (certs.py)
    cert_fail_days: float = 3.0  # and failure below this many (an interface's expect.cert_days overrides)


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
    html: str | None = None  # static status page written after each run
    prometheus: str | None = None  # node_exporter textfile-collector file
    status_page_url: str | None = None  # where the page is served; linked from the WeCom report
    publish: bool = False  # reports and the log readable by others (0644) instead of private (0600)
    timezone: str | None = None  # IANA name or +08:00 for times in messages; None: the machine's zone


def _no_maintenance() -> MaintenanceSettings:
    from .maintenance import MaintenanceSettings  # imports ConfigError from _config_reader

    return MaintenanceSettings()


@dataclass(frozen=True)
class Config:
    path: str | None  # the file it came from (None: built-in defaults)
    env: str  # selected environment name
    defaults: Defaults = field(default_factory=Defaults)
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    # Secret-looking auth values and credential headers; masked in outputs, never shown in a repr.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    notify: NotifySettings = field(default_factory=lambda: _notify_settings()())
    state_dir: str = ".apimon"  # run state (history db, tokens, outbox); relative to the config file's folder
    policy: PolicySettings = field(default_factory=lambda: _policy_settings()[0]())
    state: StateSettings = field(default_factory=lambda: _policy_settings()[1]())
    limits: Limits = DEFAULT_LIMITS  # parse limits for documents, specs and sidecars (`limits:`)
    # Maintenance windows (`maintenance:` and services.<name>.maintenance): alerts held, checks still run.
    maintenance: MaintenanceSettings = field(default_factory=_no_maintenance)

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent if self.path else Path.cwd()

    @property
    def state_path(self) -> Path:
        return self.base_dir / self.state_dir

    def cert_days(self, service: str) -> tuple[float, float]:
        """(cert_warn_days, cert_fail_days) of a service: its own, else the global ones (`defaults:`)."""
        svc = self.services.get(service)
        if svc is None:
            return self.defaults.cert_warn_days, self.defaults.cert_fail_days
        return svc.cert_warn_days, svc.cert_fail_days

    def service(self, name: str) -> ServiceConfig:
        """The service's config, or an empty one (no base URL) when it is not configured."""
        return self.services.get(name) or ServiceConfig(name=name, base_url=None)


DEFAULT_ENV = "default"
LANGUAGES = ("zh", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_TOP_KEYS = ("env", "defaults", "services", "logging", "report", "notify", "alerts", "breaker", "state", "limits",
             "maintenance")
_SERVICE_KEYS = ("base_url", "headers", "verify_tls", "timeout", "auth", "alerts", "trusted_origins", "owner",
                 "severity", "maintenance", "ca_bundle", "cert_warn_days", "cert_fail_days")


def _policy_settings() -> tuple[type[PolicySettings], type[StateSettings]]:
    from .policy_settings import PolicySettings, StateSettings  # imports ConfigError from here

    return PolicySettings, StateSettings
_AUTH_KEYS = {kind: ("type", *(f.name for f in fields(cls))) for kind, cls in AUTH_KINDS.items()}
_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_EXPIRY = ("jwt",)
_CLIENT_AUTH = ("body", "basic")


def _notify_settings() -> type[NotifySettings]:
    # notify.settings imports ConfigError from here: import lazily to avoid a cycle.
    from .notify.settings import NotifySettings

    return NotifySettings


def _scope(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return c.string(value)


_TTL = c.opt(c.positive(c.parse_duration))


def _credential(value: Any) -> str:
    """Non-empty; digits written without quotes are still an id or a password."""
    return c.nonempty(c.string_or_number(value))


class _ConfigReader(c.Reader):
    """Service sections: base URLs per environment and the auth kinds."""

    def base_url(self, raw: Any, path: Path_, service: str, env: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            return self.url(self.sub(raw, path), path, base=True)
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
                other = self.substitute(value) if isinstance(value, str) else value
            except MissingVariable:
                continue
            self.url(other, path + (name,), base=True)
        return self.url(self.sub(urls[chosen], path + (chosen,)), path + (chosen,), base=True)

    def auth(self, raw: Any, path: Path_, base_url: str | None) -> AuthConfig | None:
        if raw is None:
            return None
        sec = self.mapping(raw, path)
        kinds = tuple(AUTH_KINDS)
        kind = self.get(sec, path, "type", c.string, None)
        if kind is None:
            self.fail(path, f"missing 'type' (one of: {', '.join(kinds)})")
        if kind not in AUTH_KINDS:
            self.fail(path + ("type",), f"unknown auth type '{kind}'{did_you_mean(kind, kinds)} "
                                        f"(one of: {', '.join(kinds)})")
        if "refresh_before" in sec and "refresh_before" not in _AUTH_KEYS[kind]:
            self.fail(path + ("refresh_before",), f"'refresh_before' has no effect for type {kind}: "
                                                  "its credentials are sent as they are, never fetched")
        self.mapping(sec, path, _AUTH_KEYS[kind])
        parsed: AuthConfig = getattr(self, f"_auth_{kind}")(sec, path, base_url)
        return parsed

    def _sending(self, sec: dict[str, Any], path: Path_) -> dict[str, Any]:
        """How a token is sent: header + scheme, or a query parameter."""
        return {
            "header": self.get(sec, path, "header", c.nonempty, "Authorization"),
            "scheme": self.get(sec, path, "scheme", c.opt(c.string), "Bearer") or "",  # null, "": bare token
            "query_param": self.get(sec, path, "query_param", c.opt(c.nonempty), None),
        }

    def _auth_login(self, sec: dict[str, Any], path: Path_, base_url: str | None) -> LoginAuth:
        for a, b in (("path", "url"), ("json", "form"), ("token_path", "token_header")):
            self.exclusive(sec, path, a, b)
        self.exclusive(sec, path, "expires_in_path", "expiry", "ttl")
        d = LoginAuth()
        login_path = self.get(sec, path, "path", c.opt(c.string), None)
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
        self.collect_secrets(body)
        self.collect_secrets(form)
        self.collect_secrets(headers)
        return LoginAuth(
            method=self.get(sec, path, "method", c.choice(_HTTP_METHODS, str.upper, "an HTTP method"), d.method),
            path=login_path,
            url=url,
            json=body,
            form=form,
            headers=headers,
            token_path=self.get(sec, path, "token_path", c.body_path, d.token_path),
            token_header=self.get(sec, path, "token_header", c.opt(c.nonempty), None),
            expires_in_path=self.get(sec, path, "expires_in_path", c.opt(c.body_path), None),
            expiry=self.get(sec, path, "expiry", c.opt(c.choice(_EXPIRY, str.lower, "an expiry source")), None),
            ttl=self.get(sec, path, "ttl", _TTL, None),
            refresh_before=self.get(sec, path, "refresh_before", c.parse_duration, d.refresh_before),
            **self._sending(sec, path),
        )

    def _auth_static(self, sec: dict[str, Any], path: Path_, base_url: str | None) -> StaticAuth:
        if "token" not in sec:
            self.fail(path, "static auth needs 'token', e.g. token: ${NURSE_TOKEN}")
        token = self.get(sec, path, "token", c.nonempty, "").strip()
        self.secrets.append(token)
        return StaticAuth(token=token, **self._sending(sec, path))

    def _auth_oauth2(self, sec: dict[str, Any], path: Path_, base_url: str | None) -> OAuth2Auth:
        for key in ("token_url", "client_id", "client_secret"):
            if sec.get(key) is None:
                self.fail(path, f"oauth2 needs 'token_url', 'client_id' and 'client_secret' (missing '{key}')")
        d = OAuth2Auth()
        secret = self.get(sec, path, "client_secret", _credential, "")
        raw_extra = self.sub(sec.get("extra_params"), path + ("extra_params",))
        extra = {k: str(v) for k, v in self.mapping(raw_extra, path + ("extra_params",)).items() if v is not None}
        self.secrets.append(secret)
        self.collect_secrets(extra)
        return OAuth2Auth(
            token_url=self.url(self.sub(sec["token_url"], path + ("token_url",)), path + ("token_url",)),
            client_id=self.get(sec, path, "client_id", _credential, ""),
            client_secret=secret,
            scope=self.get(sec, path, "scope", c.opt(_scope), None),
            audience=self.get(sec, path, "audience", c.opt(c.string_or_number), None),
            extra_params=extra,
            client_auth=self.get(sec, path, "client_auth", c.choice(_CLIENT_AUTH, str.lower, "a client auth"),
                                 d.client_auth),
            headers=self.headers(sec.get("headers"), path + ("headers",)),
            ttl=self.get(sec, path, "ttl", _TTL, None),
            refresh_before=self.get(sec, path, "refresh_before", c.parse_duration, d.refresh_before),
        )

    def _auth_basic(self, sec: dict[str, Any], path: Path_, base_url: str | None) -> BasicAuth:
        if "username" not in sec or "password" not in sec:
            self.fail(path, "basic auth needs 'username' and 'password', e.g. password: ${NURSE_PASSWORD}")
        auth = BasicAuth(username=self.get(sec, path, "username", _credential, ""),
                         password=self.get(sec, path, "password", c.string_or_number, ""))
        if auth.password:
            self.secrets += [auth.password, auth.credentials]
        return auth

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
                verify_tls=self.get(sec, path, "verify_tls", c.boolean, defaults.verify_tls),
                timeout=self.get(sec, path, "timeout", c.opt(_TIMEOUT), None),
                auth=self.auth(sec.get("auth"), path + ("auth",), base_url),
                trusted_origins=self.trusted_origins(sec.get("trusted_origins"), path + ("trusted_origins",)),
                owner=self.get(sec, path, "owner", _owners, ()),
                severity=self.get(sec, path, "severity", c.opt(_severity), None),
                ca_bundle=self.ca_bundle(sec, path),
                **self.cert_days(sec, path, defaults.cert_warn_days, defaults.cert_fail_days),
            )
        return out

    def ca_bundle(self, sec: dict[str, Any], path: Path_) -> str | None:
        """A PEM file (or an OpenSSL hashed folder) of CA certificates, relative to the config file's folder."""
        raw = self.get(sec, path, "ca_bundle", c.opt(c.nonempty), None)
        if raw is None:
            return None
        base = Path(self.file).parent if self.file else Path.cwd()
        bundle = (base / Path(raw).expanduser()).absolute()
        if not bundle.exists():
            self.fail(path + ("ca_bundle",), f"CA bundle not found: {bundle} (a path relative to the config "
                                             "file's folder, to a PEM file of CA certificates)")
        return str(bundle)

    def cert_days(self, sec: dict[str, Any], path: Path_, warn: float, fail: float) -> dict[str, float]:
        """cert_warn_days and cert_fail_days of a section (the given ones when absent); fail must not exceed warn."""
        out = {"cert_warn_days": self.get(sec, path, "cert_warn_days", _days, warn),
               "cert_fail_days": self.get(sec, path, "cert_fail_days", _days, fail)}
        if out["cert_fail_days"] > out["cert_warn_days"]:
            self.fail(path + ("cert_fail_days",), f"cert_fail_days ({out['cert_fail_days']:g}) must not be more "
                                                  f"than cert_warn_days ({out['cert_warn_days']:g})")
        return out

    def trusted_origins(self, raw: Any, path: Path_) -> tuple[str, ...]:
        """A list of http(s) URLs; only their origin (scheme, host, port) counts, a path is refused."""
        if raw is None:
            return ()
        raw = self.sub(raw, path)
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            self.fail(path, f"expected a list of origins like https://sso.example.com, got {c.describe(raw)}")
        out: list[str] = []
        for i, value in enumerate(raw):
            url = self.url(value, path + (i,))
            parts = url.split("://", 1)[1]
            if "/" in parts or "?" in parts or "@" in parts:
                self.fail(path + (i,), f"expected an origin (scheme://host[:port]) without path, query or "
                                       f"userinfo, got {url!r}")
            out.append(origin_of(url) or url)
        return tuple(dict.fromkeys(out))


def _days(value: Any) -> float:
    """A number of days from 0 to 36500 (certificate expiry thresholds)."""
    number = c.finite_number(value)
    if number is None or not 0 <= number <= 36500:
        raise ValueError(f"expected a number of days from 0 to 36500, got {c.describe(value)}")
    return number


_DAY = 86400.0
_TIMEOUT = c.at_most(_DAY, c.positive(c.parse_duration), " seconds (one day)")
_DEFAULTS: dict[str, Any] = {  # field -> converter; the keys are also the allowed keys
    "timeout": _TIMEOUT,
    "connect_timeout": _TIMEOUT,
    "interval": c.positive(c.parse_duration),
    "retries": c.at_most(100, c.count),
    "retry_delay": c.at_most(3600, c.parse_duration, " seconds"),  # 0 = retry at once
    "backoff_factor": c.at_most(100, c.factor),
    "max_retry_after": c.at_most(3600, c.parse_duration, " seconds"),
    "max_body_bytes": c.positive(c.parse_size),
    "max_redirects": c.count,
    "verify_tls": c.boolean,
    "concurrency": c.at_least(1),
    "max_per_host": c.at_least(1),
    "cert_warn_days": _days,
    "cert_fail_days": _days,
}
_LOGGING: dict[str, Any] = {
    "file": c.opt(c.nonempty),  # null disables the file
    "max_bytes": c.positive(c.parse_size),
    "backups": c.count,
    "level": c.choice(LOG_LEVELS, str.upper, "a logging level"),
}
def _owners(value: Any) -> tuple[str, ...]:
    from .ownership import parse_owners

    return parse_owners(value)


def _severity(value: Any) -> str:
    from .ownership import parse_severity

    return parse_severity(value).value


def _zone_name(value: Any) -> str:
    from .times import parse_zone

    text = c.nonempty(value)
    parse_zone(text)  # ValueError names the accepted forms
    return text


_REPORT: dict[str, Any] = {
    "language": c.choice(LANGUAGES, str.lower, "a report language"),
    "title": c.opt(c.string),
    "markdown": c.opt(c.nonempty),
    "json": c.opt(c.nonempty),
    "html": c.opt(c.nonempty),
    "prometheus": c.opt(c.nonempty),
    "status_page_url": c.opt(c.nonempty),
    "publish": c.boolean,
    "timezone": c.opt(_zone_name),
}


_LIMITS: dict[str, tuple[str, Any]] = {  # config key -> (Limits field, converter)
    "max_file_size": ("max_file_bytes", c.positive(c.parse_size)),
    "max_depth": ("max_depth", c.at_least(2)),
    "max_alias_nodes": ("max_alias_nodes", c.count),
    "max_interfaces_per_file": ("max_interfaces", c.at_least(1)),
    "max_keys_per_mapping": ("max_keys", c.at_least(1)),
    # milliseconds of processor time per match of a document's regex (patterns.py); at most a minute
    "regex_timeout_ms": ("regex_timeout_ms", c.at_most(60_000, c.at_least(1), " ms")),
}


def _limits(reader: c.Reader, raw: Any) -> Limits:
    sec = reader.mapping(raw, ("limits",), tuple(_LIMITS))
    return Limits(**{name: reader.get(sec, ("limits",), key, conv, getattr(DEFAULT_LIMITS, name))
                     for key, (name, conv) in _LIMITS.items()})


def _own_limit(message: str) -> str:
    # The config file is read with the built-in limits: its `limits:` section applies to documents.
    return re.sub(r"\(limits\.\w+ in config\.yaml\)", "(built-in limit for the config file)", message)


def _parse_file(path: Path) -> tuple[Parsed, str]:
    """The config file read and parsed (not yet validated), and its absolute name. Raises ConfigError."""
    path = Path(path).absolute()  # base_dir must not depend on a later chdir
    file = str(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" if not path.exists() else f"not a file: {path}")
    try:
        text = read_limited(path, DEFAULT_LIMITS).decode("utf-8")  # the config's own limits are the built-in ones
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=file) from None
    except ParseError as exc:
        raise ConfigError(_own_limit(exc.message), file=file) from None
    try:
        return parse(text, path.suffix), file
    except ParseError as exc:
        raise ConfigError(_own_limit(exc.message), file=file, line=exc.line) from None


def load_robots(path: Path | None, environ: Mapping[str, str] | None = None) -> tuple[NotifySettings, str]:
    """Only what `--apimon-test-webhook` needs: the `notify:` section and the report language.

    Testing the robots must not depend on the rest of the config: a ${VAR} left unset in a service's base_url
    (set only where the monitor runs) or another section's mistake does not stop it; the full run still
    reports those. Raises ConfigError for a problem in `notify:` itself or a file that does not parse.
    Returns (settings, language); a `report:` section that does not validate gives the default language.
    """
    from .notify.settings import NotifySettings, parse_notify

    if path is None:
        return NotifySettings(), ReportConfig.language
    parsed, file = _parse_file(path)
    environ = os.environ if environ is None else environ
    reader = _ConfigReader(parsed, file, environ)
    top = reader.mapping(parsed.data, (), _TOP_KEYS)
    notify = parse_notify(top.get("notify"), file=file, environ=environ, line_of=parsed.line)
    try:
        language = reader.section(top.get("report"), "report", _REPORT, ReportConfig).language
    except ConfigError:
        language = ReportConfig.language
    return notify, language


def load_config(path: Path | None, env: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load, substitute and validate. path None -> built-in defaults; a missing file is an error. Raises ConfigError.

    env (from --apimon-env) overrides the file's `env:`; environ defaults to os.environ.
    """
    if path is None:
        return Config(path=None, env=env or DEFAULT_ENV)
    parsed, file = _parse_file(path)
    path = Path(file)
    reader = _ConfigReader(parsed, file, os.environ if environ is None else environ)
    top = reader.mapping(parsed.data, (), _TOP_KEYS)
    file_env = reader.get(top, (), "env", c.opt(c.nonempty), None)
    selected = env or file_env or DEFAULT_ENV
    defaults = reader.section(top.get("defaults"), "defaults", _DEFAULTS, Defaults)
    if defaults.cert_fail_days > defaults.cert_warn_days:
        reader.cert_days(top.get("defaults") or {}, ("defaults",), defaults.cert_warn_days, defaults.cert_fail_days)
    services = reader.services(top.get("services"), selected, defaults)
    from .notify.settings import parse_notify

    notify = parse_notify(top.get("notify"), file=file, environ=reader.environ, line_of=parsed.line)
    from .policy_settings import parse_policy, parse_state

    services_raw = top.get("services")
    raw_services: Mapping[str, Any] = services_raw if isinstance(services_raw, Mapping) else {}
    policy = parse_policy(
        top.get("alerts"), top.get("breaker"),
        {name: svc.get("alerts") for name, svc in raw_services.items() if isinstance(svc, Mapping)},
        file=file, environ=reader.environ, line_of=parsed.line,
    )
    state = parse_state(top.get("state"), file=file, environ=reader.environ, line_of=parsed.line)
    report = reader.section(top.get("report"), "report", _REPORT, ReportConfig)
    from .maintenance import parse_maintenance

    maintenance = parse_maintenance(
        top.get("maintenance"),
        {name: svc.get("maintenance") for name, svc in raw_services.items() if isinstance(svc, Mapping)},
        default_zone=report.timezone, file=file, environ=reader.environ, line_of=parsed.line,
    )
    return Config(
        path=file,
        env=selected,
        defaults=defaults,
        services=services,
        logging=reader.section(top.get("logging"), "logging", _LOGGING, LoggingConfig),
        report=report,
        secrets=c.dedupe([*reader.secrets, *notify.secrets]),
        notify=notify,
        state_dir=state.dir,
        policy=policy,
        state=state,
        limits=_limits(reader, top.get("limits")),
        maintenance=maintenance,
    )
