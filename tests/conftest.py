"""Shared fixtures for the pytest-apimon test suite (pytester is enabled in pytest.ini)."""

from __future__ import annotations

from fixtures_http import local_server  # noqa: F401  (fixture re-export)
