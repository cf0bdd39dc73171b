"""The state folder and the modes of the files pytest-apimon writes.

The state folder (`.apimon/` by default: history database, token cache, outbox, parse cache, log) holds
live tokens and the history of every failure, so it is private: mode 0700, with a `.gitignore` holding
`*` so that `git add -A` in the workspace never stages it. Files written there are 0600. Reports and
the log are 0600 too unless `report.publish: true` says the team serves them (a web server or
node_exporter running as another user then needs 0644).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SHARED_FILE = 0o644
GITIGNORE = "*\n"


def file_mode(publish: bool) -> int:
    """0o644 when the team publishes its reports (`report.publish: true`), else 0o600."""
    return SHARED_FILE if publish else PRIVATE_FILE


def ensure_state_dir(path: str | os.PathLike[str], workspace: str | os.PathLike[str] | None = None) -> Path:
    """Create the state folder 0700 with its `.gitignore` (`*`); an existing one is tightened to 0700 and
    gets the `.gitignore` too, unless it is the workspace folder itself. Raises OSError."""
    folder = Path(path)
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if workspace is not None and folder.resolve() == Path(workspace).resolve():
        return folder  # `state.dir: .` puts state next to config.yaml: never chmod or ignore the workspace
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        with contextlib.suppress(OSError):  # not ours to change (another owner): the files stay 0600
            os.chmod(folder, PRIVATE_DIR)
    ignore = folder / ".gitignore"
    with contextlib.suppress(OSError):
        # Created 0600 like every other file in the folder (O_EXCL: a user's own .gitignore is never replaced);
        # one left 0644 by an older version is tightened.
        fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(GITIGNORE)
    make_private(ignore)
    return folder


def make_private(*paths: str | os.PathLike[str]) -> None:
    """chmod 0600 the files that exist (a database and its -wal/-shm files, a log): never raises."""
    for p in paths:
        with contextlib.suppress(OSError):
            if os.path.exists(p) and stat.S_IMODE(os.stat(p).st_mode) != PRIVATE_FILE:
                os.chmod(p, PRIVATE_FILE)
