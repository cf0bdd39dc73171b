"""The scheduler with a 1 s (or shorter) interval and tiny fake commands: grid alignment, no overlap,
monitor-broken / repaired alerts, heartbeats, SIGTERM letting the running cycle finish, and the CLI."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom

from pytest_apimon import watch
from pytest_apimon.__main__ import main, split_args
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import StateStore
from pytest_apimon.watch import (
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


def test_starts_are_aligned_to_the_grid() -> None:
    w = Watcher(1.0, py("pass"), cycles=3, echo=False)
    w.run()
    assert len(w.cycles) == 3
    for c in w.cycles:
        assert c.slot == int(c.slot) and 0 <= c.late < 0.15 and c.returncode == 0
    assert [b.slot - a.slot for a, b in zip(w.cycles, w.cycles[1:], strict=False)] == [1.0, 1.0]


def test_no_overlap_when_a_run_is_longer_than_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pytest_apimon.watch")
    w = Watcher(0.5, py("import time; time.sleep(0.8)"), cycles=3, echo=False)
    w.run()
    for a, b in zip(w.cycles, w.cycles[1:], strict=False):
        assert b.started_at >= a.finished_at  # never two at once
        assert b.started_at - a.finished_at < 0.15  # the overdue run starts at once
        assert b.slot % 0.5 == 0
    assert any("longer than the 0.5s interval" in r.getMessage() for r in caplog.records)


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
    w = Watcher(0.3, py(script), cycles=4, echo=False, broken_remind=0.5, on_broken=broken,
                on_repaired=lambda c, s: events.append(("repaired", c, s)))
    w.run()
    kinds = [e[0] for e in events]
    # 1st cycle broken: alert; 2nd (0.3 s later, inside broken_remind): no repeat; 3rd: repeated; 4th: works.
    assert kinds == ["broken", "broken", "repaired"], kinds
    first = events[0][1]
    assert first.returncode == 4 and "config.yaml: bad thing" in first.tail
    assert events[1][2] == events[0][2] == events[2][2] == first.started_at  # broken since the first cycle


def test_command_that_cannot_start_is_broken() -> None:
    seen: list[Cycle] = []
    Watcher(0.2, ["/nonexistent/apimon-cmd"], cycles=1, run_now=True, echo=False,
            on_broken=lambda c, s: seen.append(c)).run()
    assert seen and seen[0].returncode is None and "No such file" in seen[0].error


def test_heartbeat_fires_while_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "next_daily", lambda now, hhmm: now + 0.25)
    beats: list[tuple[float, float]] = []
    Watcher(1.0, py("pass"), heartbeat="09:00", cycles=1, echo=False,
            on_heartbeat=lambda now, nxt: beats.append((now, nxt))).run()
    assert beats and all(nxt == int(nxt) for _, nxt in beats)


def test_failing_hook_does_not_stop_the_watcher() -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("notifier exploded")

    w = Watcher(0.2, py("raise SystemExit(3)"), cycles=2, run_now=True, echo=False, on_broken=boom,
                broken_remind=0)
    assert w.run() == 0 and len(w.cycles) == 2


SIGTERM_WATCHER = textwrap.dedent("""
    import sys
    from pytest_apimon.watch import Watcher
    marker = sys.argv[1]
    cmd = [sys.executable, "-c", "import time, sys; print('started', flush=True); time.sleep(1.2); "
           f"open({marker!r}, 'a').write('done\\\\n')"]
    w = Watcher(0.5, cmd, run_now=True)
    w.install_signal_handlers()
    sys.exit(w.run())
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_lets_the_current_cycle_finish(tmp_path: Path, sig: signal.Signals) -> None:
    marker = tmp_path / "done"
    proc = subprocess.Popen([PY, "-c", SIGTERM_WATCHER, str(marker)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"started"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert marker.read_text() == "done\n"  # the cycle finished (it delivers its own report) and no other began
    assert b"letting the current cycle finish" in err


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
        assert "监控故障" in texts[0] and "exit code 4" in texts[0] and "unknown key" in texts[0]
        assert "<@zhangsan>" in texts[0] and "<@zhangsan>" not in texts[1]
        assert "尚无运行记录" in texts[1]
        assert "运行 1 次" in texts[2] and "可用率 100.00%" in texts[2]
        assert "监控已恢复" in texts[3]


def test_cli_end_to_end_broken_cycle(tmp_path: Path) -> None:
    with FakeWeCom() as fake:
        cfg = workspace(tmp_path, fake.base_url)
        proc = subprocess.run(
            [PY, "-m", "pytest_apimon", "watch", "--every", "1s", "--run-now", "--cycles", "1", "--config", str(cfg),
             "no-such-pool/", "-p", "no:cacheprovider", "--apimon-config", str(cfg)],
            cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert "monitor broken: exit code 4" in proc.stderr
        assert len(fake.messages) == 1 and "path not found" in fake.messages[0].content


def test_cli_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([]) == 2 and main(["--help"]) == 0 and main(["frobnicate"]) == 2
    with pytest.raises(SystemExit):
        main(["watch", "--every", "soon", "pool"])
    with pytest.raises(SystemExit):
        main(["watch", "--every", "1m", "-n", "4"])
    (tmp_path / "bad.yaml").write_text("bogus_key: 1\n")
    assert main(["watch", "--every", "1m", "--config", str(tmp_path / "bad.yaml"), "pool"]) == 4
    assert "invalid config" in capsys.readouterr().err
