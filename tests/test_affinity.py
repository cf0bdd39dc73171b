"""CPU affinity of the checking threads (affinity.py, plugin.CpuAffinity): pinned to one CPU for the item loop only,
spread over the CPUs by xdist share, given back afterwards, never where it was turned off."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from localserver import LocalServer
from test_plugin import write

from pytest_apimon import affinity

ALLOWED = sorted(affinity.allowed_cpus())
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2 or not hasattr(os, "sched_setaffinity"),
                                    reason="needs Linux CPU affinity and at least 2 allowed CPUs")

# proc(5): pid (comm) state ppid … with field 39 "processor"; comm may hold spaces and ')'.
STAT_TAIL = " ".join(["S"] + ["0"] * 35 + ["7"] + ["0"] * 13)


def stat_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stat"
    path.write_text(text, encoding="ascii")
    return path


def test_current_cpu_reads_field_39_after_a_command_name_with_spaces_and_parentheses(tmp_path) -> None:
    assert affinity.current_cpu(stat_file(tmp_path, f"4242 (py (test) x) {STAT_TAIL}\n")) == 7
    assert affinity.current_cpu(stat_file(tmp_path, "4242 (python) S 1 2\n")) is None  # too short
    assert affinity.current_cpu(stat_file(tmp_path, f"4242 (python) {STAT_TAIL.replace(' 7 ', ' x ')}")) is None
    assert affinity.current_cpu(tmp_path / "missing") is None


@given(st.text())
def test_current_cpu_never_raises_on_any_file(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "stat"
        path.write_text(text, encoding="utf-8")
        cpu = affinity.current_cpu(path)
    assert cpu is None or cpu >= 0


def test_choose_cpu() -> None:
    assert affinity.choose_cpu({3}, current=3) is None  # nothing to choose: leave the thread alone
    assert affinity.choose_cpu({0, 1, 2, 3}, current=2) == 2  # where the scheduler runs it now
    assert affinity.choose_cpu({0, 1, 2, 3}, current=9) == 0  # not allowed (or unknown): the lowest
    assert affinity.choose_cpu({0, 1, 2, 3}, current=None) == 0
    # xdist: share k takes the k-th allowed CPU, round the CPUs, whatever CPU it runs on now
    assert [affinity.choose_cpu({4, 6}, share=k, current=6) for k in range(5)] == [4, 6, 4, 6, 4]


@needs_two_cpus
def test_pin_thread_narrows_the_calling_thread_only_and_threads_it_starts_inherit() -> None:
    before = affinity.allowed_cpus()
    seen: dict[str, frozenset[int]] = {}
    other_ready, other_done = threading.Event(), threading.Event()

    def other() -> None:  # started before the pin: keeps its own affinity
        other_ready.set()
        other_done.wait(10)
        seen["other"] = affinity.allowed_cpus()

    bystander = threading.Thread(target=other)
    bystander.start()
    other_ready.wait(10)

    def pinned() -> None:
        pin = affinity.pin_thread(ALLOWED[1])
        assert pin is not None
        seen["pinned"] = affinity.allowed_cpus()
        child = threading.Thread(target=lambda: seen.__setitem__("child", affinity.allowed_cpus()))
        child.start()
        child.join()
        # A thread started during the pin that outlives it (like probe.py's deadline watchdog) is given back too.
        started, release_seen, lingering_done = threading.Event(), threading.Event(), threading.Event()

        def linger() -> None:
            seen["lingering_pinned"] = affinity.allowed_cpus()
            started.set()
            release_seen.wait(10)
            seen["lingering_after"] = affinity.allowed_cpus()
            lingering_done.set()

        threading.Thread(target=linger, daemon=True).start()
        started.wait(10)
        pin.release()
        release_seen.set()
        lingering_done.wait(10)
        seen["released"] = affinity.allowed_cpus()

    worker = threading.Thread(target=pinned)
    worker.start()
    worker.join()
    other_done.set()
    bystander.join()
    assert seen["pinned"] == seen["child"] == seen["lingering_pinned"] == frozenset({ALLOWED[1]})
    assert seen["released"] == seen["other"] == seen["lingering_after"] == before == affinity.allowed_cpus()


def test_pin_thread_refused_changes_nothing() -> None:
    before = affinity.allowed_cpus()
    assert affinity.pin_thread(10_000) is None  # no such CPU: the kernel refuses (or no affinity call)
    assert affinity.allowed_cpus() == before


# A conftest that notes, while each interface is checked, the CPUs pytest's thread and the Runner's threads may
# run on, and pytest's thread's after the item loop; one file per process (xdist workers).
RECORDER = """
import json, os, threading

seen = {"main": [], "runner": []}


def pytest_runtest_call(item):
    seen["main"].append(sorted(os.sched_getaffinity(0)))
    for thread in threading.enumerate():
        # The Runner's threads (started by the loop); not the deadline watchdog, which an earlier run in this
        # process may have started before any pin.
        if (thread.name.startswith("apimon_") or thread.name == "apimon-dispatch") and thread.native_id:
            try:
                seen["runner"].append(sorted(os.sched_getaffinity(thread.native_id)))
            except OSError:  # ended meanwhile
                pass


def pytest_sessionfinish(session):
    if not seen["main"]:
        return  # the xdist controller checks nothing
    seen["after"] = sorted(os.sched_getaffinity(0))
    seen["threads_after"] = {t.name: sorted(os.sched_getaffinity(t.native_id))
                             for t in threading.enumerate() if t.native_id and t.is_alive()}
    workerinput = getattr(session.config, "workerinput", None)  # not the env var: the suite may run under xdist
    name = workerinput["workerid"] if workerinput else "main"
    with open(f"affinity-{name}.json", "w", encoding="utf-8") as f:
        json.dump(seen, f)
"""


def pool(pytester: pytest.Pytester, srv: LocalServer, n: int = 12) -> None:
    for i in range(n):
        srv.route("GET", f"/svc/i{i}", lambda req: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        services:
          svc:
            base_url: {srv.url}/svc
    """)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"i{i}", "path": f"/i{i}"} for i in range(n)]))
    write(pytester.path, "conftest.py", RECORDER)


def recorded(pytester: pytest.Pytester) -> dict[str, dict[str, list[list[int]]]]:
    return {p.stem.removeprefix("affinity-"): json.loads(p.read_text("utf-8"))
            for p in pytester.path.glob("affinity-*.json")}


@needs_two_cpus
def test_in_process_run_checks_on_one_cpu_and_gives_pytest_s_thread_its_cpus_back(pytester, local_server) -> None:
    pool(pytester, local_server)
    before = sorted(affinity.allowed_cpus())
    pytester.runpytest("--apimon", "pool").assert_outcomes(passed=12)
    seen = recorded(pytester)["main"]
    cpus = {tuple(c) for c in seen["main"]} | {tuple(c) for c in seen["runner"]}
    assert len(cpus) == 1 and len(next(iter(cpus))) == 1, cpus  # all on one and the same CPU
    assert seen["runner"], "the Runner's threads were not seen"
    assert seen["after"] == before == sorted(affinity.allowed_cpus())
    # Threads started during the checks that outlive them (the deadline watchdog) get the CPUs back too.
    assert all(cpus == before for cpus in seen["threads_after"].values()), seen["threads_after"]


@needs_two_cpus
@pytest.mark.parametrize("how", [["--apimon-cpu-affinity", "off"], ["-o", "apimon_cpu_affinity=off"]])
def test_affinity_off_leaves_every_thread_where_it_was(pytester, local_server, how) -> None:
    pool(pytester, local_server)
    before = sorted(affinity.allowed_cpus())
    pytester.runpytest("--apimon", "pool", *how).assert_outcomes(passed=12)
    seen = recorded(pytester)["main"]
    assert all(c == before for c in seen["main"] + seen["runner"]) and seen["after"] == before


@needs_two_cpus
def test_xdist_workers_take_one_cpu_each_by_share(pytester, local_server) -> None:
    pool(pytester, local_server, n=24)
    pytester.runpytest("--apimon", "pool", "-n", "2").assert_outcomes(passed=24)
    seen = recorded(pytester)
    assert sorted(seen) == ["gw0", "gw1"]
    chosen = {}
    for worker, notes in seen.items():
        cpus = {tuple(c) for c in notes["main"]} | {tuple(c) for c in notes["runner"]}
        assert len(cpus) == 1 and len(next(iter(cpus))) == 1, (worker, cpus)
        chosen[worker] = next(iter(cpus))[0]
        assert notes["after"] == ALLOWED
    assert sorted(chosen.values()) == ALLOWED[:2]  # the two workers never share a CPU


def test_unknown_affinity_mode_is_a_usage_error(pytester, local_server) -> None:
    pool(pytester, local_server, n=1)
    result = pytester.runpytest("--apimon", "pool", "-o", "apimon_cpu_affinity=some")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*apimon_cpu_affinity must be auto or off, got 'some'*"])


@needs_two_cpus
def test_a_pool_of_users_own_tests_alone_is_not_pinned(pytester) -> None:
    write(pytester.path, "pool/svc/test_own.py", """
        import os

        def test_own():
            assert len(os.sched_getaffinity(0)) >= 2  # no interface to check: nothing pinned
    """)
    pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1)

@needs_two_cpus
def test_a_raw_thread_started_during_the_loop_gets_its_cpus_back(pytester, local_server) -> None:
    """Found by a red team: a thread the threading module does not know (`_thread.start_new_thread`, a C
    extension's own) kept the loop's pin after it, while Pin.release walked threading.enumerate()."""
    pool(pytester, local_server, n=4)
    # A user test inside the pool that starts a thread the threading module does not track.
    write(pytester.path, "pool/svc/test_raw_thread.py", """
        import _thread, threading, json, pathlib

        STOP = threading.Event()

        def body(path):
            pathlib.Path(path).write_text(json.dumps(threading.get_native_id()))
            STOP.wait(60)

        def test_starts_a_raw_thread():
            _thread.start_new_thread(body, (str(pathlib.Path("raw-tid.json").resolve()),))
    """)
    stop = None
    try:
        result = pytester.runpytest_inprocess("--apimon", "pool", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=5)
        tid = json.loads((pytester.path / "raw-tid.json").read_text("utf-8"))
        stop = getattr(sys.modules.get("test_raw_thread"), "STOP", None)
        assert sorted(os.sched_getaffinity(tid)) == ALLOWED, "the raw thread kept the item loop's CPU pin"
    finally:
        if stop is not None:
            stop.set()


@needs_two_cpus
def test_a_process_started_during_the_loop_is_not_left_on_one_cpu(pytester, local_server) -> None:
    """Found by a red team: a helper process a user's test starts during the loop (a fixture's server) kept the
    loop's one CPU after the run."""
    pool(pytester, local_server, n=4)
    write(pytester.path, "pool/svc/test_helper_process.py", """
        import json, pathlib, subprocess, sys

        def test_starts_a_helper():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            pathlib.Path("helper-pid.json").write_text(json.dumps(child.pid))
    """)
    pid = None
    try:
        result = pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=5)
        pid = json.loads((pytester.path / "helper-pid.json").read_text("utf-8"))
        assert sorted(os.sched_getaffinity(pid)) == ALLOWED, "the helper process kept the item loop's CPU pin"
    finally:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
