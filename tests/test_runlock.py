"""Cross-process run lock: contention between processes, a clear timeout message, release on kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_apimon.runlock import LockTimeout, RunLock, read_holder

HOLDER = textwrap.dedent("""
    import sys, time
    from pytest_apimon.runlock import RunLock
    with RunLock(sys.argv[1], timeout=5):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", flush=True)
""")


def hold(state_dir: Path, seconds: float) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir), str(seconds)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
    return proc


def test_second_process_waits_then_gets_the_lock(tmp_path: Path) -> None:
    proc = hold(tmp_path, 0.8)
    start = time.monotonic()
    with RunLock(tmp_path, timeout=10) as lock:
        waited = time.monotonic() - start
        assert lock.held and 0.3 < waited < 5 and lock.waited > 0.3
        assert read_holder(lock.path)["pid"] == os.getpid()
    proc.wait(5)
    assert read_holder(tmp_path / "run.lock") == {}  # released: no stale holder info


def test_timeout_names_the_holder(tmp_path: Path) -> None:
    proc = hold(tmp_path, 30)
    try:
        with pytest.raises(LockTimeout) as exc:
            RunLock(tmp_path, timeout=0.3).acquire()
        message = str(exc.value)
        assert f"another pytest-apimon run (pid {proc.pid}, started " in message
        assert "holds the state lock" in message and "lock_timeout" in message
        assert exc.value.holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait(5)


def test_kill_9_releases_the_lock(tmp_path: Path) -> None:
    proc = hold(tmp_path, 60)
    with pytest.raises(LockTimeout):
        RunLock(tmp_path, timeout=0).acquire()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    with RunLock(tmp_path, timeout=2) as lock:  # the stale file holds no lock
        assert lock.held


def test_reentrant_acquire_and_double_release(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "new-dir", timeout=0)
    assert lock.acquire() is lock.acquire()
    lock.release()
    lock.release()
    assert not lock.held
