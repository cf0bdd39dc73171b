"""The shared token file: entries, atomic 0600 writes, pruning, locks across processes, degraded modes."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from pytest_apimon.tokencache import CACHE_FILE, CacheEntry, TokenCache, fingerprint


def test_put_get_remove_roundtrip(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "state")
    assert cache.get("nurse:x") is None
    entry = CacheEntry("nurse", "tok-1", 100.0, time.time() + 3600, "run-a")
    assert cache.put("nurse:x", entry)
    assert cache.get("nurse:x") == entry
    assert not cache.remove("nurse:x", value="other-token")  # someone refreshed it: keep theirs
    assert cache.get("nurse:x") == entry
    assert cache.remove("nurse:x", value="tok-1")
    assert cache.get("nurse:x") is None


def test_file_is_0600_dir_0700_and_gitignored(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "state")
    cache.put("k", CacheEntry("s", "v", time.time(), time.time() + 60))
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(cache.directory).st_mode) == 0o700
    assert (cache.directory / ".gitignore").read_text() == "*\n"
    # No temporary files left behind by the atomic replace.
    assert sorted(p.name for p in cache.directory.iterdir() if p.name.endswith(".tmp")) == []


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_rewrite_restores_0600_even_if_loosened(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    cache.put("k", CacheEntry("s", "v", time.time(), time.time() + 60))
    os.chmod(cache.path, 0o644)
    cache.put("k2", CacheEntry("s", "v2", time.time(), time.time() + 60))
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_existing_state_dir_is_tightened_and_ignored(tmp_path: Path) -> None:
    """Issue 12: a state folder left 0755 by an older version gets 0700 and `.gitignore`; an existing
    tokens.json with wider bits is 0600 as soon as the cache is used, before any write."""
    folder = tmp_path / ".apimon"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    (folder / "tokens.json").write_text('{"version": 1, "entries": {}}')
    os.chmod(folder / "tokens.json", 0o644)
    assert TokenCache(folder).get("k") is None
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / "tokens.json").st_mode) == 0o600
    assert (folder / ".gitignore").read_text() == "*\n"


def test_workspace_folder_itself_is_never_chmodded(tmp_path: Path) -> None:
    from pytest_apimon.statedir import ensure_state_dir

    os.chmod(tmp_path, 0o755)
    ensure_state_dir(tmp_path, workspace=tmp_path)
    assert not (tmp_path / ".gitignore").exists()
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755


def test_undated_tokens_do_not_outlive_their_run(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    now = time.time()
    cache.put("a", CacheEntry("a", "undated-1", now, None, run_id="r1"))
    cache.put("b", CacheEntry("b", "dated-1", now, now + 3600, run_id="r1"))
    cache.put("c", CacheEntry("c", "undated-2", now, None, run_id="r2"))  # a later run: r1's is useless now
    assert cache.get("a") is None and cache.get("b") is not None and cache.get("c") is not None
    cache.purge_run("r2")
    assert cache.get("c") is None and cache.get("b") is not None
    assert "undated" not in cache.path.read_text()


def test_expired_entries_are_pruned_on_write(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    now = time.time()
    cache.put("old", CacheEntry("a", "v", now - 7200, now - 3600))
    cache.put("undated-old", CacheEntry("a", "v", now - 2 * 86400, None))
    cache.put("failure-old", CacheEntry("a", None, now - 2 * 86400, error="login failed"))
    cache.put("new", CacheEntry("b", "v", now, now + 3600))
    entries = json.loads(cache.path.read_text())["entries"]
    assert set(entries) == {"new"}


def test_corrupt_or_foreign_file_reads_as_empty(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    cache.path.write_text("{not json")
    assert cache.get("k") is None
    cache.path.write_text(json.dumps({"version": 99, "entries": {"k": {"service": "s", "value": "v"}}}))
    assert cache.get("k") is None
    assert cache.put("k", CacheEntry("s", "v", time.time(), time.time() + 60))
    assert cache.get("k") is not None


def test_fingerprint_changes_with_credentials_and_url() -> None:
    base = {"service": "nurse", "json": {"password": "a"}, "base_url": "http://x"}
    assert fingerprint(base) == fingerprint(dict(reversed(list(base.items()))))
    assert fingerprint(base) != fingerprint({**base, "json": {"password": "b"}})
    assert fingerprint(base) != fingerprint({**base, "base_url": "http://y"})
    assert "a" not in fingerprint(base) or len(fingerprint(base)) == 32


def test_unusable_directory_degrades_to_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = TokenCache(blocker / "state")  # a directory below a file cannot exist
    with cache.login_lock("nurse") as held:
        assert held is False
    assert not cache.put("k", CacheEntry("s", "v", 0.0))
    assert cache.get("k") is None
    assert cache.disabled and "unusable" in cache.disabled


@pytest.mark.timeout(60)  # a hang guard: waiting for the lock must end after lock_timeout, not block
def test_login_lock_times_out_instead_of_hanging(tmp_path: Path) -> None:
    first, second = TokenCache(tmp_path), TokenCache(tmp_path, lock_timeout=0.2)
    with first.login_lock("nurse") as held:
        assert held
        with second.login_lock("nurse") as held2:
            assert held2 is False
        with second.login_lock("other-service") as held3:
            assert held3  # one lock per service
    with second.login_lock("nurse") as held4:
        assert held4


def test_lock_file_left_behind_holds_no_lock(tmp_path: Path) -> None:
    """A holder that died leaves its lock file; the OS dropped its lock, so the next caller gets it at once."""
    stale = tmp_path / ("tokens." + hashlib.sha256(b"nurse").hexdigest()[:16] + ".lock")
    stale.write_text("")
    with TokenCache(tmp_path, lock_timeout=0).login_lock("nurse") as held:
        assert held
    assert TokenCache(tmp_path, lock_timeout=0).put("k", CacheEntry("s", "v", time.time(), time.time() + 60))


def _count_under_lock(directory: str, n: int) -> None:
    cache = TokenCache(directory)
    counter = Path(directory) / "counter"
    for _ in range(n):
        with cache.login_lock("nurse") as held:
            assert held
            value = int(counter.read_text()) if counter.exists() else 0
            time.sleep(0.001)  # widen the race window a lost update would need
            counter.write_text(str(value + 1))


def _writer(directory: str, index: int, n: int) -> None:
    cache = TokenCache(directory)
    for i in range(n):
        assert cache.put(f"svc{index}:{i}", CacheEntry(f"svc{index}", f"v{i}", time.time(), time.time() + 600))


@pytest.mark.integration
@pytest.mark.skipif(sys.platform == "win32", reason="spawned workers are slow there; the lock logic is shared")
def test_locks_exclude_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_count_under_lock, args=(str(tmp_path), 25)) for _ in range(4)]
    procs += [ctx.Process(target=_writer, args=(str(tmp_path), i, 10)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert (tmp_path / "counter").read_text() == "100"  # no lost update: the lock really excludes
    entries = json.loads((tmp_path / CACHE_FILE).read_text())["entries"]
    assert len(entries) == 40  # no write lost under concurrent read-modify-write
