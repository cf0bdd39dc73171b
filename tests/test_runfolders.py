"""A run's temporary folders (runfolders.py): named after their maker, and removed by the next run once their maker
is gone (a run killed with SIGTERM or kill -9 cannot remove its own)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from localserver import LocalServer
from test_plugin_auth import SECRET_PASSWORD, LoginServer, workspace

from pytest_apimon import runfolders
from pytest_apimon.tokencache import CacheEntry, TokenCache

posix_only = pytest.mark.skipif(os.name != "posix", reason="the sweep runs on POSIX only")


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def namespace_of_this_process() -> str:
    return runfolders.pid_namespace()


@posix_only
def test_sweep_removes_only_this_namespace_s_folders_whose_maker_is_gone(tmp_path) -> None:
    ns = namespace_of_this_process()
    gone, alive = dead_pid(), os.getpid()
    stale_tokens = tmp_path / f"{runfolders.TOKENS_PREFIX}{ns}-{gone}-abc12345"
    stale_run = tmp_path / f"{runfolders.RUN_PREFIX}{ns}-{gone}-def_6789"
    keep = [
        tmp_path / f"{runfolders.TOKENS_PREFIX}{ns}-{alive}-live1234",  # its maker still runs
        tmp_path / f"{runfolders.RUN_PREFIX}9{ns}-{gone}-nsnsnsns",  # another PID namespace: its pids are not ours
        tmp_path / f"{runfolders.TOKENS_PREFIX}oldstyle1234",  # an older version's name: no maker to check
        tmp_path / f"other-{ns}-{gone}-x",  # not ours
    ]
    for folder in (stale_tokens, stale_run, *keep):
        folder.mkdir()
        (folder / "tokens.json").write_text("{}", encoding="utf-8")
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / f"{runfolders.RUN_PREFIX}{ns}-{gone}-link1234"
    link.symlink_to(target, target_is_directory=True)  # never followed, never removed

    removed = runfolders.sweep(tmp_path)

    assert sorted(removed) == sorted([stale_tokens, stale_run])
    assert not stale_tokens.exists() and not stale_run.exists()
    assert all(folder.is_dir() for folder in keep) and link.is_symlink() and target.is_dir()


def test_make_names_the_folder_after_its_maker_and_keeps_it_private(tmp_path) -> None:
    folder = runfolders.make(runfolders.TOKENS_PREFIX, base=tmp_path)
    ns, pid = folder.name.removeprefix(runfolders.TOKENS_PREFIX).split("-")[:2]
    assert ns == runfolders.pid_namespace() and ns.isdigit() and int(pid) == os.getpid()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert runfolders.sweep(tmp_path) == [] and folder.is_dir()  # its maker (this process) still runs


def test_sweep_of_a_missing_folder_removes_nothing(tmp_path) -> None:
    assert runfolders.sweep(tmp_path / "missing") == []


@pytest.fixture
def temp_folder(tmp_path, monkeypatch) -> Path:
    """The temp folder of the runs below (and of their xdist workers): a folder of this test."""
    monkeypatch.setenv("SVC_PASSWORD", SECRET_PASSWORD)  # the login's password (test_plugin_auth.workspace)
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return folder


def test_no_token_cache_in_one_process_writes_no_token_anywhere(pytester, local_server: LocalServer,
                                                                 temp_folder) -> None:
    server = LoginServer(local_server)
    workspace(pytester, local_server)
    killed = temp_folder / f"{runfolders.TOKENS_PREFIX}{namespace_of_this_process()}-{dead_pid()}-killed12"
    killed.mkdir(mode=0o700)  # an earlier xdist run's, killed before its end
    # What the temp folder holds while the interfaces are checked (the tokens are in use then).
    pytester.makeconftest("""
        import os, tempfile

        def pytest_runtest_call(item):
            with open("seen.txt", "a", encoding="utf-8") as f:
                f.write(repr(sorted(os.listdir(tempfile.gettempdir()))) + "\\n")
    """)
    pytester.runpytest("--apimon", "pool", "--apimon-no-token-cache").assert_outcomes(passed=12)
    assert server.n == 1  # one login, shared by the run's threads in memory
    seen = (pytester.path / "seen.txt").read_text("utf-8").splitlines()
    assert seen == ["[]"] * 12  # nothing written while checking (before: an apimon-tokens-… folder)
    assert list(temp_folder.iterdir()) == []  # and the killed run's folder was removed
    assert not (pytester.path / ".apimon" / "tokens.json").exists()


@posix_only
def test_no_token_cache_under_xdist_removes_a_killed_run_s_tokens(pytester, local_server: LocalServer,
                                                                  temp_folder) -> None:
    server = LoginServer(local_server)
    workspace(pytester, local_server)
    ns = namespace_of_this_process()
    # What a run killed with kill -9 leaves: its token folder, with a live token in it.
    killed = temp_folder / f"{runfolders.TOKENS_PREFIX}{ns}-{dead_pid()}-killed12"
    killed.mkdir(mode=0o700)
    (killed / "tokens.json").write_text(json.dumps({"svc": {"value": "tok-left-Xy9secret"}}), encoding="utf-8")
    pytester.runpytest("--apimon", "pool", "--apimon-no-token-cache", "-n", "2").assert_outcomes(passed=12)
    assert server.n == 1  # both workers share one login
    assert not killed.exists()
    assert list(temp_folder.glob("apimon-*")) == []  # and this run's own folders are gone at its end


def test_xdist_workers_open_the_run_s_temp_token_folder_without_making_it_again(pytester, local_server,
                                                                               temp_folder) -> None:
    """Workers are told the token folder is the run's temp folder, so their cache never makes it again once it is
    gone (an orphaned worker of a killed controller wrote a live token back after the next run removed it)."""
    LoginServer(local_server)
    workspace(pytester, local_server)
    pytester.makeconftest("""
        def pytest_sessionfinish(session):
            workerinput = getattr(session.config, "workerinput", None)
            if workerinput is not None:
                from pytest_apimon.stash import RUN_KEY

                run = session.config.stash[RUN_KEY]
                name = workerinput["workerid"]
                with open(f"temp-{name}.txt", "w", encoding="utf-8") as f:
                    f.write(repr((run.token_dir_is_temp, run.engine().tokens._cache._create)))
    """)
    pytester.runpytest("--apimon", "pool", "--apimon-no-token-cache", "-n", "2").assert_outcomes(passed=12)
    seen = sorted(p.read_text("utf-8") for p in pytester.path.glob("temp-gw*.txt"))
    assert seen == ["(True, False)", "(True, False)"]


# Found by red teams: look-alike names, an orphaned worker writing into a swept folder.
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


@posix_only
def test_a_folder_the_sweep_reports_removed_is_gone_even_if_a_worker_wrote_into_it_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a red team (1 of 17 kill -9 runs of the controller during a 3 s login, next run at once): an
    orphaned worker created its login lock in the token folder while the sweep removed it, the last rmdir failed
    and was ignored, the folder stayed (reported removed), and the orphan then wrote its live token there."""
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
