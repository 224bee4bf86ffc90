"""Errors the services raise and the app turns into HTTP answers."""

from __future__ import annotations


class InvalidChange(ValueError):
    """Well-formed but not allowed now; `field` names the culprit (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidQuery(ValueError):
    """A query parameter that parsed but cannot be used (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
