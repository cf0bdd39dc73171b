"""A per-host cap that holds across the processes of one run: xdist workers whose share of the cap would be 0.

Each xdist worker gets `max_per_host // N` of the per-host cap (sharding.divide), so the workers' caps add up to
at most the configured one. A cap smaller than the number of workers cannot be divided that way: every worker
keeps at least 1, and `max_per_host: 1` with `-n 4` let 4 requests reach one fragile host at once. For that case
the run has `cap` slot files per host in a folder the controller makes (plugin.XdistHooks); an attempt to the
host holds one of them, locked with `filelock.FileLock` (flock on POSIX, LockFileEx on Windows, as the run lock
in runlock.py), for as long as it runs. A lock is held by an open file, so two threads of one process conflict
as two processes do, and a killed worker's locks are released by the operating system.

Plain Python (no pytest import). An unusable folder (removed, full, not writable) must not stop the run: the
cap is then each worker's own (at least 1, as before), with one warning in the log.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger("pytest_apimon")


class _Unlimited:
    """The slot handed out when the folder is unusable: nothing is locked."""

    def release(self, force: bool = False) -> None:
        """Nothing to give back."""


_UNLIMITED = _Unlimited()


class HostSlots:
    """`cap` slots per host, shared by every process that opens the same `folder`."""

    def __init__(self, folder: Path, cap: int, *, poll: float = 0.02,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        """`folder`: the run's slot folder (created if missing); `cap`: attempts in flight to one host across all
        processes (at least 1); `poll`: seconds between tries of a blocking `hold`; `sleep(seconds)`: how `hold`
        waits (tests inject their own)."""
        self.folder = folder
        self.cap = max(1, cap)
        self.poll = poll
        self._sleep = sleep
        self._made = False
        self._broken = False  # the folder failed once: no cross-process cap for the rest of the run
        self._guard = threading.Lock()

    def _path(self, host: str, slot: int) -> Path:
        # Host names are user text (ports, IPv6 brackets, IDNA): a digest makes a safe, fixed-length file name.
        return self.folder / f"{hashlib.sha256(host.encode('utf-8')).hexdigest()[:24]}-{slot}.lock"

    def try_acquire(self, host: str) -> FileLock | _Unlimited | None:
        """A held slot of `host`, or None if all `cap` are held (by any process or thread). Never blocks, never
        raises: if the folder is unusable, a slot that locks nothing. Release it with `release`."""
        try:
            with self._guard:
                if self._broken:
                    return _UNLIMITED
                if not self._made:
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self._made = True
            for slot in range(self.cap):
                # A fresh lock object each time: filelock's objects are re-entrant, so reusing one held by another
                # thread of this process would "acquire" it a second time.
                lock = FileLock(self._path(host, slot), thread_local=False)
                try:
                    lock.acquire(timeout=0, blocking=False)
                except Timeout:
                    continue
                return lock
            return None
        except OSError as exc:
            with self._guard:
                if not self._broken:
                    self._broken = True
                    log.warning("per-host cap across xdist workers not enforced: slot folder %s unusable (%s); each "
                                "worker keeps its own cap", self.folder, exc)
            return _UNLIMITED

    @staticmethod
    def release(lock: FileLock | _Unlimited) -> None:
        """Give a slot from `try_acquire` back (any thread may release it)."""
        lock.release(force=True)

    @contextmanager
    def hold(self, host: str) -> Iterator[None]:
        """Wait for a slot of `host` (trying every `poll` seconds), hold it for the block, give it back."""
        lock = self.try_acquire(host)
        while lock is None:
            self._sleep(self.poll)
            lock = self.try_acquire(host)
        try:
            yield
        finally:
            self.release(lock)
