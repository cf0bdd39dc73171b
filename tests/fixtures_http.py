"""Pytest fixtures around tests/localserver.py; load with `pytest_plugins = ["fixtures_http"]`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localserver import LocalServer


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A started LocalServer on 127.0.0.1 (free port), stopped after the test."""
    with LocalServer() as srv:
        yield srv
