"""Walking a pool the way pytest's collection does: directory symlinks are followed, a link back up its own tree
is skipped (as in plugin.pytest_ignore_collect), hidden files and folders are left out.

Path.rglob does not follow directory links before Python 3.13 and os.walk does not by default, so a service linked
into the pool (`pool/shop -> ../shared/shop`), which the collection checks, was invisible to code walking the pool.
Paths keep the spelling under `root` (the links, not their targets), like the collection's node ids.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def files_under(root: Path) -> list[Path]:
    """Every non-hidden file under the folder `root`, sorted."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = here.resolve()
        keep = []
        for name in dirnames:
            if name.startswith("."):
                continue
            sub = here / name
            if sub.is_symlink():
                try:
                    target = sub.resolve(strict=True)
                except (OSError, RuntimeError):  # broken or looping link
                    continue
                if target == real or target in real.parents:
                    continue
            keep.append(name)
        dirnames[:] = keep
        found += [here / name for name in filenames if not name.startswith(".")]
    return sorted(found)


def is_regular_or_dir(entry: os.DirEntry[str]) -> bool:
    """Whether a directory entry is a regular file or a folder (after following links).

    False for a broken symlink, a symlink loop (ELOOP), a FIFO, a socket or a device: pytest's own directory
    collector (_pytest.main.Dir) silently skips those, so a document named like one would vanish from the run.
    """
    try:
        return entry.is_file() or entry.is_dir()
    except OSError:  # ELOOP and other errors following the link
        return False


def unreadable_reason(path: Path, exc: OSError | None = None) -> str:
    """Why `path` cannot be read as a document, in the user's terms: a broken symlink (naming its target),
    a symlink loop, or the OS error `exc`."""
    if path.is_symlink():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python 3.11 signals a loop this way
            return f"symlink loop ({path.name} -> {target})"
        except OSError as err:
            if err.errno == errno.ELOOP:
                return f"symlink loop ({path.name} -> {target})"
            return f"broken symlink to {target} ({err.strerror or err})"
    if exc is not None:
        return f"cannot read file: {exc.strerror or exc}"
    return "cannot read file"
