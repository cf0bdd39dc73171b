"""Found by a red team: sweeping a killed run's token folder while its orphaned xdist workers still use it (5534302).

Measured end to end (kill -9 of the controller during a 3 s login, next run at once; trace of sweep/put calls,
redteam7/kill_loop.sh.txt): in 1 of 17 kills the next run's first sweep reported the token folder removed and its
second sweep (xdist's worker folder, plugin.XdistHooks) found it again and removed it. One way (the one played
here): an orphaned worker creates a file in it (its login lock) while shutil.rmtree(ignore_errors=True) runs, the
final rmdir fails (ENOTEMPTY), the error is ignored and the folder is still reported removed. A next run in one
process sweeps once: the folder stays, the orphan's TokenCache(create=False) finds it (is_dir) and writes its
live token into it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_apimon import runfolders
from pytest_apimon.tokencache import CacheEntry, TokenCache

posix_only = pytest.mark.skipif(os.name != "posix", reason="the sweep runs on POSIX only")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@posix_only
def test_a_folder_the_sweep_reports_removed_is_gone_even_if_a_worker_wrote_into_it_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / f"{runfolders.TOKENS_PREFIX}{runfolders.pid_namespace()}-{dead_pid()}-abcd1234"
    folder.mkdir(mode=0o700)
    (folder / "tokens.json").write_text("{}", encoding="utf-8")
    cache = TokenCache(folder, create=False)  # the orphaned worker, which used the folder before
    assert cache.get("svc") is None

    real_rmdir = os.rmdir
    raced: list[str] = []

    def rmdir(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        # The orphan's login lock (O_CREAT at the folder's path) lands just before the removal's last rmdir.
        if not raced:
            raced.append(os.fsdecode(path))
            try:
                (folder / "tokens.json.lock").touch()
            except FileNotFoundError:  # the folder's path is gone already: the orphan's open fails too
                pass
        real_rmdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rmdir", rmdir)
    removed = runfolders.sweep(tmp_path)
    monkeypatch.undo()
    assert raced, "the sweep removed no folder"
    now = time.time()
    cache.put("svc", CacheEntry(service="svc", value="tok-Xy9-live-secret", obtained_at=now, expires_at=now + 3600))
    written = [p for p in tmp_path.rglob("*") if p.is_file() and b"tok-Xy9-live-secret" in p.read_bytes()]
    assert not written, f"sweep returned {removed}; the folder stayed and the orphan stored its token in {written}"
