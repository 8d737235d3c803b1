"""The OpenAI error envelope: ``{"error": {"message", "type", "param", "code"}}``.

Every error RouteGuard answers with, whatever its cause, has this shape, because it is what the
official SDKs parse into their exception classes.
"""

from __future__ import annotations

import orjson

from routeguard.errors import RouteGuardError

__all__ = ["error_body", "error_envelope", "sse_error_event"]


def error_envelope(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, dict[str, str | None]]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_body(exc: RouteGuardError) -> bytes:
    """The JSON body for an error answer."""
    return orjson.dumps(error_envelope(exc.message, exc.error_type, param=exc.param, code=exc.code))


def sse_error_event(exc: RouteGuardError) -> bytes:
    """A terminal SSE event for a stream that fails after bytes reached the client.

    The OpenAI SDK raises ``APIError`` when an event carries an ``error`` object, so the client
    sees a failure instead of a silently truncated answer.
    """
    return b"data: " + error_body(exc) + b"\n\n"
