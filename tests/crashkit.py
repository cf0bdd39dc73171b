"""Killing an xdist worker in a test, so that the death is the item's own.

A prefetching worker runs its checks in the Runner's threads; a death while some of them are in flight is not
blamed on the item xdist names (retries.CrashRerun, inflight.py): any of those checks may have caused it. Tests
that mean "this interface's check killed its worker" therefore die from the item's own thread once the worker's
Runner has nothing in flight or waiting. `install(pytester)` writes the module `killworker` next to the test's
conftest, which imports it (pytest puts the conftest's folder on sys.path, in the workers too).
"""

from __future__ import annotations

import pytest

MODULE = '''
import os
import time

from pytest_apimon.stash import RUN_KEY


def die_alone(item):
    """os._exit(1) once no check of this worker's Runner is in flight or waiting (30 s at most)."""
    runner = item.config.stash[RUN_KEY].runner
    deadline = time.monotonic() + 30
    while runner is not None and runner.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(1)
'''


def install(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(killworker=MODULE)
