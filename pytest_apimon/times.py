"""Wall-clock times as users read them: in the configured time zone, always with its UTC offset.

A container on UTC and an engineer in Beijing must read the same instant the same way, so every time in a
message, report or watcher line names its offset ("2026-11-29 12:00:00 +08:00"; "11:35 +08:00" when the date
is today's). The zone is `report.timezone` (an IANA name such as Asia/Shanghai, or a fixed offset such as
+08:00); unset, it is the machine's local zone. Set once per process by `use_zone` (plugin / watcher start).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", re.I)
_zone: tzinfo | None = None  # None: the machine's local zone


def parse_zone(name: str) -> tzinfo:
    """An IANA zone name ('Asia/Shanghai', 'UTC') or a fixed offset ('+08:00', 'UTC+8'). Raises ValueError."""
    text = name.strip()
    m = _OFFSET.fullmatch(text)
    if m:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60:
            raise ValueError(f"{name!r} is not a UTC offset (expected -12:00 … +14:00)")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name like Asia/Shanghai or an offset like "
                         "+08:00") from None


def use_zone(name: str | None) -> Callable[[], None]:
    """Make `name` (None: the machine's zone) the zone of every formatted time in this process. Returns what puts
    the previous zone back: a run inside a longer-lived process (pytester's inline runs, `apimon merge` called
    from Python) must not leave its zone to what runs after it. Raises ValueError for an unknown zone."""
    global _zone
    previous = _zone
    _zone = parse_zone(name) if name else None

    def restore() -> None:
        global _zone
        _zone = previous

    return restore


def local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, _zone) if _zone is not None else datetime.fromtimestamp(ts).astimezone()


def offset(ts: float) -> str:
    """'+08:00' for the configured zone at ts."""
    text = local(ts).strftime("%z")
    return f"{text[:3]}:{text[3:]}" if len(text) == 5 else text


def stamp(ts: float, *, seconds: bool = True) -> str:
    """'2026-11-29 12:00:00 +08:00'."""
    return local(ts).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " " + offset(ts)


def short(ts: float, now: float | None = None, *, seconds: bool = False) -> str:
    """'11:35 +08:00' when ts is on now's date, else '2026-11-28 11:35 +08:00'."""
    clock = "%H:%M:%S" if seconds else "%H:%M"
    same_day = now is not None and local(ts).date() == local(now).date()
    return local(ts).strftime(clock if same_day else f"%Y-%m-%d {clock}") + " " + offset(ts)


def iso(ts: float) -> str:
    return local(ts).isoformat(timespec="seconds")


def compact(ts: float) -> str:
    """'20261129-120000' for file names."""
    return local(ts).strftime("%Y%m%d-%H%M%S")
