"""The root of the package's exceptions: `except ApimonError` catches every error pytest-apimon raises on purpose
(a bad config, a state database it cannot use, a failed login, a lock held by another run …)."""

from __future__ import annotations

__all__ = ["ApimonError"]


class ApimonError(Exception):
    """Base class of every exception pytest-apimon raises deliberately; each subclass says what to fix."""
