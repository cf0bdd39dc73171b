"""A run's temporary folders, and the removal of those a killed run left behind.

An xdist run makes up to two folders in the temp folder (tempfile.gettempdir()): `apimon-run-…`, shared by the
controller and its workers (per-host slots, hostslots.py; in-flight ledgers, inflight.py), and with
--apimon-no-token-cache `apimon-tokens-…`, the run's own token cache (tokens.json, 0600), so that the workers
still share one login. pytest_unconfigure removes both. A run killed with SIGTERM or SIGKILL cannot: Python runs
no cleanup on a signal's default action. So each name carries its maker (`<prefix><pid namespace>-<pid>-<random>`)
and the next run that makes such a folder first removes every one of this user whose maker no longer runs (sweep):
a run that promised to keep no token keeps it at most until the next run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

# What make() puts after the prefix: the namespace, the pid, and tempfile.mkdtemp's 8 random characters (its
# _RandomNameSequence: a-z, 0-9, _). A name that merely looks like it (a user's "apimon-run-…-backup") is not ours.
_MADE = re.compile(r"(?P<ns>\d+)-(?P<pid>\d+)-[a-z0-9_]{8}")
RUN_PREFIX = "apimon-run-"
TOKENS_PREFIX = "apimon-tokens-"
PREFIXES = (RUN_PREFIX, TOKENS_PREFIX)


def pid_namespace() -> str:
    """This process's PID namespace (the inode of /proc/self/ns/pid, Linux), "0" where there is none to read: two
    containers sharing a temp folder number their processes apart, so a pid is compared within its namespace only."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def make(prefix: str, base: str | Path | None = None) -> Path:
    """A new private folder (0700, tempfile.mkdtemp) in `base` (default: the temp folder), named
    `<prefix><pid namespace>-<pid>-<random>`. Raises OSError if it cannot be made."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{pid_namespace()}-{os.getpid()}-", dir=base))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: no signal sent, only "does it exist" (POSIX kill(2))
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, another user's
        return True
    return True


def sweep(base: str | Path | None = None, prefixes: tuple[str, ...] = PREFIXES) -> list[Path]:
    """Remove the folders in `base` (default: the temp folder) that make() named with one of `prefixes` (exactly
    its shape, _MADE), that belong to this user, and whose maker no longer runs in this PID namespace. A folder of
    another namespace, of another user, of a running process, a symlink, or any other name (an older version's,
    a user's look-alike) is left alone.
    POSIX only (on Windows, os.kill ends the process it is given): elsewhere nothing is removed. Returns the
    folders removed. Never raises."""
    if os.name != "posix":
        return []
    namespace = pid_namespace()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base if base is not None else tempfile.gettempdir()))
    except OSError:
        return []
    for entry in entries:
        prefix = next((p for p in prefixes if entry.name.startswith(p)), None)
        named = _MADE.fullmatch(entry.name[len(prefix):]) if prefix is not None else None
        if named is None or named["ns"] != namespace or _running(int(named["pid"])):
            continue
        try:
            if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        # An orphaned xdist worker of the killed run may still create a file in it (its login lock) while it is
        # removed, and the last rmdir then fails: try again, a few times, and say only what is gone (a red team).
        for _ in range(3):
            shutil.rmtree(entry.path, ignore_errors=True)
            if not os.path.lexists(entry.path):
                removed.append(Path(entry.path))
                break
    return removed
