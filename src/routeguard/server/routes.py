"""HTTP routes: the OpenAI-compatible data plane and the health endpoint.

Handlers turn wire requests into typed ones, call the router, and turn results and errors into
answers. Every error reaches the client in OpenAI's envelope with the right status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

from routeguard.errors import RouteGuardError, UpstreamError
from routeguard.net.server import Request, Response, StreamingResponse
from routeguard.providers.base import ChatStream
from routeguard.routing.router import Router
from routeguard.wire.chat import parse_chat_request, parse_embedding_request
from routeguard.wire.errors import error_body, error_envelope, sse_error_event

__all__ = ["Routes", "error_response"]

log = logging.getLogger("routeguard.routes")

DEPLOYMENT_HEADER = "x-routeguard-deployment"

Route = Callable[[Request], Awaitable[Response | StreamingResponse]]


def error_response(exc: RouteGuardError) -> Response:
    headers = exc.headers()
    if isinstance(exc, UpstreamError) and exc.deployment:
        headers.append((DEPLOYMENT_HEADER, exc.deployment))
    return Response(exc.status, error_body(exc), headers)


def _plain_error(status: int, message: str, error_type: str, code: str | None = None) -> Response:
    return Response(status, orjson.dumps(error_envelope(message, error_type, code=code)))


class Routes:
    """The route table; ``dispatch`` is the server's single handler."""

    def __init__(self, router: Router, *, version: str, started_at: float) -> None:
        self.router = router
        self.version = version
        self.started_at = started_at
        self._models_body = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": int(started_at),
                        "owned_by": "routeguard",
                    }
                    for name in router.groups
                ],
            }
        )
        chat, embeddings = self.chat_completions, self.embeddings
        self.table: dict[str, dict[str, Route]] = {
            "/v1/chat/completions": {"POST": chat},
            "/chat/completions": {"POST": chat},
            "/v1/embeddings": {"POST": embeddings},
            "/embeddings": {"POST": embeddings},
            "/v1/models": {"GET": self.models},
            "/models": {"GET": self.models},
            "/health": {"GET": self.health},
        }

    async def dispatch(self, request: Request) -> Response | StreamingResponse:
        methods = self.table.get(request.path)
        if methods is None:
            return _plain_error(
                404, f"Unknown path {request.path}", "invalid_request_error", "not_found"
            )
        route = methods.get(request.method)
        if route is None:
            response = _plain_error(
                405,
                f"Method {request.method} not allowed on {request.path}",
                "invalid_request_error",
            )
            response.headers.append(("allow", ", ".join(methods)))
            return response
        try:
            return await route(request)
        except RouteGuardError as exc:
            return error_response(exc)

    async def chat_completions(self, request: Request) -> Response | StreamingResponse:
        chat = parse_chat_request(request.body)
        if chat.stream:
            routed = await self.router.open_chat_stream(chat)
            return StreamingResponse(
                200, _relay(routed.value), [(DEPLOYMENT_HEADER, routed.deployment.name)]
            )
        result = await self.router.chat(chat)
        return Response(200, result.value.body, [(DEPLOYMENT_HEADER, result.deployment.name)])

    async def embeddings(self, request: Request) -> Response:
        embedding = parse_embedding_request(request.body)
        result = await self.router.embed(embedding)
        return Response(200, result.value, [(DEPLOYMENT_HEADER, result.deployment.name)])

    async def models(self, request: Request) -> Response:
        return Response(200, self._models_body)

    async def health(self, request: Request) -> Response:
        groups = {
            name: {"deployments": len(group.members), "routable": group.routable}
            for name, group in self.router.groups.items()
        }
        routable = any(group.routable for group in self.router.groups.values())
        body = {
            "status": "ok" if routable else "unavailable",
            "version": self.version,
            "uptime_s": round(time.time() - self.started_at, 3),
            "model_groups": groups,
        }
        return Response(200 if routable else 503, orjson.dumps(body))


async def _relay(stream: ChatStream) -> AsyncIterator[bytes]:
    """Relay a provider stream; a failure after bytes went out ends it with an error event."""
    try:
        async for chunk in stream:
            yield chunk
    except UpstreamError as exc:
        log.warning(
            "stream failed mid-answer: %s", exc.message, extra={"deployment": exc.deployment}
        )
        yield sse_error_event(exc)
    finally:
        await stream.aclose()
