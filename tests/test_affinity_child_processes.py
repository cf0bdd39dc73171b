"""Found by a red team: a process started during the item loop keeps the loop's one-CPU pin for the rest of its life.

Processes inherit the affinity of the thread that starts them. Pin.release gives the CPUs back to the threads of
this process only: a helper a user's test or a lazily set up session fixture starts during the loop (a mock server,
an `ssh -f` tunnel, a tool's daemon) stays on the one CPU after the run, where it also competed with the checks.
docs/scaling.md ("One CPU while checking") promises the run's own threads their CPUs back and says nothing of
processes. Measured with the README's demo-style workspace, in-process and -n 2: a `sleep 60` started by a test in
the pool had Cpus_allowed_list 1 (resp. 0) at pytest_unconfigure while every thread had 0-1.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from localserver import LocalServer
from test_plugin import write

from pytest_apimon import affinity

ALLOWED = sorted(affinity.allowed_cpus())
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2 or not hasattr(os, "sched_setaffinity"),
                                    reason="needs Linux CPU affinity and at least 2 allowed CPUs")


@needs_two_cpus
def test_a_process_started_during_the_loop_is_not_left_on_one_cpu(pytester: pytest.Pytester,
                                                                  local_server: LocalServer) -> None:
    for i in range(4):
        local_server.route("GET", f"/svc/i{i}", lambda req: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        services:
          svc:
            base_url: {local_server.url}/svc
    """)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"i{i}", "path": f"/i{i}"} for i in range(4)]))
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
