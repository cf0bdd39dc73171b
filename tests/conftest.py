"""Shared fixtures for the pytest-apimon test suite (pytester is enabled in pytest.ini)."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator

import pytest
import regex  # noqa: F401  # patterns.py imports it with the first document pattern (see below)
import requests
from fake_wecom import FakeClock, FakeWeCom
from localserver import LocalServer

# pytester restores sys.modules after every in-process run. The plugin imports its core lazily (it must stay
# cheap in every pytest run), so without these imports the core and PyYAML would be imported inside the first
# inner run, dropped, and imported again in the next one, which PyYAML's C extension does not survive.
# The optional parts (status page, textfile, robots, spec importers, `regex`, coverage, watcher) are imported
# where they are used (ARCHITECTURE.md, "Imports follow use"), so they are imported here too.
import pytest_apimon.collector
import pytest_apimon.coverage
import pytest_apimon.fixtures
import pytest_apimon.importers.openapi
import pytest_apimon.importers.postman
import pytest_apimon.metrics
import pytest_apimon.notify.dingtalk  # build_notifiers imports the platforms lazily
import pytest_apimon.notify.feishu
import pytest_apimon.ownership
import pytest_apimon.statuspage
import pytest_apimon.watch  # noqa: F401
from pytest_apimon.probe import new_session

# Hypothesis' per-example deadline (200 ms) and its too_slow health check are wall-clock assertions: on a busy
# machine they fail healthy tests. The suite asserts on behaviour only.
# The default profile is also derandomized: the same examples on every run, so CI is never red because a random
# search happened to find something today. `HYPOTHESIS_PROFILE=explore` searches afresh (a different seed each
# run); a counterexample it finds goes into tests/crashers/ or an @example, and then runs every time.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # `pytest --apimon Interface-pool/` from a checkout loads this file (testpaths) without the
    pass  # test extra installed: the monitoring run needs none of this
else:
    settings.register_profile("apimon", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                              derandomize=True)
    settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                              max_examples=1000)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "apimon"))

# Tiers (markers registered in pytest.ini). A test that uses one of these fixtures starts a server or a pytester
# run: it is an integration test. Tests that start servers or processes by hand carry the marker themselves.
INTEGRATION_FIXTURES = frozenset({
    "pytester", "local_server", "srv", "server", "fake",
    # module fixtures that start servers or wait on sockets: test_origins (home, foreign), test_checks (pages),
    # test_certs (five, old: HTTPS servers), test_dns_deadline (resolver, name_cert)
    "home", "foreign", "pages", "five", "old", "resolver", "name_cert",
})


# A test that starts a server, a fake robot, a raw socket or a process in its own body is integration too.
_SERVER_IN_BODY = re.compile(r"\b(?:LocalServer|LoopbackServer|FakeWeCom|FakeDingTalk|FakeFeishu|FakeResolver)\(|"
                             r"\bsocket\.socket\(|\bsubprocess\.")


def _starts_server_by_hand(item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        return False
    return bool(_SERVER_IN_BODY.search(source))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark integration tests by the fixtures they use; leave `perf` tests out unless `-m` is given."""
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())) or _starts_server_by_hand(item):
            item.add_marker(pytest.mark.integration)
    if config.option.markexpr:
        return  # the user chose: `-m perf`, `-m "not integration and not perf"`, ...
    perf = [item for item in items if item.get_closest_marker("perf") is not None]
    if perf:
        config.hook.pytest_deselected(items=perf)
        items[:] = [item for item in items if item.get_closest_marker("perf") is None]


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A started LocalServer on 127.0.0.1 (free port), stopped after the test."""
    with LocalServer() as server:
        yield server


@pytest.fixture
def srv(local_server: LocalServer) -> LocalServer:
    """Short name for local_server in the probe/classify tests."""
    return local_server


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A probe session (total-deadline watchdog, no urllib3 retries)."""
    s = new_session()
    yield s
    s.close()


@pytest.fixture
def clock() -> FakeClock:
    """Shared by the fake robot and the notifier's sleeps: 'waiting a minute' takes no real time."""
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(clock=clock.now) as server:
        yield server


@pytest.fixture(autouse=True)
def _machine_time_zone() -> Iterator[None]:
    """Every test ends with the machine's zone: times.use_zone is process-global, and a test that sets one (the
    watcher's WatchAlerts, `apimon watch`) must not change what the next test in this worker formats."""
    from pytest_apimon import times

    yield
    times.use_zone(None)
