"""Cross-process run lock: contention between processes, a clear timeout message, release on kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pytest_apimon.runlock import LockTimeout, RunLock, read_holder

HOLDER = textwrap.dedent("""
    import sys
    from pytest_apimon.runlock import RunLock
    with RunLock(sys.argv[1], timeout=5):
        print("locked", flush=True)
        sys.stdin.readline()  # holds the lock until the test says so (or the pipe closes)
    print("released", flush=True)
""")


def hold(state_dir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
    return proc


@pytest.mark.integration
def test_second_process_waits_then_gets_the_lock(tmp_path: Path) -> None:
    proc = hold(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    got: dict[str, object] = {}

    def second() -> None:
        with RunLock(tmp_path, timeout=120) as lock:  # a hang guard: the holder lets go as soon as it is told
            got["holder_released"] = proc.stdout.readline().strip() == b"released"  # type: ignore[union-attr]
            got["held"], got["holder"] = lock.held, read_holder(lock.path)

    waiter = threading.Thread(target=second)
    waiter.start()
    with pytest.raises(LockTimeout):
        RunLock(tmp_path, timeout=0).acquire()  # still held by the other process while the waiter waits
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    waiter.join(120)
    assert got["held"] is True and got["holder_released"] is True
    assert got["holder"]["pid"] == os.getpid()  # type: ignore[index]
    proc.wait(30)
    assert read_holder(tmp_path / "run.lock") == {}  # released: no stale holder info


@pytest.mark.integration
def test_timeout_names_the_holder(tmp_path: Path) -> None:
    proc = hold(tmp_path)
    try:
        with pytest.raises(LockTimeout) as exc:
            RunLock(tmp_path, timeout=0.3).acquire()
        message = str(exc.value)
        assert f"another pytest-apimon run (pid {proc.pid}, started " in message
        assert "holds the state lock" in message and "lock_timeout" in message
        assert exc.value.holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait(60)


@pytest.mark.integration
def test_kill_9_releases_the_lock(tmp_path: Path) -> None:
    proc = hold(tmp_path)
    with pytest.raises(LockTimeout):
        RunLock(tmp_path, timeout=0).acquire()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    with RunLock(tmp_path, timeout=2) as lock:  # the stale file holds no lock
        assert lock.held


def test_reentrant_acquire_and_double_release(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "new-dir", timeout=0)
    assert lock.acquire() is lock.acquire()
    lock.release()
    lock.release()
    assert not lock.held


def test_holder_file_masks_secrets_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The holder file records the command line; a robot key or password on it is masked like in every output."""
    import json

    from pytest_apimon.runlock import holder_path

    key = "693a91f6-7d2e-4bc4-97a0-0ec2d1fa5aaa"
    monkeypatch.setattr(sys, "argv", ["pytest", "--apimon-webhook",
                                      f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"])
    lock = RunLock(tmp_path, timeout=0).acquire()
    try:
        text = holder_path(lock.path).read_text()
    finally:
        lock.release()
    assert key[:4] not in text and "key=******" in json.loads(text)["argv"]
