"""Atomic file replacement: the one way pytest-apimon writes a file that someone else may read meanwhile
(the token cache, the outbox, the parse cache, reports, the status page, the Prometheus textfile).

A reader (another run, a web server, node_exporter's textfile collector) sees the old file or the complete
new one, never half of it, even across a crash: the data goes to a temporary file in the same folder, is
fsync'ed, gets its final mode, and is renamed over the target (`os.replace`, atomic on POSIX and Windows);
the folder is then fsync'ed so the rename itself survives a power cut (where the platform allows it).
The temporary file is created 0600 (O_EXCL, never an existing file or a symlink), so a secret is never
readable by others, not even for a moment; its name starts with '.' and ends in '.tmp', so globs such as
the textfile collector's `*.prom` never pick it up. File modes follow statedir.py's policy.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path

from .statedir import PRIVATE_FILE

_REPLACE_TRIES = 5  # Windows: os.replace fails while a reader has the target open for a moment


def atomic_write(path: str | os.PathLike[str], data: str | bytes | Iterable[str], *,
                 mode: int = PRIVATE_FILE) -> Path:
    """Replace `path` with `data` (str: UTF-8 with '\\n' line ends; or str pieces, written as they come, so a
    large report is never held whole) atomically; the file gets `mode` (0600 unless the caller passes
    statedir.file_mode(publish)). Creates missing parent folders. Returns the path.

    Raises OSError (the target is then unchanged and no temporary file is left behind), and whatever producing
    the pieces raises (likewise)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload: Iterable[bytes] = ((data.encode("utf-8") if isinstance(data, str) else data,)
                                if isinstance(data, str | bytes) else (piece.encode("utf-8") for piece in data))
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in payload:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if mode != PRIVATE_FILE:
            os.chmod(tmp, mode)
        _replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def is_temporary(name: str) -> bool:
    """Whether a file name is one of atomic_write's temporary files (left behind only by a crashed writer),
    or of the outbox's own writer it replaced ('.<name>.tmp-<pid>-<hex>')."""
    return name.startswith(".") and (name.endswith(".tmp") or ".tmp-" in name)


def _replace(tmp: Path, target: Path) -> None:
    for attempt in range(_REPLACE_TRIES):
        try:
            os.replace(tmp, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == _REPLACE_TRIES - 1:
                raise
            time.sleep(0.02)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not possible everywhere (Windows, some network file systems)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
