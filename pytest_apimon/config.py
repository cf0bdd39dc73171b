"""config.yaml: the validated configuration model, with ${VAR} / ${VAR:-default} substitution.

SKELETON — models and signatures are fixed; bodies to be implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    secrets: tuple[str, ...] = ()  # every value substituted from ${VAR} into a secret-looking field; masked in outputs

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent if self.path else Path.cwd()

    def service(self, name: str) -> ServiceConfig:
        """The service's config, or an empty one (no base URL) when it is not configured."""
        return self.services.get(name) or ServiceConfig(name=name, base_url=None)


def load_config(path: Path | None, env: str | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load, substitute and validate. path None or missing-and-default -> built-in defaults. Raises ConfigError."""
    raise NotImplementedError
