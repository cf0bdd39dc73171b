"""Maintenance windows: when a service's failures are planned work, not incidents.

    maintenance:                      # global: every service
      - name: 每周发布                # optional label, shown in the report
        days: [sat, sun]              # weekly: mon … sun, ranges (mon-fri), daily, 周一 … 周日
        start: "02:00"                # local wall-clock time of the window's zone
        end: "04:00"                  # end <= start: the window runs past midnight; "24:00" = end of the day
        timezone: Asia/Shanghai       # optional: default report.timezone, else the machine's zone
      - name: 机房割接                # one-off: a date and time (or ISO 8601 with its UTC offset)
        start: "2026-12-05 22:00"
        end: "2026-12-06 02:00"       # or `duration: 4h` instead of `end` (either kind)
    services:
      user:
        maintenance:                  # this service only, besides the global windows
          - {days: [mon-fri], start: "12:00", end: "12:30"}

Weekly windows are wall-clock windows (as Gatus's `maintenance` and cron read them): a window is active while
the local time of its zone reads between `start` and `end` on one of its days, so a DST change moves it with
the clock (a 02:00–03:00 window on a day the clock jumps from 02:00 to 03:00 does not happen; on a day 01:00–02:00
repeats, a window inside that hour is active both times). One-off windows are two instants: a local time that
a DST gap skips means the moment the clock jumps, a repeated local time its first occurrence.

`active_window(settings, service, at)` is the one question the rest asks (policy.py decides what it means for
alerts). Parsing raises config.ConfigError with file, line and field path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from . import times
from ._config_reader import SectionReader, describe, nonempty, positive_duration
from .loader import Path_

WEEK = 7 * 86400
DAY = 86400
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES: dict[str, int] = {}
for _i, _d in enumerate(DAYS):
    _DAY_NAMES[_d] = _i
for _i, _d in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")):
    _DAY_NAMES[_d] = _i
for _i, _d in enumerate("一二三四五六日"):
    _DAY_NAMES[f"周{_d}"] = _DAY_NAMES[f"星期{_d}"] = _i
_DAY_NAMES["周天"] = _DAY_NAMES["星期天"] = 6
_EVERY_DAY = ("daily", "every day", "all", "每天")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_WINDOW_KEYS = ("name", "days", "start", "end", "duration", "timezone")


@dataclass(frozen=True)
class Window:
    """One maintenance window.

    Weekly (`days` set): `starts` are offsets in seconds from Monday 00:00 local wall-clock time, each opening
    an occurrence `length` seconds long (wall-clock). One-off: `start_at` <= t < `end_at` (epoch seconds).
    `zone` None is the machine's local zone.
    """

    name: str
    zone: tzinfo | None = None
    zone_name: str = ""
    starts: tuple[int, ...] = ()
    length: int = 0
    start_at: float | None = None
    end_at: float | None = None
    service: str = ""  # "" = a global window
    text: str = ""  # how it was written, for the report: "sat 02:00–04:00", "2026-12-05 22:00 – …"

    @property
    def weekly(self) -> bool:
        """Recurring every week (`days` given), else one-off."""
        return self.start_at is None

    def active(self, at: float) -> bool:
        """Whether epoch second `at` lies in the window."""
        if not self.weekly:
            assert self.start_at is not None and self.end_at is not None
            return self.start_at <= at < self.end_at
        local = _wall(at, self.zone)
        seconds = local.weekday() * DAY + local.hour * 3600 + local.minute * 60 + local.second
        return any((seconds - s) % WEEK < self.length for s in self.starts)

    def label(self, lang: str = "zh") -> str:
        """'每周发布（sat 02:00–04:00 Asia/Shanghai）' — name, then when."""
        when = self.text + (f" {self.zone_name}" if self.zone_name else "")
        if not self.name:
            return when
        return f"{self.name}（{when}）" if lang == "zh" else f"{self.name} ({when})"


@dataclass(frozen=True)
class MaintenanceSettings:
    """Every configured window: `global_` for all services, `services` per service name."""

    global_: tuple[Window, ...] = ()
    services: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)

    def windows(self, service: str) -> tuple[Window, ...]:
        """The global windows, then the service's own."""
        return self.global_ + tuple(self.services.get(service, ()))

    def __bool__(self) -> bool:
        return bool(self.global_) or any(self.services.values())


def active_window(settings: MaintenanceSettings, service: str, at: float, until: float | None = None,
                  ) -> Window | None:
    """The first window of `service` (its own, then the global ones) active at epoch second `at`, or at `until`
    when given (a run's start and end: a run that overlaps a window's edge counts as inside it). None: none."""
    for window in (*settings.services.get(service, ()), *settings.global_):
        if window.active(at) or (until is not None and window.active(until)):
            return window
    return None


def in_maintenance(settings: MaintenanceSettings, services: Sequence[str], at: float, until: float | None = None,
                   ) -> dict[str, Window]:
    """{service: its active window} for the services in maintenance at `at` (or `until`)."""
    out = {}
    for service in dict.fromkeys(services):
        window = active_window(settings, service, at, until)
        if window is not None:
            out[service] = window
    return out


# ---------------------------------------------------------------- time arithmetic


def _wall(at: float, zone: tzinfo | None) -> datetime:
    """Naive local wall-clock time of epoch second `at` in `zone` (None: the machine's zone)."""
    return datetime.fromtimestamp(at, zone).replace(tzinfo=None) if zone is not None \
        else datetime.fromtimestamp(at)


def _instant(naive: datetime, zone: tzinfo | None) -> float:
    """Epoch seconds of a local wall-clock time: the first occurrence of a repeated one, the clock's jump for one
    a DST gap skips (the first instant whose wall-clock time is at or after it)."""
    first = naive.replace(fold=0)  # fold=0: the earlier of a repeated time (PEP 495)
    ts = first.replace(tzinfo=zone).timestamp() if zone is not None else first.timestamp()
    if _wall(ts, zone) == first:
        return ts
    # In a gap: fold=0 and fold=1 bracket the jump; bisect for the first instant reading >= naive.
    alt = naive.replace(fold=1)
    ts1 = alt.replace(tzinfo=zone).timestamp() if zone is not None else alt.timestamp()
    lo, hi = min(ts, ts1), max(ts, ts1)
    while hi - lo > 0.5:
        mid = (lo + hi) / 2
        if _wall(mid, zone) >= naive.replace(fold=0):
            hi = mid
        else:
            lo = mid
    return float(round(hi))


def _clock(value: Any, *, end: bool = False) -> int:
    """Seconds after midnight of 'HH:MM' or 'HH:MM:SS' ('24:00' only as an end). Raises ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"expected a time of day like \"02:00\" (quoted), got {describe(value)}")
    m = _CLOCK.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"expected a time of day like \"02:00\" or \"23:30:00\", got {value!r}")
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if end and (hour, minute, second) == (24, 0, 0):
        return DAY
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"not a time of day: {value!r} (00:00 … 23:59{', or 24:00 as an end' if end else ''})")
    return hour * 3600 + minute * 60 + second


def _moment(value: Any, zone: tzinfo | None) -> float:
    """Epoch seconds of '2026-12-05 22:00' (local to the window's zone) or ISO 8601 with an offset."""
    if not isinstance(value, str):
        raise ValueError(f"expected a date and time like \"2026-12-05 22:00\" (quoted) or a weekly window with "
                         f"'days', got {describe(value)}")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        if _CLOCK.fullmatch(text):
            raise ValueError(f"{text!r} is a time of day: a weekly window needs 'days' (e.g. days: [sat]); a "
                             "one-off window needs a date, e.g. \"2026-12-05 22:00\"") from None
        raise ValueError(f"expected a date and time like \"2026-12-05 22:00\" or \"2026-12-05T22:00+08:00\", "
                         f"got {text!r}") from None
    if parsed.tzinfo is not None:
        return parsed.timestamp()
    return _instant(parsed, zone)


def parse_days(value: Any) -> tuple[int, ...]:
    """Weekday numbers (Monday 0) from a list of names / ranges, or 'daily'. Raises ValueError."""
    if isinstance(value, str):
        if value.strip().lower() in _EVERY_DAY:
            return tuple(range(7))
        items: list[Any] = [v for v in re.split(r"[,\s、，]+", value.strip()) if v]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"expected a list of weekdays like [sat, sun] or [mon-fri], or daily; got {describe(value)}")
    if not items:
        raise ValueError("expected at least one weekday, e.g. [sat]")
    out: list[int] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a weekday name (mon … sun), got {describe(item)}")
        text = item.strip().lower()
        if text in _EVERY_DAY:
            out += range(7)
            continue
        first, sep, last = text.partition("-")
        a, b = _weekday(first), _weekday(last) if sep else None
        if b is None:
            out.append(a)
        else:
            out += [(a + k) % 7 for k in range((b - a) % 7 + 1)]  # sat-mon wraps over the week's end
    return tuple(sorted(set(out)))


def _weekday(text: str) -> int:
    from .loader import did_you_mean

    name = text.strip().lower()
    if name in _DAY_NAMES:
        return _DAY_NAMES[name]
    raise ValueError(f"unknown weekday {text!r}{did_you_mean(name, DAYS)}; expected one of {', '.join(DAYS)} "
                     "(or monday … sunday, a range like mon-fri, daily)")  # 周一 … 周日 too; messages.py says so in zh


# ---------------------------------------------------------------- config


class _Reader(SectionReader):
    def window(self, raw: Any, path: Path_, default_zone: str | None, service: str) -> Window:
        """One window mapping at `path`; ConfigError for anything wrong in it."""
        section = self.mapping(raw, path, _WINDOW_KEYS)
        zone_name = self.value(section, path, "timezone", _zone_name, None) or default_zone
        zone = times.parse_zone(zone_name) if zone_name else None
        name = self.value(section, path, "name", nonempty, "")
        if section.get("start") is None:
            self.fail(path, "a maintenance window needs 'start' and 'end' (or 'duration')")
        if section.get("end") is not None and section.get("duration") is not None:
            self.fail(path + ("duration",), "use either 'end' or 'duration', not both")
        if section.get("end") is None and section.get("duration") is None:
            self.fail(path, "a maintenance window needs 'end' or 'duration'")
        duration = self.value(section, path, "duration", positive_duration, None)
        if section.get("days") is not None:
            days = self.value(section, path, "days", parse_days, ())
            start = self.value(section, path, "start", _clock, 0)
            if duration is None:
                end = self.value(section, path, "end", lambda v: _clock(v, end=True), 0)
                length = end - start if end > start else end + DAY - start
                if end == start:
                    self.fail(path + ("end",), f"the window is empty: end equals start ({section['end']!r}); for a "
                                               "whole day write start: \"00:00\", end: \"24:00\"")
                until = f"–{section['end']}"
            else:
                if duration > WEEK:
                    self.fail(path + ("duration",),
                              f"a weekly window lasts at most a week, got {section['duration']!r}")
                length = int(duration)
                until = f" +{section['duration']}"
            names = ",".join(DAYS[d] for d in days)
            return Window(name=name, zone=zone, zone_name=zone_name or "", starts=tuple(d * DAY + start for d in days),
                          length=length, service=service, text=f"{names} {section['start']}{until}")
        start_at = self.value(section, path, "start", lambda v: _moment(v, zone), 0.0)
        if duration is None:
            end_at = self.value(section, path, "end", lambda v: _moment(v, zone), 0.0)
            if end_at <= start_at:
                self.fail(path + ("end",), f"the window ends before it starts: end {section['end']!r} is not after "
                                           f"start {section['start']!r}")
            until = f" – {section['end']}"
        else:
            end_at, until = start_at + duration, f" +{section['duration']}"
        return Window(name=name, zone=zone, zone_name=zone_name or "", start_at=start_at, end_at=end_at,
                      service=service, text=f"{section['start']}{until}")

    def windows(self, raw: Any, path: Path_, default_zone: str | None, service: str = "") -> tuple[Window, ...]:
        """A list of windows (or one mapping) at `path`; null is none."""
        if raw is None:
            return ()
        if isinstance(raw, Mapping):  # one window written without the list
            return (self.window(raw, path, default_zone, service),)
        if not isinstance(raw, list):
            self.fail(path, f"expected a list of windows (each with start and end), got {describe(raw)}")
        return tuple(self.window(item, path + (i,), default_zone, service) for i, item in enumerate(raw))


def _zone_name(value: Any) -> str:
    text = nonempty(value).strip()
    times.parse_zone(text)  # ValueError names the accepted forms
    return text


def parse_maintenance(global_raw: Any, services_raw: Mapping[str, Any] | None = None, *,
                      default_zone: str | None = None, file: str | None = None,
                      environ: Mapping[str, str] | None = None,
                      line_of: Callable[[Path_], int | None] | None = None) -> MaintenanceSettings:
    """Validate the top-level `maintenance:` list and each `services.<name>.maintenance`.

    default_zone: the zone of windows without their own `timezone` (report.timezone; None: the machine's).
    Raises ConfigError naming file, line and field path (bad times, end not after start, unknown weekday or zone).
    """
    import os

    reader = _Reader(file, os.environ if environ is None else environ, line_of)
    found = reader.windows(global_raw, ("maintenance",), default_zone)
    services = {}
    for name, raw in (services_raw or {}).items():
        if raw is not None:
            services[str(name)] = reader.windows(raw, ("services", str(name), "maintenance"), default_zone,
                                                 str(name))
    return MaintenanceSettings(global_=found, services=services)
