"""Session fixtures for users' own Python checks next to the documents (registered only with --apimon).

    def test_nurse_shift_totals(apimon_session):
        resp = apimon_session("nurse").get("/shifts/today")   # base URL, headers, token applied
        assert resp.json()["data"]["total"] >= 0

They reuse the run's token machinery: the same cached token as the documents, one login per service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from .stash import RUN_KEY

if TYPE_CHECKING:  # plugin.py registers this module in every --apimon process, an xdist controller too
    import requests

    from .runstate import ApimonRun


def _run(request: pytest.FixtureRequest) -> ApimonRun:
    run = request.config.stash.get(RUN_KEY, None)
    if run is None:
        raise pytest.UsageError("apimon fixtures need a monitoring run: pytest --apimon PATH")
    return run


@pytest.fixture(scope="session")
def apimon_token(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """apimon_token("nurse") -> the service's current token (raises auth.LoginFailed if it cannot be had)."""
    run = _run(request)

    def token(service: str) -> str:
        return run.engine().tokens.token(service).value

    return token


@pytest.fixture(scope="session")
def apimon_session(request: pytest.FixtureRequest) -> Iterator[Callable[[str], requests.Session]]:
    """apimon_session("nurse") -> an authenticated requests.Session bound to the service's base URL."""
    from .engine import service_session

    run = _run(request)
    sessions: dict[str, requests.Session] = {}

    def session(service: str) -> requests.Session:
        if service not in sessions:
            sessions[service] = service_session(run.engine(), service)
        return sessions[service]

    yield session
    for sess in sessions.values():
        sess.close()
