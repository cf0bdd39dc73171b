"""Shared fixtures for the pytest-apimon test suite (pytester is enabled in pytest.ini)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from fake_wecom import FakeClock, FakeWeCom
from localserver import LocalServer

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
