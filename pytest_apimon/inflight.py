"""Which checks an xdist worker has in flight, kept on disk, so that a worker's death is blamed only where it can be.

xdist blames a dead worker on the item its main thread was running. A prefetching worker (scheduling.py) runs its
checks in the Runner's threads, many at once, ahead of that item: the check that killed the process may be any of
them, and the item xdist names is often a healthy interface merely waiting for its result (measured by a red team:
4 of 4 deaths blamed on a healthy interface, which then raised a false `crash` alert). So the worker's Runner
appends `+<key>` when an attempt starts and `-<key>` when it ends to a ledger file, written with one unbuffered
`os.write` per line (it survives the process being killed); the controller reads what was in flight at the death
(retries.CrashRerun).

Plain Python (no pytest import). Writing never raises: a ledger that cannot be written leaves the blame as
xdist gives it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class Ledger:
    """The append-only in-flight ledger of one worker, at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._broken = False
        self._lock = threading.Lock()

    def started(self, key: str) -> None:
        """An attempt of `key` (a node id) is being sent."""
        self._write(f"+{key}\n")

    def finished(self, key: str) -> None:
        """That attempt has its result (or was given up by the hang guard)."""
        self._write(f"-{key}\n")

    def _write(self, line: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.write(self._fd, line.encode("utf-8", "surrogateescape"))
            except OSError:
                self._broken = True

    def close(self) -> None:
        """Close the file (the ledger stays for the controller to read)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def in_flight(path: Path) -> set[str] | None:
    """The keys whose attempts were started and not finished, per the ledger at `path`; None when there is no
    ledger (the worker did not prefetch, or could not write it): nothing is known."""
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    running: dict[str, int] = {}
    for line in text.split("\n"):
        if line[:1] == "+":
            running[line[1:]] = running.get(line[1:], 0) + 1
        elif line[:1] == "-" and running.get(line[1:], 0) > 0:
            running[line[1:]] -= 1
    return {key for key, count in running.items() if count > 0}


def ledger_path(folder: Path, workerid: str) -> Path:
    """Where worker `workerid` ("gw0") keeps its ledger in the run's worker folder."""
    return folder / f"inflight-{workerid}"
