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
    AUTH = "auth"
    UNEXPECTED = "unexpected"
    INVALID_DOCUMENT = "invalid_document"

    def label(self, lang: str = "zh") -> str:
        return _LABELS[self][0 if lang == "zh" else 1]


_LABELS: dict[Category, tuple[str, str]] = {
    Category.SERVER_ERROR: ("服务器错误", "server error"),
    Category.NOT_FOUND: ("接口不存在", "not found"),
    Category.UNAVAILABLE: ("服务不可用", "unavailable"),
    Category.TIMEOUT: ("超时", "timeout"),
    Category.NETWORK: ("网络错误", "network error"),
    Category.AUTH: ("认证失败", "auth failure"),
    Category.UNEXPECTED: ("响应不符合预期", "unexpected response"),
    Category.INVALID_DOCUMENT: ("接口文档错误", "invalid document"),
}

# Report order: the most actionable first.
ORDER: tuple[Category, ...] = (
    Category.INVALID_DOCUMENT,
    Category.AUTH,
    Category.NETWORK,
    Category.TIMEOUT,
    Category.UNAVAILABLE,
    Category.SERVER_ERROR,
    Category.NOT_FOUND,
    Category.UNEXPECTED,
)
