"""The scheduler with a 1 s (or shorter) interval and tiny fake commands: grid alignment, no overlap,
monitor-broken / repaired alerts, heartbeats, SIGTERM letting the running cycle finish, and the CLI."""

from __future__ import annotations

import itertools
import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fake_wecom import KEY, FakeClock, FakeWeCom

from pytest_apimon import watch
from pytest_apimon.__main__ import main, split_args
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import StateStore
from pytest_apimon.watch import (
    SLEEP_CHUNK,
    Cycle,
    WatchAlerts,
    Watcher,
    describe_exit,
    find_config,
    next_daily,
    next_slot,
    pytest_command,
)

PY = sys.executable


def py(code: str) -> list[str]:
    return [PY, "-c", code]


def test_grid_helpers() -> None:
    assert next_slot(1000.0, 900) == 1800 and next_slot(1799.9, 900) == 1800 and next_slot(1800, 900) == 2700
    now = time.mktime((2024, 3, 9, 10, 30, 0, 0, 0, -1))
    assert time.localtime(next_daily(now, "09:00"))[:5] == (2024, 3, 10, 9, 0)
    assert time.localtime(next_daily(now, "11:15"))[:5] == (2024, 3, 9, 11, 15)
    with pytest.raises(ValueError, match="09:00"):
        next_daily(now, "25:00")
    assert describe_exit(4).startswith("exit code 4 (usage error")
    assert describe_exit(-9) == "killed by SIGKILL" and describe_exit(None, "No such file").endswith("No such file")


def test_command_and_args() -> None:
    assert pytest_command(["pool/", "-n", "4"], python="py") == ["py", "-m", "pytest", "--apimon", "pool/", "-n", "4"]
    assert pytest_command(["-n", "2", "--apimon", "p"], python="py")[3:] == ["-n", "2", "--apimon", "p"]
    with pytest.raises(ValueError, match="Interface-pool path first"):
        pytest_command(["-n", "4", "pool"])
    assert split_args(["--every", "15m", "--run-now", "--heartbeat=09:00", "pool", "--every", "x"]) == (
        ["--every", "15m", "--run-now", "--heartbeat=09:00"], ["pool", "--every", "x"])
    assert split_args(["--every", "1s", "--", "--run-now"]) == (["--every", "1s"], ["--run-now"])


def test_find_config(tmp_path: Path) -> None:
    assert find_config([], None, str(tmp_path)) is None
    (tmp_path / "config.yaml").write_text("{}")
    assert find_config([], None, str(tmp_path)) == tmp_path / "config.yaml"
    assert find_config(["--apimon-config=x.yaml"], None, str(tmp_path)) == tmp_path / "x.yaml"
    assert find_config(["--apimon-config", "x.yaml"], "y.yaml", str(tmp_path)) == tmp_path / "y.yaml"


class SlowCycles(Watcher):
    """Every cycle's command runs for real (instantly) but takes `run_for` seconds of the fake clock."""

    def __init__(self, *args: Any, clock: FakeClock, run_for: float, **kwargs: Any) -> None:
        super().__init__(*args, clock=clock.now, sleep=clock.sleep, **kwargs)
        self.fake, self.run_for = clock, run_for

    def _run_cycle(self, slot: float) -> Cycle:
        cycle = super()._run_cycle(slot)
        self.fake.sleep(self.run_for)
        cycle.finished_at = self.fake.now()
        return cycle


def test_starts_are_aligned_to_the_grid() -> None:
    clock = FakeClock(start=1000.3)
    w = Watcher(1.0, py("pass"), cycles=3, echo=False, clock=clock.now, sleep=clock.sleep)
    w.run()
    assert [(c.slot, c.started_at, c.returncode) for c in w.cycles] == [(1001.0, 1001.0, 0), (1002.0, 1002.0, 0),
                                                                         (1003.0, 1003.0, 0)]
    assert all(s <= SLEEP_CHUNK for s in clock.slept)  # a signal is noticed within one chunk


def test_no_overlap_when_a_run_is_longer_than_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pytest_apimon.watch")
    w = SlowCycles(0.5, py("pass"), cycles=3, echo=False, clock=FakeClock(start=1000.0), run_for=0.8)
    w.run()
    # 1000.5 runs until 1001.3: the 1001.0 slot is overdue and starts at once, so it runs until 1002.1; the 1001.5
    # slot is missed entirely; 1002.0 is overdue again. Never two at once, always back on the 0.5 s grid.
    assert [tuple(round(t, 6) for t in (c.slot, c.started_at, c.finished_at)) for c in w.cycles] == [
        (1000.5, 1000.5, 1001.3), (1001.0, 1001.3, 1002.1), (1002.0, 1002.1, 1002.9)]
    warnings = [r.getMessage() for r in caplog.records if "longer than the 0.5s interval" in r.getMessage()]
    assert len(warnings) == 2 and "(1 slot(s) skipped)" in warnings[1], warnings


def test_broken_alert_once_then_repaired(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.write_text("4")
    events: list[tuple[str, Cycle, float]] = []

    def broken(cycle: Cycle, since: float) -> None:
        events.append(("broken", cycle, since))
        if len([e for e in events if e[0] == "broken"]) == 1:
            return
        code.write_text("0")

    script = ("import pathlib, sys; print('config.yaml: bad thing'); "
              f"sys.exit(int(pathlib.Path({str(code)!r}).read_text()))")
    clock = FakeClock(start=1000.0)
    w = Watcher(0.25, py(script), cycles=4, echo=False, broken_remind=0.4, on_broken=broken,
                on_repaired=lambda c, s: events.append(("repaired", c, s)), clock=clock.now, sleep=clock.sleep)
    w.run()
    kinds = [(e[0], e[1].slot) for e in events]
    # 1st cycle broken: alert; 2nd (0.25 s later, inside broken_remind): no repeat; 3rd: repeated; 4th: works.
    assert kinds == [("broken", 1000.25), ("broken", 1000.75), ("repaired", 1001.0)], kinds
    first = events[0][1]
    assert first.returncode == 4 and "config.yaml: bad thing" in first.tail
    assert events[1][2] == events[0][2] == events[2][2] == first.started_at == 1000.25  # broken since the 1st cycle


def test_command_that_cannot_start_is_broken() -> None:
    seen: list[Cycle] = []
    clock = FakeClock()
    Watcher(0.2, ["/nonexistent/apimon-cmd"], cycles=1, run_now=True, echo=False,
            on_broken=lambda c, s: seen.append(c), clock=clock.now, sleep=clock.sleep).run()
    assert seen and seen[0].returncode is None and "No such file" in seen[0].error


def test_heartbeat_fires_while_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "next_daily", lambda now, hhmm, tz=None: now + 0.25)
    beats: list[tuple[float, float]] = []
    clock = FakeClock(start=1000.0)
    w = Watcher(1.0, py("pass"), heartbeat="09:00", cycles=1, echo=False,
                on_heartbeat=lambda now, nxt: beats.append((now, nxt)), clock=clock.now, sleep=clock.sleep)
    w.run()
    # Due every 0.25 s (patched) while waiting for the 1001.0 slot, the one at 1001.0 too; each names that slot.
    assert [round(now, 6) for now, _ in beats] == [1000.25, 1000.5, 1000.75, 1001.0]
    assert {nxt for _, nxt in beats} == {1001.0} and w.cycles[0].started_at == 1001.0


def test_failing_hook_does_not_stop_the_watcher() -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("notifier exploded")

    clock = FakeClock()
    w = Watcher(0.2, py("raise SystemExit(3)"), cycles=2, run_now=True, echo=False, on_broken=boom,
                broken_remind=0, clock=clock.now, sleep=clock.sleep)
    assert w.run() == 0 and len(w.cycles) == 2


# The child cycle waits for the test's go-ahead file, so the signal always arrives while the cycle runs.
SIGTERM_WATCHER = textwrap.dedent("""
    import sys
    from pytest_apimon.watch import Watcher
    marker, go = sys.argv[1], sys.argv[2]
    cmd = [sys.executable, "-c", "import os, time; print('started', flush=True)\\n"
           f"while not os.path.exists({go!r}): time.sleep(0.01)\\n"
           f"open({marker!r}, 'a').write('done\\\\n')"]
    w = Watcher(0.5, cmd, run_now=True)
    w.install_signal_handlers()
    sys.exit(w.run())
""")


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_the_current_cycle_finish(tmp_path: Path, sig: signal.Signals) -> None:
    marker, go = tmp_path / "done", tmp_path / "go"
    proc = subprocess.Popen([PY, "-c", SIGTERM_WATCHER, str(marker), str(go)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().strip() == b"started"
    proc.send_signal(sig)
    assert b"letting the current cycle finish" in proc.stderr.readline()  # the watcher took the signal…
    go.touch()  # …before the cycle may end
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert marker.read_text() == "done\n"  # the cycle finished (it delivers its own report) and no other began


def workspace(tmp_path: Path, base_url: str) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(textwrap.dedent(f"""
        env: prod
        notify:
          wecom:
            - name: ops
              webhook: {KEY}
              base_url: {base_url}
              mention: {{userids: [zhangsan]}}
    """), encoding="utf-8")
    return cfg


@pytest.mark.integration
def test_watch_alerts_through_the_notifier(tmp_path: Path) -> None:
    with FakeWeCom() as fake:
        alerts = WatchAlerts(workspace(tmp_path, fake.base_url))
        cycle = Cycle(slot=0, started_at=time.time(), finished_at=time.time(), returncode=4,
                      tail=["ERROR: pytest-apimon: invalid config: services.x: unknown key"])
        alerts.broken(cycle, cycle.started_at)
        alerts.heartbeat(time.time(), time.time() + 900)  # no history yet
        with StateStore.in_dir(tmp_path / ".apimon") as store:
            now = time.time()
            store.record_run(RunResult(now - 60, now - 50, "prod", [
                InterfaceResult(nodeid="n", service="s", module="m", name="a", outcome="passed")]), {})
        alerts.heartbeat(time.time(), time.time() + 900)
        alerts.repaired(cycle, cycle.started_at)
        texts = [m.content for m in fake.messages]
        assert len(texts) == 4
        assert "监控故障" in texts[0] and "退出码 4（用法错误" in texts[0] and "unknown key" in texts[0]
        assert "<@zhangsan>" in texts[0] and "<@zhangsan>" not in texts[1]
        assert "尚无运行记录" in texts[1]
        assert "运行 1 次" in texts[2] and "可用率 100.00%" in texts[2] and "全部接口正常" in texts[2]
        assert "监控已恢复" in texts[3]
        assert not any("监控运行正常" in t for t in texts)


def test_heartbeat_says_what_is_down(tmp_path: Path) -> None:
    from pytest_apimon.policy import DOWN, OPEN, InterfaceState, RunMemory

    with FakeWeCom() as fake:
        alerts = WatchAlerts(workspace(tmp_path, fake.base_url))
        with StateStore.in_dir(tmp_path / ".apimon") as store:
            now = time.time()
            states = {"order/下单": InterfaceState("order/下单", "order", status=DOWN, alerted=True),
                      "order/支付": InterfaceState("order/支付", "order", status=DOWN, breaker=OPEN),
                      "member/登录": InterfaceState("member/登录", "member")}
            store.record_run(RunResult(now - 60, now - 50, "prod", [
                InterfaceResult(nodeid="n", service="order", module="m", name="下单", outcome="failed")]),
                states, RunMemory())
        alerts.heartbeat(time.time(), time.time() + 900)
        (text,) = [m.content for m in fake.messages]
        assert "监控运行中，1 个接口故障，1 个熔断中" in text and "监控运行正常" not in text
        assert "order/下单" in text and "order/支付" in text and "member/登录" not in text


def test_heartbeat_never_says_all_up_while_the_monitoring_is_incomplete(tmp_path: Path) -> None:
    """The last run lost an xdist worker (policy.unchecked_step remembers the services left unchecked): nothing
    is known down, but the heartbeat does not say every interface is up."""
    from pytest_apimon.policy import InterfaceState, RunMemory

    with FakeWeCom() as fake:
        alerts = WatchAlerts(workspace(tmp_path, fake.base_url))
        with StateStore.in_dir(tmp_path / ".apimon") as store:
            now = time.time()
            store.record_run(RunResult(now - 60, now - 50, "prod", [
                InterfaceResult(nodeid="n", service="member", module="m", name="登录", outcome="passed")]),
                {"member/登录": InterfaceState("member/登录", "member")},
                RunMemory(unchecked_names=["order"], unchecked_since=now - 60, unchecked_last_alert_at=now - 60))
        alerts.heartbeat(time.time(), time.time() + 900)
        (text,) = [m.content for m in fake.messages]
        assert "监控运行中，监控不完整" in text and "全部接口正常" not in text
        assert "监控不完整：最近的运行未检查全部接口（order）" in text


@pytest.mark.integration
def test_cli_end_to_end_broken_cycle(tmp_path: Path) -> None:
    with FakeWeCom() as fake:
        cfg = workspace(tmp_path, fake.base_url)
        proc = subprocess.run(
            [PY, "-m", "pytest_apimon", "watch", "--every", "1s", "--run-now", "--cycles", "1", "--config", str(cfg),
             "no-such-pool/", "-p", "no:cacheprovider", "--apimon-config", str(cfg)],
            cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        # report.language zh (the default): the watcher's own stderr lines are Chinese too (issue 20)
        assert "监控本身出错：退出码 4" in proc.stderr and "错误" in proc.stderr
        assert len(fake.messages) == 1 and "路径不存在" in fake.messages[0].content


def test_cli_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([]) == 2 and main(["--help"]) == 0 and main(["frobnicate"]) == 2
    with pytest.raises(SystemExit):
        main(["watch", "--every", "soon", "pool"])
    with pytest.raises(SystemExit):
        main(["watch", "--every", "1m", "-n", "4"])
    (tmp_path / "bad.yaml").write_text("bogus_key: 1\n")
    assert main(["watch", "--every", "1m", "--config", str(tmp_path / "bad.yaml"), "pool"]) == 4
    assert "配置错误" in capsys.readouterr().err  # the config cannot say its language: zh, the default
    assert main(["watch", "--every", "1m", "--config", str(tmp_path / "bad.yaml"), "pool", "--apimon-lang", "en"]) == 4
    assert "invalid config" in capsys.readouterr().err


# ---- the schedule in the team's time zone (issue 14, requirement 7)

def _local(ts: float, zone: str):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(zone))


def _slots(start: float, every: float, zone: str, n: int) -> list[float]:
    tz = watch.resolve_timezone(zone)
    out, t = [], start
    for _ in range(n):
        t = watch.next_slot(t, every, tz)
        out.append(t)
    return out


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Adelaide"])
def test_daily_run_lands_at_local_midnight_across_dst(zone: str) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    start = datetime(2026, 3, 5, 12, 0, tzinfo=ZoneInfo(zone)).timestamp()  # spans the March DST changes
    slots = _slots(start, 86400, zone, 40)
    assert all((_local(s, zone).hour, _local(s, zone).minute) == (0, 0) for s in slots)
    days = [_local(s, zone).date() for s in slots]
    assert len(set(days)) == 40 and days == sorted(days)


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Australia/Adelaide", "America/St_Johns", "America/New_York"])
def test_hourly_run_lands_on_the_local_hour_in_half_hour_zones(zone: str) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    start = datetime(2026, 3, 7, 12, 10, tzinfo=ZoneInfo(zone)).timestamp()
    slots = _slots(start, 3600, zone, 24 * 40)  # past the DST change of every zone with one
    assert all(_local(s, zone).minute == 0 for s in slots)
    assert all(b > a for a, b in itertools.pairwise(slots))


def test_default_zone_is_the_machines_and_last_slot_is_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_mod

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time_mod.tzset()
    try:
        now = 1_790_000_000.0
        slot = watch.next_slot(now, 3600)
        assert time_mod.localtime(slot).tm_min == 0 and 0 < slot - now <= 3600
        assert watch.last_slot(slot, 3600) == slot and watch.last_slot(slot - 1, 3600) == slot - 3600
        day = watch.next_slot(now, 86400)
        assert time_mod.localtime(day)[3:5] == (0, 0)
    finally:
        monkeypatch.delenv("TZ")
        time_mod.tzset()


def test_unknown_time_zone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Asia/Shanghai"):
        watch.resolve_timezone("Mars/Olympus")


def test_healthy_cycles_read_healthy_and_waits_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert watch.describe_exit(0).startswith("exit code 0 (healthy")
    assert "healthy" in watch.describe_exit(1) and "unexpected" not in watch.describe_exit(0)
    caplog.set_level("INFO", logger="pytest_apimon.watch")
    Watcher(1.0, py("print('[apimon-wait] waiting up to 300s for the run lock held by pid 42')"), run_now=True,
            cycles=1, echo=False).run()
    assert any("cycle waiting: waiting up to 300s for the run lock held by pid 42" in r.getMessage()
               for r in caplog.records)
    assert any("cycle finished: exit code 0 (healthy" in r.getMessage() for r in caplog.records)


# ---- `apimon watch --timezone` defaults to the config's report.timezone (issue 20, C)

class _Recorder:
    """Stands in for Watcher in `apimon watch`: records the schedule's zone, runs nothing."""

    seen: ClassVar[list[Any]] = []

    def __init__(self, *_args: Any, tz: Any = None, **_kwargs: Any) -> None:
        _Recorder.seen.append(tz)

    def install_signal_handlers(self) -> None:
        pass

    def run(self) -> int:
        return 0


@pytest.mark.parametrize("config_zone, option, expected_offset", [
    ("+08:00", None, 8 * 3600),             # the config's zone when --timezone is not given
    ("Asia/Shanghai", None, 8 * 3600),
    ("Asia/Shanghai", "+05:30", 5.5 * 3600),  # --timezone wins
    (None, "Asia/Kolkata", 5.5 * 3600),
])
def test_watch_schedule_zone_defaults_to_report_timezone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_zone: str | None, option: str | None,
        expected_offset: float) -> None:
    import pytest_apimon.__main__ as cli
    from pytest_apimon import times

    config = tmp_path / "config.yaml"
    config.write_text(f"report:\n  timezone: '{config_zone}'\n" if config_zone else "report: {}\n")
    monkeypatch.setattr(cli, "Watcher", _Recorder)
    monkeypatch.setattr(times, "_zone", None)
    _Recorder.seen.clear()
    args = ["watch", "--every", "1h", "--config", str(config), *(["--timezone", option] if option else []), "pool"]
    assert main(args) == 0
    (tz,) = _Recorder.seen
    from datetime import datetime
    assert datetime(2026, 6, 1, tzinfo=tz).utcoffset().total_seconds() == expected_offset
    # the times in the watcher's messages use the same zone as its schedule
    assert times.offset(1_790_000_000.0) == ("+08:00" if expected_offset == 8 * 3600 else "+05:30")


def test_watch_without_any_zone_keeps_the_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_apimon.__main__ as cli

    config = tmp_path / "config.yaml"
    config.write_text("report: {}\n")
    monkeypatch.setattr(cli, "Watcher", _Recorder)
    _Recorder.seen.clear()
    assert main(["watch", "--every", "1h", "--config", str(config), "pool"]) == 0
    assert _Recorder.seen == [None]
