"""One run at a time per workspace: a `filelock.FileLock` on `<state dir>/run.lock` (cron overlap, a manual
run during cron).

The OS drops the lock (flock on POSIX, LockFileEx on Windows) when its holder exits, however it dies
(kill -9 included), so a stale lock cannot exist; a lock file left behind holds no lock. The holder
writes its pid and start time to `run.lock.holder` so a waiting run can say who holds the lock; that
file is informational only, the lock is the FileLock. The token cache (tokencache.py) locks the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from . import times
from .atomicfile import atomic_write
from .errors import ApimonError
from .redact import Redactor, env_secrets, excerpt
from .statedir import PRIVATE_FILE

LOCK_FILE = "run.lock"
POLL_SECONDS = 0.1


class LockTimeout(ApimonError, RuntimeError):
    """Another run held the lock for longer than the wait allowed."""

    def __init__(self, path: Path, waited: float, holder: dict[str, Any]) -> None:
        self.path, self.waited, self.holder = path, waited, holder
        pid = holder.get("pid", "?")
        started = holder.get("started_at")
        when = times.short(started, time.time(), seconds=True) if isinstance(started, int | float) else "?"
        host = holder.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        super().__init__(
            f"another pytest-apimon run (pid {pid}{where}, started {when}) holds the state lock {path}; "
            f"waited {waited:.0f}s (state.lock_timeout). This run stops without checking or sending anything; "
            "if runs overlap regularly, lengthen the schedule interval or shorten the run")


class RunLock:
    """`with RunLock(state_dir, timeout=300): …` — waits up to `timeout` seconds (0: fail at once), then
    raises LockTimeout naming the holder. Re-entrant for the same object; release() twice is harmless."""

    def __init__(self, state_dir: str | Path, timeout: float = 300.0, *, name: str = LOCK_FILE) -> None:
        self.path = Path(state_dir) / name
        self.timeout = timeout
        self._lock: FileLock | None = None
        self.waited = 0.0  # how long acquire() waited, in seconds (worth a log line when > 0)

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> RunLock:
        if self._lock is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # thread_local=False: acquired and released by whichever thread runs the end of the run.
        lock = FileLock(self.path, mode=PRIVATE_FILE, thread_local=False)
        start = time.monotonic()
        try:
            lock.acquire(timeout=max(0.0, self.timeout), poll_interval=POLL_SECONDS)
        except Timeout:
            self.waited = time.monotonic() - start
            raise LockTimeout(self.path, self.waited, read_holder(self.path)) from None
        self.waited = time.monotonic() - start
        self._lock = lock
        info = {"pid": os.getpid(), "started_at": time.time(), "host": socket.gethostname(),
                # The command line may carry a robot key or a password (--apimon-webhook …?key=…): masked like
                # every other output, and cut only after masking (redact.excerpt).
                "argv": excerpt(" ".join(sys.argv), 300, Redactor(env_secrets()))}
        with contextlib.suppress(OSError):  # informational only: never fail the run over it
            atomic_write(holder_path(self.path), json.dumps(info))
        return self

    def release(self) -> None:
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        try:
            with contextlib.suppress(FileNotFoundError):
                holder_path(self.path).unlink()  # no stale holder info for the next waiter to report
        finally:
            lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_path(lock_path: str | Path) -> Path:
    """Where the holder of the lock at `lock_path` describes itself: `<lock>.holder`."""
    path = Path(lock_path)
    return path.with_name(path.name + ".holder")


def read_holder(path: str | Path) -> dict[str, Any]:
    """The holder info written by the owner of the lock at `path` ({} when unknown)."""
    try:
        data = json.loads(holder_path(path).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
