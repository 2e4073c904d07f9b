"""The failures a caller is told about, and the ones only the logs hear of."""

from __future__ import annotations


class ApiError(Exception):
    """A failure with the HTTP status and the ``error`` object the caller receives."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ConfigurationError(Exception):
    """The function's environment is missing or malformed: a deployment bug."""
