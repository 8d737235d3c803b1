"""Anthropic Messages inbound: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Anthropic deployments get the request as the client wrote it (:mod:`.base` explains the
choice); every other deployment gets it as chat completions and answers through
:mod:`.messages_answer`.

Errors reach the client in Anthropic's shape, ``{"type": "error", "error": {"type", "message"}}``,
which the ``anthropic`` SDK turns into its exception classes by status:

=====================================  ======  ============================
RouteGuard answer                      status  Anthropic ``error.type``
=====================================  ======  ============================
bad request (ours or the provider's)   400     ``invalid_request_error``
provider key refused                   401     ``authentication_error``
unknown model group                    404     ``not_found_error``
body too large                         413     ``request_too_large``
rate limited (a group at capacity)     429     ``rate_limit_error``
overloaded: RouteGuard's in-flight     529     ``overloaded_error``
limit, every breaker open, or a
provider's own 529
other upstream failure (502)           502     ``api_error``
upstream timeout (504)                 504     ``timeout_error``
=====================================  ======  ============================

RouteGuard's own 503s become 529 because that is how Anthropic says "overloaded, come back
later" and what Anthropic clients (SDKs, coding agents) back off and retry on; ``Retry-After``
is kept. A failure after a stream started ends it with an ``event: error`` carrying the same
object, which the SDK raises.

``count_tokens`` is forwarded to an Anthropic deployment; other deployments are skipped, and a
group with no Anthropic deployment gets an estimate (about four characters per token of the
chat translation) computed locally, since no OpenAI-compatible API counts Anthropic tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson

from routeguard.errors import RouteGuardError
from routeguard.inbound.base import InboundApi, InboundCall, attempt_for
from routeguard.inbound.messages_answer import MessagesStreamTranslator, to_message
from routeguard.inbound.messages_request import (
    MessagesRequest,
    chat_request,
    parse_messages_request,
    to_chat_payload,
)
from routeguard.providers.base import NativeApi, NativeRequest
from routeguard.wire.chat import ChatRequest

__all__ = ["CountTokensApi", "MessagesApi", "anthropic_error"]

_FORWARDED = ("anthropic-version", "anthropic-beta")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _status(exc: RouteGuardError) -> int:
    last = getattr(exc, "last", exc)
    if exc.status == 503 or getattr(last, "reason", None) == "overloaded":
        return 529
    return exc.status


def anthropic_error(exc: RouteGuardError) -> tuple[int, bytes]:
    """The status and Anthropic-shaped body for an error."""
    status = _status(exc)
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"type": "error", "error": {"type": kind, "message": exc.message}}
    return status, orjson.dumps(body)


def _native(request: MessagesRequest, headers: Mapping[str, str], api: NativeApi) -> NativeRequest:
    kept = tuple((name, headers[name]) for name in _FORWARDED if name in headers)
    return NativeRequest(api, request.payload, request.stream, kept)


class _Translation:
    """A Messages request as chat completions, translated once and reused by every attempt."""

    def __init__(self, request: MessagesRequest) -> None:
        self._request = request
        self._chat: ChatRequest | None = None

    def chat_request(self) -> ChatRequest:
        if self._chat is None:
            self._chat = chat_request(self._request)
        return self._chat

    def answer(self, body: bytes) -> bytes:
        return to_message(body)

    def stream_translator(self) -> MessagesStreamTranslator:
        return MessagesStreamTranslator()


class _AnthropicShaped(InboundApi):
    def error(self, exc: RouteGuardError) -> tuple[int, bytes]:
        return anthropic_error(exc)

    def stream_error(self, exc: RouteGuardError) -> bytes:
        return b"event: error\ndata: " + anthropic_error(exc)[1] + b"\n\n"


class MessagesApi(_AnthropicShaped):
    name = "messages"

    def parse(self, body: bytes, headers: Mapping[str, str]) -> InboundCall:
        request = parse_messages_request(body)
        native = _native(request, headers, "messages")
        return InboundCall(
            request.model, request.stream, attempt_for(native, _Translation(request))
        )


class CountTokensApi(_AnthropicShaped):
    name = "messages"

    def parse(self, body: bytes, headers: Mapping[str, str]) -> InboundCall:
        request = parse_messages_request(body, count_tokens=True)
        native = _native(request, headers, "count_tokens")
        # Only Anthropic counts Anthropic tokens: others are skipped (the router moves on, and
        # their latency statistics never see a call that did not happen); a group without an
        # Anthropic deployment gets the local estimate.
        return InboundCall(
            request.model, False, attempt_for(native, None), lambda: _estimate(request)
        )


def _estimate(request: MessagesRequest) -> bytes:
    try:
        chat = to_chat_payload(request.payload, stream=False)
        text = orjson.dumps([chat["messages"], chat.get("tools")])
    except RouteGuardError:
        text = orjson.dumps([request.payload.get("system"), request.payload["messages"]])
    return orjson.dumps({"input_tokens": max(1, math.ceil(len(text) / 4))})
