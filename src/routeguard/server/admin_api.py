"""What every admin endpoint shares: bearer-token authentication, JSON in and out, errors.

Admin areas (breakers and weights, fleet, status and incidents, client keys, the console) each
live in a module of their own and build their routes with :class:`AdminGuard`, so every one of
them authenticates the same way and records the operator's *name* (never the token).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from pydantic import SecretStr

from routeguard.errors import InvalidRequestError, RouteGuardError
from routeguard.net.server import Handler as Route
from routeguard.net.server import Request, Response, StreamingResponse

__all__ = [
    "AdminError",
    "AdminGuard",
    "AdminHandler",
    "Route",
    "json_body",
    "json_response",
]

log = logging.getLogger("routeguard.admin")

AdminHandler = Callable[[Request, str], Awaitable[Response | StreamingResponse]]


class AdminError(RouteGuardError):
    """An admin call refused with a specific status (401, 403, 404, 409...)."""

    def __init__(self, status: int, message: str, error_type: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code


def json_response(status: int, body: object) -> Response:
    return Response(status, orjson.dumps(body))


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body; an empty body is ``{}``."""
    if not request.body.strip():
        return {}
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    return data


class AdminGuard:
    """Wraps admin handlers in bearer-token authentication against the *current* tokens.

    ``tokens`` is a callable so a reload that changes ``admin.tokens`` takes effect at once.
    """

    def __init__(self, tokens: Callable[[], Mapping[str, SecretStr]]) -> None:
        self._tokens = tokens

    def __call__(self, handler: AdminHandler) -> Route:
        async def route(request: Request) -> Response | StreamingResponse:
            return await handler(request, self.operator(request))

        return route

    def operator(self, request: Request) -> str:
        """The name of the operator whose token the request carries, or an AdminError."""
        tokens = self._tokens()
        if not tokens:
            raise AdminError(
                403, "The admin API is disabled: no admin.tokens configured.", "permission_error"
            )
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        matched = None
        candidate = presented.strip().encode()
        for name, secret in tokens.items():
            # Compare against every token, always, so timing says nothing about which matched.
            if hmac.compare_digest(candidate, secret.get_secret_value().encode()):
                matched = name
        if scheme.lower() != "bearer" or not presented or matched is None:
            log.warning("admin authentication failed", extra={"path": request.path})
            raise AdminError(
                401,
                "Missing or invalid admin bearer token.",
                "authentication_error",
                "invalid_token",
            )
        return matched
