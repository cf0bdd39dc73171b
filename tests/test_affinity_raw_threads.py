"""Found by a red team: a thread started during the item loop that the `threading` module does not know (started with
`_thread.start_new_thread`, or natively by a C extension: BLAS, gRPC, a JVM bridge) keeps the loop's CPU pin after
the loop. docs/scaling.md says "every thread started during the loop that still runs" gets its CPUs back;
affinity.Pin.release only walks threading.enumerate()."""

from __future__ import annotations

import json
import os

import pytest
from localserver import LocalServer
from test_plugin import write

from pytest_apimon import affinity

ALLOWED = sorted(affinity.allowed_cpus())
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2 or not hasattr(os, "sched_setaffinity"),
                                    reason="needs Linux CPU affinity and at least 2 allowed CPUs")


def _affinity_of_task(tid: int) -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(tid))
    except OSError:
        return None


@needs_two_cpus
def test_a_raw_thread_started_during_the_loop_gets_its_cpus_back(pytester: pytest.Pytester,
                                                                 local_server: LocalServer) -> None:
    for i in range(4):
        local_server.route("GET", f"/svc/i{i}", lambda req: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        services:
          svc:
            base_url: {local_server.url}/svc
    """)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"i{i}", "path": f"/i{i}"} for i in range(4)]))
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
        import sys

        stop = getattr(sys.modules.get("test_raw_thread"), "STOP", None)
        assert _affinity_of_task(tid) == ALLOWED, "the raw thread kept the item loop's CPU pin"
    finally:
        if stop is not None:
            stop.set()
