"""Shared fixtures for the pytest-apimon test suite (pytester is enabled in pytest.ini)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from fake_wecom import FakeClock, FakeWeCom
from localserver import LocalServer

# pytester restores sys.modules after every in-process run. The plugin imports its core lazily (it must stay
# cheap in every pytest run), so without these imports the core and PyYAML would be imported inside the first
# inner run, dropped, and imported again in the next one, which PyYAML's C extension does not survive.
import pytest_apimon.collector
import pytest_apimon.fixtures  # noqa: F401
from pytest_apimon.probe import new_session


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
