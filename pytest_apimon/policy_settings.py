"""The `alerts:`, `breaker:` and `state:` sections of config.yaml, and per-service `alerts:` overrides.

    state:
      dir: .apimon                # relative to the config file's folder
      raw_hours: 48               # per-run results kept (alert trends, the status page's run bar)
      hourly_days: 90             # hourly rollups kept (>= 8: the 7-day windows read them)
      daily_days: 730             # daily rollups kept (30 d / 90 d / 1 y availability, SLA export)
      lock_timeout: 5m            # a second run waits this long for the running one, then exits
    alerts:
      failure_threshold: 1        # consecutive failing runs before an interface counts as down
      success_threshold: 1        # consecutive passing runs before a down interface counts as recovered
      send_on_resolved: true      # send RECOVERED
      remind_every: 1h            # re-alert an interface that stays down; 0 = never
      flapping: {changes: 4, window: 10}   # >= 4 outcome changes in the last 10 runs; false disables
      storm: {fraction: 0.5, min_services: 2, min_interfaces: 4}     # false disables
      slow_threshold: 3           # consecutive slow passes (over expect.warn_ms) before SLOW; 0 = no SLOW alerts
      normal_threshold: 3         # consecutive normal passes that clear a SLOW
    breaker:
      enabled: true
      failures: 5                 # consecutive failing runs that open the circuit
      cooldown: 5m                # skipped while open; then one half-open probe
    services:
      user:
        alerts:                   # any key of alerts: except storm, plus a breaker: mapping
          failure_threshold: 2
          remind_every: 30m
          breaker: {failures: 3}

Every problem is a ConfigError naming the field path (and the line when `line_of` is given).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from ._config_reader import SectionReader, at_least, boolean, describe, finite_number, positive_duration
from .config import parse_duration
from .loader import Path_


@dataclass(frozen=True)
class AlertPolicy:
    """Per-interface policy (global defaults, optionally overridden per service)."""

    failure_threshold: int = 1
    success_threshold: int = 1
    send_on_resolved: bool = True
    remind_every: float = 3600.0  # seconds; 0 = never remind
    flapping_changes: int = 4  # k: outcome changes ... (0 = flapping detection off)
    flapping_window: int = 10  # ... within the last n runs
    breaker_enabled: bool = True
    breaker_failures: int = 5
    breaker_cooldown: float = 300.0
    slow_threshold: int = 3  # consecutive slow passes before SLOW (0 = off)
    normal_threshold: int = 3  # consecutive normal passes that clear SLOW


@dataclass(frozen=True)
class StormSettings:
    enabled: bool = True
    fraction: float = 0.5  # share of the run's executed interfaces failing with network/timeout
    min_services: int = 2  # ... spread over at least this many services
    min_interfaces: int = 4  # below this the list is short anyway: no collapse


class StoreOptions(TypedDict):
    raw_hours: float
    hourly_days: float
    daily_days: float


@dataclass(frozen=True)
class StateSettings:
    dir: str = ".apimon"
    retention_days: float | None = None  # legacy name of the raw window, in days (raw_hours wins)
    lock_timeout: float = 300.0  # seconds
    raw_hours: float = 48.0
    hourly_days: float = 90.0
    daily_days: float = 730.0

    def store_options(self) -> StoreOptions:
        """Keyword arguments of state.StateStore."""
        return StoreOptions(raw_hours=self.raw_hours, hourly_days=self.hourly_days, daily_days=self.daily_days)


@dataclass(frozen=True)
class PolicySettings:
    defaults: AlertPolicy = field(default_factory=AlertPolicy)
    storm: StormSettings = field(default_factory=StormSettings)
    services: Mapping[str, AlertPolicy] = field(default_factory=dict)  # fully merged per-service policies
    # notify.severity.<P>.remind_every: a severity's own reminder interval (P0 and P1 may differ)
    remind_by_severity: Mapping[str, float] = field(default_factory=dict)

    def for_service(self, service: str) -> AlertPolicy:
        return self.services.get(service, self.defaults)

    def for_interface(self, service: str, severity: str = "") -> AlertPolicy:
        """The service's policy, with the reminder interval of the interface's severity when one is set."""
        policy = self.for_service(service)
        every = self.remind_by_severity.get(severity)
        return policy if every is None else replace(policy, remind_every=every)


_ALERT_KEYS = ("failure_threshold", "success_threshold", "send_on_resolved", "remind_every", "slow_threshold",
               "normal_threshold", "flapping", "storm")
_SERVICE_ALERT_KEYS = (*_ALERT_KEYS[:-1], "breaker")
_FLAPPING_KEYS = ("changes", "window")
_STORM_KEYS = ("fraction", "min_services", "min_interfaces")
_BREAKER_KEYS = ("enabled", "failures", "cooldown")
_STATE_KEYS = ("dir", "retention_days", "lock_timeout", "raw_hours", "hourly_days", "daily_days")






def _fraction(value: Any) -> float:
    try:
        number = float(str(value).strip().rstrip("%")) / (100 if str(value).strip().endswith("%") else 1)
    except ValueError:
        raise ValueError(f"expected a fraction between 0 and 1 (e.g. 0.5 or '50%'), got {value!r}") from None
    if isinstance(value, bool) or not 0 < number <= 1:
        raise ValueError(f"expected a fraction > 0 and <= 1 (e.g. 0.5 or '50%'), got {value!r}")
    return number




def _nonempty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty path, got {value!r}")
    return value.strip()


def _days(value: Any) -> float:
    number = finite_number(value)  # not `true` (1.0 to float()), not nan/inf
    if number is None or number <= 0:
        raise ValueError(f"expected a number of days > 0, got {describe(value)}")
    return number


class _Reader(SectionReader):
    def switchable(self, section: Mapping[str, Any], path: Path_, key: str) -> tuple[bool, dict[str, Any]]:
        """`key: false` disables a feature; `key: {…}` configures it; absent = defaults."""
        raw = section.get(key)
        if isinstance(raw, bool | str):
            return self.value(section, path, key, boolean, True), {}
        return True, raw  # type: ignore[return-value]

    def policy(self, raw: Any, path: Path_, base: AlertPolicy, allowed: tuple[str, ...]) -> dict[str, Any]:
        """Only the keys present in `raw`, converted: merged over `base` by the caller."""
        section = self.mapping(raw, path, allowed)
        out: dict[str, Any] = {}
        for key, convert in (("failure_threshold", at_least(1)), ("success_threshold", at_least(1)),
                             ("send_on_resolved", boolean), ("remind_every", parse_duration),
                             ("slow_threshold", at_least(0)), ("normal_threshold", at_least(1))):
            if section.get(key) is not None:
                out[key] = self.value(section, path, key, convert, None)
        if "flapping" in section:
            on, flap = self.switchable(section, path, "flapping")
            flap = self.mapping(flap, path + ("flapping",), _FLAPPING_KEYS)
            default_changes = base.flapping_changes or AlertPolicy.flapping_changes  # re-enabled per service
            out["flapping_changes"] = self.value(flap, path + ("flapping",), "changes", at_least(2),
                                                 default_changes) if on else 0
            out["flapping_window"] = self.value(flap, path + ("flapping",), "window", at_least(2), base.flapping_window)
            if on and out["flapping_changes"] > out["flapping_window"] - 1:
                self.fail(path + ("flapping", "changes"),
                          f"{out['flapping_changes']} changes cannot happen within {out['flapping_window']} runs "
                          f"(at most {out['flapping_window'] - 1}); raise window or lower changes")
        if "breaker" in allowed and section.get("breaker") is not None:
            out.update(self.breaker(section["breaker"], path + ("breaker",), base))
        return out

    def breaker(self, raw: Any, path: Path_, base: AlertPolicy) -> dict[str, Any]:
        section = self.mapping(raw, path, _BREAKER_KEYS)
        return {
            "breaker_enabled": self.value(section, path, "enabled", boolean, base.breaker_enabled),
            "breaker_failures": self.value(section, path, "failures", at_least(1), base.breaker_failures),
            "breaker_cooldown": self.value(section, path, "cooldown", positive_duration, base.breaker_cooldown),
        }


def _reader(file: str | None, environ: Mapping[str, str] | None,
            line_of: Callable[[Path_], int | None] | None) -> _Reader:
    return _Reader(file, os.environ if environ is None else environ, line_of or (lambda _p: None))


def parse_policy(alerts_raw: Any, breaker_raw: Any = None, services_raw: Mapping[str, Any] | None = None, *,
                 file: str | None = None, environ: Mapping[str, str] | None = None,
                 line_of: Callable[[Path_], int | None] | None = None) -> PolicySettings:
    """Validate the top-level `alerts:` and `breaker:` values and per-service overrides.

    services_raw maps a service name to the raw value of `services.<name>.alerts` (None entries are skipped).
    Raises ConfigError; paths are reported as they appear in config.yaml.
    """
    reader = _reader(file, environ, line_of)
    defaults = AlertPolicy()
    defaults = replace(defaults, **reader.policy(alerts_raw, ("alerts",), defaults, _ALERT_KEYS))
    defaults = replace(defaults, **reader.breaker(breaker_raw, ("breaker",), defaults))
    storm = StormSettings()
    section = alerts_raw if isinstance(alerts_raw, Mapping) else {}
    if "storm" in section:
        on, raw = reader.switchable(section, ("alerts",), "storm")
        path: Path_ = ("alerts", "storm")
        sub = reader.mapping(raw, path, _STORM_KEYS)
        storm = StormSettings(
            enabled=on,
            fraction=reader.value(sub, path, "fraction", _fraction, storm.fraction),
            min_services=reader.value(sub, path, "min_services", at_least(1), storm.min_services),
            min_interfaces=reader.value(sub, path, "min_interfaces", at_least(1), storm.min_interfaces),
        )
    services: dict[str, AlertPolicy] = {}
    for name, raw in (services_raw or {}).items():
        if raw is None:
            continue
        overrides = reader.policy(raw, ("services", str(name), "alerts"), defaults, _SERVICE_ALERT_KEYS)
        services[str(name)] = replace(defaults, **overrides)
    return PolicySettings(defaults=defaults, storm=storm, services=services)


def parse_state(raw: Any, *, default_dir: str = ".apimon", file: str | None = None,
                environ: Mapping[str, str] | None = None,
                line_of: Callable[[Path_], int | None] | None = None) -> StateSettings:
    """Validate the top-level `state:` value. default_dir: the legacy `state_dir:` when present."""
    reader = _reader(file, environ, line_of)
    path: Path_ = ("state",)
    section = reader.mapping(raw, path, _STATE_KEYS)
    days = reader.value(section, path, "retention_days", _days, None)
    tiers: dict[str, float] = {}
    for key, default, least in (("raw_hours", days * 24 if days is not None else 48.0, 1.0),
                                ("hourly_days", 90.0, 8.0), ("daily_days", 730.0, 1.0)):
        value = reader.value(section, path, key, float, default)
        if not value >= least:
            why = " (the 7-day windows read the hourly rollups)" if key == "hourly_days" else ""
            reader.fail(path + (key,), f"expected a number >= {least:g}{why}, got {section.get(key)!r}")
        tiers[key] = value
    return StateSettings(
        dir=reader.value(section, path, "dir", _nonempty, default_dir),
        retention_days=days,
        lock_timeout=reader.value(section, path, "lock_timeout", parse_duration, 300.0),
        **tiers,
    )

