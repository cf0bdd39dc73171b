"""Masking of secrets in any header dict, JSON-ish value or text. Applied at every output boundary.

SKELETON — signatures fixed; bodies to be implemented.
"""

from __future__ import annotations

from typing import Any

MASK = "******"
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token")
SECRET_KEY_WORDS = ("password", "passwd", "pwd", "secret", "token", "access_key", "api_key", "apikey", "credential")


class Redactor:
    def __init__(self, secrets: tuple[str, ...] | list[str] = (), key_words: tuple[str, ...] = SECRET_KEY_WORDS):
        raise NotImplementedError

    def add_secret(self, value: str) -> None:
        """Remember a literal secret (a token, a password) to mask wherever it appears."""
        raise NotImplementedError

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        raise NotImplementedError

    def value(self, data: Any) -> Any:
        """Deep copy of a JSON-ish value with secret-looking keys masked and known secrets masked in strings."""
        raise NotImplementedError

    def text(self, text: str) -> str:
        """Mask known secrets, Bearer tokens, and key=value / "key": "value" pairs with secret-looking keys."""
        raise NotImplementedError
