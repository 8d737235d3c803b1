"""Refusals of operator actions, in the one exception tree (:mod:`routeguard.errors`).

The ops modules sit below the HTTP edge, so they raise these instead of the admin API's own
error; the edge answers with the status, type and code they carry, in OpenAI's envelope.
"""

from __future__ import annotations

from routeguard.errors import ClientError

__all__ = ["OperatorActionError"]


class OperatorActionError(ClientError):
    """An operator action refused: 400 malformed, 404 unknown target, 409 unsafe or conflicting."""

    error_type = "invalid_request_error"

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
