"""OpenAI Responses inbound: ``POST /v1/responses``.

An OpenAI deployment is sent the request as written (OpenAI serves ``/v1/responses`` itself,
hosted tools and all); any other deployment gets it as chat completions, answered through
:mod:`.responses_answer`. Errors use OpenAI's envelope (the same SDK reads both APIs); a stream
that fails after it started ends with an ``event: error`` whose data carries the ``error``
object, which the SDK raises as ``APIError``.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from routeguard.errors import RouteGuardError
from routeguard.inbound.base import InboundApi, InboundCall, attempt_for
from routeguard.inbound.responses_answer import ResponseBuilder, ResponsesStreamTranslator
from routeguard.inbound.responses_request import (
    ResponsesRequest,
    chat_request,
    parse_responses_request,
)
from routeguard.providers.base import NativeRequest
from routeguard.wire.chat import ChatRequest
from routeguard.wire.errors import error_envelope

__all__ = ["ResponsesApi"]


class _Translation:
    def __init__(self, request: ResponsesRequest) -> None:
        self._request = request
        self._chat: ChatRequest | None = None
        self._builder = ResponseBuilder(request.payload)

    def chat_request(self) -> ChatRequest:
        if self._chat is None:
            self._chat = chat_request(self._request)
        return self._chat

    def answer(self, body: bytes) -> bytes:
        return self._builder.from_chat(body)

    def stream_translator(self) -> ResponsesStreamTranslator:
        return ResponsesStreamTranslator(self._builder)


class ResponsesApi(InboundApi):
    name = "responses"

    def parse(self, body: bytes, headers: Mapping[str, str]) -> InboundCall:
        request = parse_responses_request(body)
        native = NativeRequest("responses", request.payload, request.stream)
        return InboundCall(
            request.model, request.stream, attempt_for(native, _Translation(request))
        )

    def stream_error(self, exc: RouteGuardError) -> bytes:
        envelope = error_envelope(exc.message, exc.error_type, param=exc.param, code=exc.code)
        event = {"type": "error", "message": exc.message, "code": exc.code, **envelope}
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"
