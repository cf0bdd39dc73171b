"""Maintenance windows (maintenance.py): config parsing with file/line/field errors, and the window matcher
against an independent minute-of-week reference, around DST changes, midnight and the week's end."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_apimon.config import ConfigError, load_config
from pytest_apimon.maintenance import (
    DAY,
    WEEK,
    MaintenanceSettings,
    Window,
    active_window,
    in_maintenance,
    parse_days,
    parse_maintenance,
)

ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Shanghai", "Pacific/Apia", "UTC",
         "America/Santiago")


def window(raw: dict, zone: str = "UTC", service: str = "") -> Window:
    found = parse_maintenance([{"timezone": zone, **raw}] if service == "" else None,
                              {service: [{"timezone": zone, **raw}]} if service else None)
    return found.windows(service)[0]


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------- parsing


def test_config_global_and_per_service_with_the_report_zone(tmp_path: Path) -> None:
    cfg = load_config(config(tmp_path, """
        report: {timezone: Asia/Shanghai}
        maintenance:
          - name: 每周发布
            days: [sat]
            start: "02:00"
            end: "04:00"
          - {start: "2026-12-05 22:00", end: "2026-12-06 02:00", timezone: UTC}
        services:
          user:
            base_url: http://127.0.0.1:1
            maintenance: {days: mon-fri, start: "12:00", duration: 30m}
    """))
    weekly, one_off = cfg.maintenance.global_
    assert weekly.zone_name == "Asia/Shanghai" and weekly.label() == "每周发布（sat 02:00–04:00 Asia/Shanghai）"
    assert one_off.start_at == datetime(2026, 12, 5, 22, tzinfo=timezone.utc).timestamp()
    assert one_off.end_at - one_off.start_at == 4 * 3600
    (lunch,) = cfg.maintenance.services["user"]
    assert lunch.service == "user" and lunch.length == 1800 and len(lunch.starts) == 5
    assert len(cfg.maintenance.windows("user")) == 3 and len(cfg.maintenance.windows("order")) == 2
    # Saturday 03:00 in Shanghai is Friday 19:00 UTC.
    sat_3am = datetime(2026, 12, 5, 3, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    assert active_window(cfg.maintenance, "order", sat_3am) is weekly
    assert active_window(cfg.maintenance, "order", sat_3am + 3600) is None
    assert in_maintenance(cfg.maintenance, ["order", "user", "order"], sat_3am) == {"order": weekly, "user": weekly}
    # A run that starts before the window and ends in it counts as inside it.
    assert active_window(cfg.maintenance, "order", sat_3am - 7200, sat_3am) is weekly


def test_no_windows_is_falsy(tmp_path: Path) -> None:
    assert not load_config(config(tmp_path, "env: prod\n")).maintenance
    assert not MaintenanceSettings()


@pytest.mark.parametrize(("text", "field", "message"), [
    ('maintenance: [{days: [sat, sunn], start: "02:00", end: "04:00"}]', "maintenance[0].days",
     "unknown weekday 'sunn' (did you mean 'sun'?)"),
    ('maintenance: [{days: [sat], start: "25:00", end: "04:00"}]', "maintenance[0].start", "not a time of day"),
    ('maintenance: [{days: [sat], start: "02:00", end: "02:00"}]', "maintenance[0].end", "the window is empty"),
    ('maintenance: [{days: [sat], start: 2, end: "04:00"}]', "maintenance[0].start", "expected a time of day"),
    ('maintenance: [{start: "2026-12-06 02:00", end: "2026-12-05 22:00"}]', "maintenance[0].end",
     "ends before it starts"),
    ('maintenance: [{start: "2026-12-05 22:00", end: "2026-12-05 22:00"}]', "maintenance[0].end",
     "ends before it starts"),
    ('maintenance: [{start: "2026-13-05 22:00", end: "2026-12-06"}]', "maintenance[0].start",
     "expected a date and time"),
    ('maintenance: [{start: "22:00", end: "23:00"}]', "maintenance[0].start", "a weekly window needs 'days'"),
    ('maintenance: [{days: [sat], start: "02:00", end: "04:00", timezone: Mars/Base}]',
     "maintenance[0].timezone", "unknown time zone 'Mars/Base'"),
    ('maintenance: [{days: [sat], start: "02:00"}]', "maintenance[0]", "needs 'end' or 'duration'"),
    ('maintenance: [{days: [sat], start: "02:00", end: "03:00", duration: 1h}]', "maintenance[0].duration",
     "either 'end' or 'duration'"),
    ('maintenance: [{days: [sat], start: "02:00", end: "03:00", every: 1}]', "maintenance[0].every",
     "unknown key 'every'"),
    ("maintenance: yes", "maintenance", "expected a list of windows"),
    ('services: {user: {maintenance: [{days: [xyz], start: "02:00", end: "03:00"}]}}',
     "services.user.maintenance[0].days", "unknown weekday 'xyz'"),
])
def test_bad_windows_name_file_line_and_field(tmp_path: Path, text: str, field: str, message: str) -> None:
    path = config(tmp_path, "env: prod\n" + text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.field == field and message in err.value.message, str(err.value)
    assert err.value.file == str(path) and err.value.line == 2


def test_days() -> None:
    assert parse_days("daily") == tuple(range(7))
    assert parse_days(["mon-fri"]) == (0, 1, 2, 3, 4)
    assert parse_days(["sat-mon"]) == (0, 5, 6)  # a range over the week's end
    assert parse_days(["周六", "星期日", "Friday"]) == (4, 5, 6)
    assert parse_days("sat, sun") == (5, 6)


def test_one_off_with_an_offset_ignores_the_zone() -> None:
    w = window({"start": "2026-12-05T22:00+08:00", "end": "2026-12-05T23:00+08:00"}, zone="America/New_York")
    assert w.start_at == datetime(2026, 12, 5, 14, tzinfo=timezone.utc).timestamp()


def test_dst_gap_and_repeat_for_one_off_windows() -> None:
    ny = ZoneInfo("America/New_York")
    # 2026-03-08 02:30 does not exist in New York: the window starts when the clock jumps (07:00 UTC).
    w = window({"start": "2026-03-08 02:30", "end": "2026-03-08 04:00"}, zone="America/New_York")
    assert w.start_at == datetime(2026, 3, 8, 7, tzinfo=timezone.utc).timestamp()
    # 2026-11-01 01:30 happens twice: its first occurrence (EDT, 05:30 UTC).
    w = window({"start": "2026-11-01 01:30", "end": "2026-11-01 03:00"}, zone="America/New_York")
    assert w.start_at == datetime(2026, 11, 1, 1, 30, tzinfo=ny).timestamp()
    assert w.start_at == datetime(2026, 11, 1, 5, 30, tzinfo=timezone.utc).timestamp()


def test_weekly_window_in_the_dst_gap_and_in_the_repeated_hour() -> None:
    ny = ZoneInfo("America/New_York")
    w = window({"days": ["sun"], "start": "02:00", "end": "03:30"}, zone="America/New_York")
    jump = datetime(2026, 3, 8, 7, tzinfo=timezone.utc).timestamp()  # 02:00 EST -> 03:00 EDT
    assert not w.active(jump - 1) and w.active(jump) and w.active(jump + 1799) and not w.active(jump + 1800)
    w = window({"days": ["sun"], "start": "01:15", "end": "01:45"}, zone="America/New_York")
    first = datetime(2026, 11, 1, 1, 20, tzinfo=ny).timestamp()
    assert w.active(first) and w.active(first + 3600)  # the repeated hour: active both times


# ---------------------------------------------------------------- the matcher, by property


def _reference(days: list[int], start: int, end: int, local: datetime) -> bool:
    """Minute-of-week set built by enumeration, independent of the matcher's modular arithmetic."""
    covered: set[int] = set()
    length = end - start if end > start else end + DAY - start
    for d in days:
        m = d * 1440 + start // 60
        covered.update((m + k) % (WEEK // 60) for k in range(length // 60))
    return local.weekday() * 1440 + local.hour * 60 + local.minute in covered


def _transitions(zone: ZoneInfo) -> list[float]:
    """UTC instants (2020-2030) where the zone's offset changes, found hour by hour."""
    out = []
    t = datetime(2020, 1, 1, tzinfo=timezone.utc)
    prev = t.astimezone(zone).utcoffset()
    while t.year < 2030:
        t += timedelta(hours=1)
        off = t.astimezone(zone).utcoffset()
        if off != prev:
            out.append(t.timestamp())
            prev = off
    return out


_TRANSITIONS = {name: _transitions(ZoneInfo(name)) for name in ZONES if name != "UTC"}


@st.composite
def instants(draw: st.DrawFn) -> tuple[str, float]:
    zone = draw(st.sampled_from(ZONES))
    if zone != "UTC" and _TRANSITIONS[zone] and draw(st.booleans()):  # near a DST change
        at = draw(st.sampled_from(_TRANSITIONS[zone])) + draw(st.integers(-3 * 3600, 3 * 3600))
    else:
        at = draw(st.integers(int(datetime(2020, 1, 1).timestamp()), int(datetime(2030, 1, 1).timestamp())))
    return zone, float(at // 60 * 60)  # whole minutes: the reference counts minutes


windows = st.tuples(st.lists(st.integers(0, 6), min_size=1, max_size=7, unique=True),
                    st.integers(0, 1439), st.integers(1, 1440))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@settings(max_examples=400, deadline=None)
@given(windows, instants())
def test_weekly_window_matches_the_local_wall_clock(spec: tuple[list[int], int, int], when: tuple[str, float]) -> None:
    days, start, end = spec
    if end == start:
        end = (start + 1) % 1440 or 1440
    zone, at = when
    w = window({"days": [("mon", "tue", "wed", "thu", "fri", "sat", "sun")[d] for d in days],
                "start": _clock(start), "end": _clock(end)}, zone=zone)
    local = datetime.fromtimestamp(at, ZoneInfo(zone))
    assert w.active(at) == _reference(days, start * 60, end * 60, local)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6), st.integers(1, 1439), st.integers(0, 1438), instants())
def test_a_window_past_midnight_is_its_two_halves(day: int, start: int, end: int,
                                                  when: tuple[str, float]) -> None:
    """sun 23:00–01:00 is sun 23:00–24:00 plus mon 00:00–01:00 (over the week's end too)."""
    end = min(end, start - 1)  # end < start: past midnight
    zone, at = when
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    whole = window({"days": [names[day]], "start": _clock(start), "end": _clock(end)}, zone=zone)
    evening = window({"days": [names[day]], "start": _clock(start), "end": "24:00"}, zone=zone)
    morning = window({"days": [names[(day + 1) % 7]], "start": "00:00", "end": _clock(end)}, zone=zone) \
        if end > 0 else None
    assert whole.active(at) == (evening.active(at) or (morning is not None and morning.active(at)))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9), st.integers(1, 30 * 86400), st.integers(-86400, 40 * 86400))
def test_one_off_window_is_half_open(start: int, length: int, delta: int) -> None:
    at = datetime.fromtimestamp(start, timezone.utc)
    w = window({"start": at.isoformat(), "end": (at + timedelta(seconds=length)).isoformat()})
    assert w.active(start + delta) == (0 <= delta < length)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 1, 1)))
def test_one_off_local_times_map_to_their_first_instant(zone: str, naive: datetime) -> None:
    naive = naive.replace(microsecond=0)
    z = ZoneInfo(zone)
    w = window({"start": naive.isoformat(sep=" "), "duration": "1h"}, zone=zone)
    assert w.start_at is not None
    reads = datetime.fromtimestamp(w.start_at, z).replace(tzinfo=None)
    if reads == naive:  # an existing time: no earlier instant reads the same
        earlier = datetime.fromtimestamp(w.start_at - 3600 * 3, z).replace(tzinfo=None)
        assert earlier != naive or earlier.replace(tzinfo=z).timestamp() >= w.start_at
    else:  # skipped by a DST gap: the clock jumps past it at start_at
        before = datetime.fromtimestamp(w.start_at - 1, z).replace(tzinfo=None)
        assert before < naive < reads
