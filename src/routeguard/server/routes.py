"""HTTP routes: the OpenAI-compatible data plane, health, readiness and metrics.

Handlers turn wire requests into typed ones, call the router, and turn results and errors into
answers. Every error reaches the client in OpenAI's envelope with the right status, and every
client request is counted and logged once, when its answer is complete (for a stream: when the
stream ends).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

import orjson

from routeguard.clients.guard import OPEN_TICKET, Ticket
from routeguard.errors import AttemptsFailedError, RouteGuardError, UpstreamError
from routeguard.net.server import Request, Response, StreamingResponse
from routeguard.providers.base import ChatStream
from routeguard.routing.router import Routed, Trace
from routeguard.server.admin import AdminRoutes
from routeguard.server.admin_ops import OperatorRoutes
from routeguard.server.admin_rollouts import RolloutRoutes
from routeguard.server.console import ConsoleRoutes
from routeguard.server.fleet_admin import FleetAdminRoutes
from routeguard.server.health import HealthRoutes
from routeguard.server.keys_admin import KeyAdminRoutes
from routeguard.server.status_api import StatusRoutes
from routeguard.wire.chat import ChatRequest, parse_chat_request, parse_embedding_request
from routeguard.wire.errors import error_body, error_envelope, sse_error_event

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["Routes", "error_response"]

log = logging.getLogger("routeguard.routes")

DEPLOYMENT_HEADER = "x-routeguard-deployment"
ATTEMPTS_HEADER = "x-routeguard-attempts"
REQUEST_ID_HEADER = "x-request-id"
_MODEL_PATHS = ("/v1/models/", "/models/")
CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection first"
_ids = random.Random()

Route = Callable[[Request], Awaitable[Response | StreamingResponse]]
T = TypeVar("T")


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


def plain_error(status: int, message: str, error_type: str, code: str | None = None) -> Response:
    return Response(status, orjson.dumps(error_envelope(message, error_type, code=code)))


def _request_id(request: Request) -> str:
    """The caller's ``x-request-id`` when it is sane, else a fresh one."""
    given = request.headers.get(REQUEST_ID_HEADER)
    if given and len(given) <= 128 and given.isprintable() and "|" not in given:
        return given
    return f"{_ids.getrandbits(64):016x}"  # unique, not secret: no system call per request


class Routes:
    """The route table; ``dispatch`` is the server's single handler."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        health = HealthRoutes(app)
        admin = AdminRoutes(app)
        chat, embeddings = self.chat_completions, self.embeddings
        self.table: dict[str, dict[str, Route]] = {
            "/v1/chat/completions": {"POST": chat},
            "/chat/completions": {"POST": chat},
            "/v1/embeddings": {"POST": embeddings},
            "/embeddings": {"POST": embeddings},
            "/v1/models": {"GET": self.models},
            "/models": {"GET": self.models},
            "/health": {"GET": health.health},
            "/health/ready": {"GET": health.ready},
            "/health/live": {"GET": health.live},
            "/metrics": {"GET": health.metrics},
            **admin.table(),
            **FleetAdminRoutes(app).table(),
            **OperatorRoutes(app).table(),
            **RolloutRoutes(app).table(),
            **StatusRoutes(app).table(),
            **ConsoleRoutes().table(),
            **KeyAdminRoutes(app).table(),
            **_inbound_table(app),
        }

    async def dispatch(self, request: Request) -> Response | StreamingResponse:
        methods = self.table.get(request.path)
        if methods is None:
            if request.path.startswith(_MODEL_PATHS) and request.method == "GET":
                try:
                    self.app.clients.identify(request.headers)
                except RouteGuardError as exc:
                    return error_response(exc)
                return self.model(request.path.partition("/models/")[2])
            return plain_error(
                404, f"Unknown path {request.path}", "invalid_request_error", "not_found"
            )
        route = methods.get(request.method)
        if route is None:
            response = plain_error(
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

    # -- the data plane ----------------------------------------------------------------------
    async def chat_completions(self, request: Request) -> Response | StreamingResponse:
        return await self._proxy(request, stream_capable=True)

    async def embeddings(self, request: Request) -> Response | StreamingResponse:
        return await self._proxy(request, stream_capable=False)

    async def _proxy(
        self, request: Request, *, stream_capable: bool
    ) -> Response | StreamingResponse:
        app = self.app
        started = time.perf_counter()
        request_id = _request_id(request)
        trace = Trace() if stream_capable else Trace(api="embeddings")
        if not app.in_flight.try_enter():
            response = _overloaded()
            self._account(response, trace, started, request_id)
            return response
        handed_over = False
        ticket = OPEN_TICKET
        try:
            ticket = app.clients.admit(request.headers)
            trace.key_id = ticket.key_id
            if stream_capable:
                chat = parse_chat_request(request.body)
                ticket.allow_model(chat.model)
                if chat.stream:
                    opened = await self._open_stream(chat, trace, started, request_id, ticket)
                    handed_over = isinstance(opened, StreamingResponse)
                    return opened
                routed_chat = await app.router.chat(chat, trace)
                body, routed = routed_chat.value.body, _meta(routed_chat)
            else:
                embedding = parse_embedding_request(request.body)
                ticket.allow_model(embedding.model)
                routed_bytes = await app.router.embed(embedding, trace)
                body, routed = routed_bytes.value, _meta(routed_bytes)
            answer = Response(200, body, _headers(routed, request_id))
        except RouteGuardError as exc:
            answer = error_response(exc)
            answer.headers.append((REQUEST_ID_HEADER, request_id))
        except asyncio.CancelledError:
            # The client went away first: counted and logged as nginx does, 499.
            self._account(Response(CLIENT_CLOSED), trace, started, request_id)
            raise
        finally:
            if not handed_over:
                app.in_flight.leave()
                ticket.finish(trace)
        self._account(answer, trace, started, request_id)
        return answer

    async def _open_stream(
        self, chat: ChatRequest, trace: Trace, started: float, request_id: str, ticket: Ticket
    ) -> Response | StreamingResponse:
        try:
            routed = await self.app.router.open_chat_stream(chat, trace)
        except RouteGuardError as exc:
            answer = error_response(exc)
            answer.headers.append((REQUEST_ID_HEADER, request_id))
            self._account(answer, trace, started, request_id)
            return answer
        ttft_s = time.perf_counter() - started
        app = self.app

        def finished(status: int) -> None:
            app.in_flight.leave()
            ticket.finish(trace)
            total_s = time.perf_counter() - started
            app.reporter.client_request(
                trace.group, status, trace, total_s, request_id=request_id, ttft_s=ttft_s
            )

        headers = _headers(_meta(routed), request_id)
        return StreamingResponse(200, _Relay(routed.value, finished), headers)

    def _account(self, answer: Response, trace: Trace, started: float, request_id: str) -> None:
        total_s = time.perf_counter() - started
        self.app.reporter.client_request(
            trace.group, answer.status, trace, total_s, request_id=request_id
        )

    async def models(self, request: Request) -> Response:
        created = int(self.app.started_at)
        key = self.app.clients.identify(request.headers)  # a key sees the groups it may use
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "routeguard"}
            for name in self.app.router.groups
            if key is None or key.allowed is None or name in key.allowed
        ]
        return Response(200, orjson.dumps({"object": "list", "data": data}))

    def model(self, model_id: str) -> Response:
        """``GET /v1/models/{id}``: one model group, or OpenAI's 404 for an unknown id."""
        name = unquote(model_id)
        if name not in self.app.router.groups:
            return Response(
                404,
                orjson.dumps(
                    error_envelope(
                        f"The model '{name}' does not exist",
                        "invalid_request_error",
                        param="model",
                        code="model_not_found",
                    )
                ),
            )
        entry = {
            "id": name,
            "object": "model",
            "created": int(self.app.started_at),
            "owned_by": "routeguard",
        }
        return Response(200, orjson.dumps(entry))


def _inbound_table(app: RouteGuardApp) -> dict[str, dict[str, Route]]:
    # Imported here: the inbound routes build on this module's relay and error helpers.
    from routeguard.server.inbound_routes import InboundRoutes  # noqa: PLC0415

    return InboundRoutes(app).table()


def _meta(routed: Routed[T]) -> tuple[str, int]:
    return routed.deployment.name, routed.attempts


def _headers(meta: tuple[str, int], request_id: str) -> list[tuple[str, str]]:
    deployment, attempts = meta
    return [
        (DEPLOYMENT_HEADER, deployment),
        (ATTEMPTS_HEADER, str(attempts)),
        (REQUEST_ID_HEADER, request_id),
    ]


def _overloaded() -> Response:
    response = plain_error(
        503,
        "RouteGuard is at its in-flight request limit; retry shortly.",
        "service_unavailable",
        code="overloaded",
    )
    response.headers.append(("retry-after", "1"))
    return response


class _Relay:
    """Relays a provider stream to the client.

    A failure after bytes went out ends the stream with an OpenAI error event. A class rather
    than a generator, because cleanup (closing the upstream, leaving the in-flight limit,
    accounting) must run even when the server closes it before the first iteration (the client
    already left).
    """

    def __init__(
        self,
        stream: ChatStream,
        finished: Callable[[int], None],
        error_event: Callable[[RouteGuardError], bytes] = sse_error_event,
    ) -> None:
        self._stream = stream
        self._error_event = error_event
        self._iterator = aiter(stream)
        self._finished: Callable[[int], None] | None = finished
        self._failed = False
        self._complete = False

    def __aiter__(self) -> _Relay:
        return self

    async def __anext__(self) -> bytes:
        if self._failed:
            raise StopAsyncIteration
        try:
            return await anext(self._iterator)
        except StopAsyncIteration:
            self._complete = True
            raise
        except UpstreamError as exc:
            self._failed = True
            log.warning(
                "stream failed mid-answer: %s", exc.message, extra={"deployment": exc.deployment}
            )
            return self._error_event(exc)

    async def aclose(self) -> None:
        if self._finished is not None:
            finished, self._finished = self._finished, None
            aclose = getattr(self._iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            await self._stream.aclose()
            # What the client got: a whole stream, one ended by an error event, or nothing more
            # because it left first.
            finished(502 if self._failed else 200 if self._complete else CLIENT_CLOSED)
