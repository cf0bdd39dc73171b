"""The failure categories: one stable machine name, zh/en labels, defined once."""

from __future__ import annotations

from enum import Enum


class Category(str, Enum):
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
