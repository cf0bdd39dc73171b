"""The run's typed vocabulary, defined once: failure categories (stable machine name, zh/en labels, report
order, the transient set) and the outcome of one interface check."""

from __future__ import annotations

from enum import Enum


class _Vocabulary(str, Enum):
    """A `str` enum (like py311's `enum.StrEnum`, which py310 lacks): members compare equal to their value and
    print as it, so JSON, JUnit, SQLite and f-strings keep the plain strings ("failed", "timeout")."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Outcome(_Vocabulary):
    """The final state of one interface check; the values are pytest's report outcomes."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Category(_Vocabulary):
    """Why an interface is not healthy. The value is the stable machine name."""

    SERVER_ERROR = "server_error"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    NETWORK = "network"
    AUTH = "auth"  # 401, a login that was refused, a token missing from a 2xx login answer
    FORBIDDEN = "forbidden"  # 403: authenticated, but not allowed
    UNEXPECTED = "unexpected"
    INVALID_DOCUMENT = "invalid_document"
    # Added last so earlier members keep their positions (the status page's CSS classes are numbered by them).
    RATE_LIMITED = "rate_limited"  # HTTP 429: the service is answering, but refuses this client for now

    def label(self, lang: str = "zh") -> str:
        return _LABELS[self][0 if lang == "zh" else 1]

    @property
    def transient(self) -> bool:
        """Worth retrying: the same request may well succeed a moment later (see `TRANSIENT`)."""
        return self in TRANSIENT

    @classmethod
    def coerce(cls, value: str | None) -> Category | None:
        """`value` as a Category; None stays None. Raises ValueError for an unknown name."""
        return None if value is None else cls(value)


_LABELS: dict[Category, tuple[str, str]] = {
    Category.SERVER_ERROR: ("服务器错误", "server error"),
    Category.NOT_FOUND: ("接口不存在", "not found"),
    Category.UNAVAILABLE: ("服务不可用", "unavailable"),
    Category.RATE_LIMITED: ("被限流", "rate limited"),
    Category.TIMEOUT: ("超时", "timeout"),
    Category.NETWORK: ("网络错误", "network error"),
    Category.AUTH: ("认证失败", "authentication failed"),
    Category.FORBIDDEN: ("无权限", "forbidden"),
    Category.UNEXPECTED: ("响应不符合预期", "unexpected response"),
    Category.INVALID_DOCUMENT: ("接口文档错误", "invalid document"),
}

# Transient (retryable) categories: a timeout, a network error, 5xx and 503 are often gone a moment later, and
# so is a 429 (rate_limited, after its Retry-After); an auth failure, a 404 or a wrong body are not.
# The retry filter (retries.py) and Runner's backoff use this.
TRANSIENT: frozenset[Category] = frozenset({Category.TIMEOUT, Category.NETWORK, Category.SERVER_ERROR,
                                            Category.UNAVAILABLE, Category.RATE_LIMITED})

# Report order: the most actionable first.
ORDER: tuple[Category, ...] = (
    Category.INVALID_DOCUMENT,
    Category.AUTH,
    Category.FORBIDDEN,
    Category.NETWORK,
    Category.TIMEOUT,
    Category.UNAVAILABLE,
    Category.RATE_LIMITED,
    Category.SERVER_ERROR,
    Category.NOT_FOUND,
    Category.UNEXPECTED,
)
