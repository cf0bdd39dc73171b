"""Found by a red team: the sweep of killed runs' folders (runfolders.py).

1. sweep() removes folders make() could never have named: make() always ends the name in tempfile.mkdtemp's
   8 random characters, but sweep() accepts any rest after `<ns>-<pid>` (none at all, or `-my-backup`), so a
   user's folder that merely looks like one is deleted with its contents.
2. A killed run's xdist workers outlive their controller (kill -9 of the controller; they keep checking until
   they next talk to it). The next run sweeps the folder (its maker is gone), and a worker that then stores the
   token it just logged in with recreates `apimon-tokens-…` (0755, atomicfile's mkdir) with the live token in
   it: after the run that was to remove it. Measured end to end with a 3 s login: see the report; here the
   worker's side is played by the TokenCache it uses.
"""

from __future__ import annotations

import os
import shutil
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
@pytest.mark.parametrize("rest", ["", "-my-backup", "-data"])
def test_sweep_leaves_a_folder_make_could_not_have_named(tmp_path: Path, rest: str) -> None:
    name = f"{runfolders.RUN_PREFIX}{runfolders.pid_namespace()}-{dead_pid()}{rest}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "notes.txt").write_text("a user's own file", encoding="utf-8")
    runfolders.sweep(tmp_path)
    assert (folder / "notes.txt").exists(), f"{name} was removed"


@posix_only
def test_a_swept_token_folder_is_not_recreated_by_a_worker_still_running(tmp_path: Path) -> None:
    folder = tmp_path / f"{runfolders.TOKENS_PREFIX}{runfolders.pid_namespace()}-{dead_pid()}-abcd1234"
    folder.mkdir(mode=0o700)
    # An orphaned worker of the killed run: it used the folder before. Workers open a run's temp folder with
    # create=False (plugin: workerinput apimon_token_dir_is_temp; runstate.ApimonRun.engine).
    cache = TokenCache(folder, create=False)
    assert cache.get("svc") is None
    assert folder in runfolders.sweep(tmp_path)  # the next run removes it: its maker is gone
    now = time.time()
    cache.put("svc", CacheEntry(service="svc", value="tok-Xy9-live-secret", obtained_at=now, expires_at=now + 3600))
    assert cache.disabled  # it goes on with the token in memory
    assert not folder.exists(), "the worker recreated the swept token folder: " + (
        (folder / "tokens.json").read_text("utf-8") if (folder / "tokens.json").exists() else "")
    shutil.rmtree(folder, ignore_errors=True)
