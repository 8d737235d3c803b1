"""HTTP routes of the inbound APIs beyond chat: Anthropic Messages, Responses, Completions.

Each request takes the same path as a chat request: the process-wide in-flight limit, one
routed call (retries, breakers, limits, fallbacks), one access line and one count by status
when the answer is complete (for a stream: when it ends), with the ``api`` recorded on both.
What differs per API, the request format and the error shape, comes from its
:class:`~routeguard.inbound.base.InboundApi`.

Client credentials: with ``clients:`` configured, ``x-api-key`` or ``Authorization: Bearer``
must carry a client key (checked, limited and accounted exactly as for chat); without it they
are accepted and ignored. ``anthropic-version`` and ``anthropic-beta`` are forwarded to
Anthropic deployments with the request.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from routeguard.clients.guard import OPEN_TICKET, Ticket
from routeguard.errors import RouteGuardError
from routeguard.inbound import CompletionsApi, CountTokensApi, MessagesApi, ResponsesApi
from routeguard.inbound.base import InboundApi, InboundCall, nobody_can_serve
from routeguard.net.server import Request, Response, StreamingResponse
from routeguard.providers.base import ChatResult, ChatStream
from routeguard.routing.router import Trace
from routeguard.server.routes import (
    CLIENT_CLOSED,
    REQUEST_ID_HEADER,
    Route,
    _headers,
    _meta,
    _Relay,
    _request_id,
    error_response,
)

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["InboundRoutes"]


class _Overloaded(RouteGuardError):
    """RouteGuard itself is at its in-flight limit (before any routing)."""

    status = 503
    error_type = "service_unavailable"
    code = "overloaded"

    def headers(self) -> list[tuple[str, str]]:
        return [("retry-after", "1")]


_OVERLOADED = "RouteGuard is at its in-flight request limit; retry shortly."


class InboundRoutes:
    """Serves every :class:`InboundApi` through the app's router."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app

    def table(self) -> dict[str, dict[str, Route]]:
        messages = self._route(MessagesApi())
        count = self._route(CountTokensApi())
        responses = self._route(ResponsesApi())
        completions = self._route(CompletionsApi())
        return {
            "/v1/messages": {"POST": messages},
            "/v1/messages/count_tokens": {"POST": count},
            "/v1/responses": {"POST": responses},
            "/responses": {"POST": responses},
            "/v1/completions": {"POST": completions},
            "/completions": {"POST": completions},
        }

    def _route(self, api: InboundApi) -> Route:
        async def route(request: Request) -> Response | StreamingResponse:
            return await self.serve(api, request)

        return route

    async def serve(self, api: InboundApi, request: Request) -> Response | StreamingResponse:
        app = self.app
        started = time.perf_counter()
        request_id = _request_id(request)
        trace = Trace(api=api.name)
        if not app.in_flight.try_enter():
            answer = _error(api, _Overloaded(_OVERLOADED), request_id)
            self._account(answer.status, trace, started, request_id)
            return answer
        handed_over = False
        call: InboundCall | None = None
        ticket = OPEN_TICKET
        try:
            ticket = app.clients.admit(request.headers)
            trace.key_id = ticket.key_id
            call = api.parse(request.body, request.headers)
            ticket.allow_model(call.model)
            routed = await app.router.serve(call.model, call.attempt, trace)
            value = routed.value
            headers = _headers(_meta(routed), request_id)
            if type(value) is not ChatResult:
                opened = self._stream(api, value, headers, trace, started, request_id, ticket)
                handed_over = True
                return opened
            answer = Response(200, value.body, headers)
        except RouteGuardError as exc:
            if call is not None and call.local is not None and nobody_can_serve(exc):
                answer = Response(200, call.local(), [(REQUEST_ID_HEADER, request_id)])
            else:
                answer = _error(api, exc, request_id)
        except asyncio.CancelledError:
            self._account(CLIENT_CLOSED, trace, started, request_id)
            raise
        finally:
            if not handed_over:
                app.in_flight.leave()
                ticket.finish(trace)
        self._account(answer.status, trace, started, request_id)
        return answer

    def _stream(  # noqa: PLR0917 (private; the values of one request, passed along once)
        self,
        api: InboundApi,
        value: ChatResult | ChatStream,
        headers: list[tuple[str, str]],
        trace: Trace,
        started: float,
        request_id: str,
        ticket: Ticket,
    ) -> StreamingResponse:
        assert isinstance(value, ChatStream)
        ttft_s = time.perf_counter() - started
        app = self.app

        def finished(status: int) -> None:
            app.in_flight.leave()
            ticket.finish(trace)
            total_s = time.perf_counter() - started
            app.reporter.client_request(
                trace.group, status, trace, total_s, request_id=request_id, ttft_s=ttft_s
            )

        return StreamingResponse(200, _Relay(value, finished, api.stream_error), headers)

    def _account(self, status: int, trace: Trace, started: float, request_id: str) -> None:
        total_s = time.perf_counter() - started
        self.app.reporter.client_request(trace.group, status, trace, total_s, request_id=request_id)


def _error(api: InboundApi, exc: RouteGuardError, request_id: str) -> Response:
    """RouteGuard's error answer (status, headers) with the API's own status and body."""
    answer = error_response(exc)
    answer.status, answer.body = api.error(exc)
    answer.headers.append((REQUEST_ID_HEADER, request_id))
    return answer
