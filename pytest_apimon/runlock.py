"""One run at a time per workspace: an flock on `<state dir>/run.lock` (cron overlap, a manual run during cron).

The kernel drops an flock when its holder exits, however it dies (kill -9 included), so a stale lock
cannot exist. The holder writes its pid and start time into the file so a waiting run can say who
holds it; the file's content is informational only, the lock is the flock. POSIX only (fcntl).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

LOCK_FILE = "run.lock"
POLL_SECONDS = 0.1


class LockTimeout(RuntimeError):
    """Another run held the lock for longer than the wait allowed."""

    def __init__(self, path: Path, waited: float, holder: dict[str, Any]) -> None:
        self.path, self.waited, self.holder = path, waited, holder
        pid = holder.get("pid", "?")
        started = holder.get("started_at")
        when = time.strftime("%H:%M:%S", time.localtime(started)) if isinstance(started, int | float) else "?"
        host = holder.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        super().__init__(
            f"another pytest-apimon run (pid {pid}{where}, started {when}) holds the state lock {path}; "
            f"waited {waited:.0f}s (state.lock_timeout). This run stops without checking or sending anything; "
            "if runs overlap regularly, lengthen the schedule interval or shorten the run")


class RunLock:
    """`with RunLock(state_dir, timeout=300): …` — waits up to `timeout` seconds (0: fail at once)."""

    def __init__(self, state_dir: str | Path, timeout: float = 300.0, *, name: str = LOCK_FILE) -> None:
        self.path = Path(state_dir) / name
        self.timeout = timeout
        self._fd: int | None = None
        self.waited = 0.0  # how long acquire() waited (worth a log line when > 0)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_CLOEXEC: the pytest subprocesses (xdist workers) must not inherit and outlive the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                self.waited = time.monotonic() - start
                if self.waited >= self.timeout:
                    holder = read_holder(self.path)
                    os.close(fd)
                    raise LockTimeout(self.path, self.waited, holder) from None
                time.sleep(min(POLL_SECONDS, max(0.0, self.timeout - self.waited)))
        self._fd = fd
        info = {"pid": os.getpid(), "started_at": time.time(), "host": socket.gethostname(),
                "argv": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale holder info for the next waiter to report
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(path: str | Path) -> dict[str, Any]:
    """The holder info written by the lock owner ({} when unknown or being rewritten)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
