"""Walking a pool the way pytest's collection does: directory symlinks are followed, a link back up its own tree
is skipped (as in plugin.pytest_ignore_collect), hidden files and folders are left out.

Path.rglob does not follow directory links before Python 3.13 and os.walk does not by default, so a service linked
into the pool (`pool/shop -> ../shared/shop`), which the collection checks, was invisible to code walking the pool.
Paths keep the spelling under `root` (the links, not their targets), like the collection's node ids.
"""

from __future__ import annotations

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
