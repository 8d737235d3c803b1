"""HTTP routes: the OpenAI-compatible data plane and the health endpoint.

Handlers turn wire requests into typed ones, call the router, and turn results and errors into
answers. Every error reaches the client in OpenAI's envelope with the right status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from routeguard.errors import AttemptsFailedError, RouteGuardError, UpstreamError
from routeguard.net.server import Request, Response, StreamingResponse
from routeguard.providers.base import ChatStream
from routeguard.wire.chat import parse_chat_request, parse_embedding_request
from routeguard.wire.errors import error_body, error_envelope, sse_error_event

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["Routes", "error_response"]

log = logging.getLogger("routeguard.routes")

DEPLOYMENT_HEADER = "x-routeguard-deployment"
ATTEMPTS_HEADER = "x-routeguard-attempts"

Route = Callable[[Request], Awaitable[Response | StreamingResponse]]


def error_response(exc: RouteGuardError) -> Response:
    headers = exc.headers()
    tried = exc.failures if isinstance(exc, AttemptsFailedError) else [exc]
    last = next((f for f in reversed(tried) if isinstance(f, UpstreamError)), None)
    if last is not None and last.deployment:
        headers.append((DEPLOYMENT_HEADER, last.deployment))
    attempts = sum(isinstance(f, UpstreamError) for f in tried)
    if attempts:
        headers.append((ATTEMPTS_HEADER, str(attempts)))
    return Response(exc.status, error_body(exc), headers)


_OVERLOADED = Response(
    503,
    orjson.dumps(
        error_envelope(
            "RouteGuard is at its in-flight request limit; retry shortly.",
            "service_unavailable",
            code="overloaded",
        )
    ),
    [("retry-after", "1")],
)


def _plain_error(status: int, message: str, error_type: str, code: str | None = None) -> Response:
    return Response(status, orjson.dumps(error_envelope(message, error_type, code=code)))


class Routes:
    """The route table; ``dispatch`` is the server's single handler."""

    def __init__(self, app: RouteGuardApp, *, version: str) -> None:
        self.app = app
        self.version = version
        self.started_at = app.started_at
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
        limit = self.app.in_flight
        if not limit.try_enter():
            return _OVERLOADED
        handed_over = False
        try:
            chat = parse_chat_request(request.body)
            router = self.app.router
            if chat.stream:
                stream = await router.open_chat_stream(chat)
                headers = [
                    (DEPLOYMENT_HEADER, stream.deployment.name),
                    (ATTEMPTS_HEADER, str(stream.attempts)),
                ]
                handed_over = True  # the relay leaves the limit when the stream ends
                return StreamingResponse(200, _Relay(stream.value, limit.leave), headers)
            result = await router.chat(chat)
            headers = [
                (DEPLOYMENT_HEADER, result.deployment.name),
                (ATTEMPTS_HEADER, str(result.attempts)),
            ]
            return Response(200, result.value.body, headers)
        finally:
            if not handed_over:
                limit.leave()

    async def embeddings(self, request: Request) -> Response:
        limit = self.app.in_flight
        if not limit.try_enter():
            return _OVERLOADED
        try:
            embedding = parse_embedding_request(request.body)
            result = await self.app.router.embed(embedding)
        finally:
            limit.leave()
        headers = [
            (DEPLOYMENT_HEADER, result.deployment.name),
            (ATTEMPTS_HEADER, str(result.attempts)),
        ]
        return Response(200, result.value, headers)

    async def models(self, request: Request) -> Response:
        created = int(self.started_at)
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "routeguard"}
            for name in self.app.router.groups
        ]
        return Response(200, orjson.dumps({"object": "list", "data": data}))

    async def health(self, request: Request) -> Response:
        groups = {
            name: {"deployments": len(group.members), "routable": group.routable}
            for name, group in self.app.router.groups.items()
        }
        routable = any(group.routable for group in self.app.router.groups.values())
        body = {
            "status": "ok" if routable else "unavailable",
            "version": self.version,
            "uptime_s": round(time.time() - self.started_at, 3),
            "model_groups": groups,
        }
        return Response(200 if routable else 503, orjson.dumps(body))


class _Relay:
    """Relays a provider stream to the client.

    A failure after bytes went out ends the stream with an OpenAI error event. A class rather
    than a generator, because cleanup (closing the upstream, leaving the in-flight limit) must
    run even when the server closes it before the first iteration (the client already left).
    """

    def __init__(self, stream: ChatStream, done: Callable[[], None]) -> None:
        self._stream = stream
        self._iterator = aiter(stream)
        self._done: Callable[[], None] | None = done
        self._failed = False

    def __aiter__(self) -> _Relay:
        return self

    async def __anext__(self) -> bytes:
        if self._failed:
            raise StopAsyncIteration
        try:
            return await anext(self._iterator)
        except UpstreamError as exc:
            self._failed = True
            log.warning(
                "stream failed mid-answer: %s", exc.message, extra={"deployment": exc.deployment}
            )
            return sse_error_event(exc)

    async def aclose(self) -> None:
        if self._done is not None:
            done, self._done = self._done, None
            done()
            aclose = getattr(self._iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            await self._stream.aclose()
