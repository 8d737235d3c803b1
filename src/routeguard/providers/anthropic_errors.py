"""Anthropic's errors, mapped into :mod:`routeguard.errors` by status and ``error.type`` only.

Anthropic answers ``{"type": "error", "error": {"type": ..., "message": ...}}`` with an HTTP
status, or sends the same object in-band as an ``event: error`` once a stream has started (then
there is no status, so it follows from the type). The client gets OpenAI's envelope, so each
Anthropic type is given the OpenAI ``type`` (and ``code``) an OpenAI SDK user would expect; the
Anthropic type is never lost: it stays in the message prefix for whoever reads the logs.
"""

from __future__ import annotations

from typing import Any

import orjson

from routeguard.errors import UpstreamStatusError
from routeguard.providers.base import retry_after

__all__ = ["ANTHROPIC_ERROR_TYPES", "in_band_error", "status_error"]

# Anthropic error type -> (its HTTP status, OpenAI error type, OpenAI error code).
ANTHROPIC_ERROR_TYPES: dict[str, tuple[int, str, str | None]] = {
    "invalid_request_error": (400, "invalid_request_error", None),
    "authentication_error": (401, "authentication_error", "invalid_api_key"),
    "billing_error": (402, "insufficient_quota", "insufficient_quota"),
    "permission_error": (403, "permission_error", None),
    "not_found_error": (404, "invalid_request_error", "not_found"),
    "request_too_large": (413, "invalid_request_error", "request_too_large"),
    "rate_limit_error": (429, "rate_limit_error", "rate_limit_exceeded"),
    "api_error": (500, "server_error", None),
    "timeout_error": (504, "server_error", "timeout"),
    "overloaded_error": (529, "server_error", "overloaded"),
}


def status_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamStatusError:
    """Translate an Anthropic error answer (HTTP ``status``, JSON ``body``)."""
    anthropic_type, message = _parse(body)
    return _build(status, anthropic_type, message, retry_after(headers))


def in_band_error(data: bytes | dict[str, Any]) -> UpstreamStatusError:
    """Translate an ``event: error`` received after the stream opened with 200."""
    anthropic_type, message = _parse(data)
    status = ANTHROPIC_ERROR_TYPES.get(anthropic_type or "", (500, "", None))[0]
    return _build(status, anthropic_type, message, None)


def _parse(data: bytes | dict[str, Any]) -> tuple[str | None, str | None]:
    if isinstance(data, bytes):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None, None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )


def _build(
    status: int, anthropic_type: str | None, message: str | None, retry_after_s: float | None
) -> UpstreamStatusError:
    known = ANTHROPIC_ERROR_TYPES.get(anthropic_type or "")
    error_type, code = (known[1], known[2]) if known else (None, None)
    text = message or f"upstream answered HTTP {status}"
    if anthropic_type:
        text = f"{anthropic_type}: {text}"
    return UpstreamStatusError(
        text, status=status, error_type=error_type, code=code, retry_after_s=retry_after_s
    )
