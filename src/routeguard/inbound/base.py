"""The contract of an inbound API: how a request in a client's format reaches any deployment.

Chat completions is RouteGuard's lingua franca: every adapter speaks it. Another inbound API
(Anthropic Messages, OpenAI Responses, legacy Completions) is served per deployment in one of
two ways, decided by the provider's :attr:`~routeguard.providers.base.Provider.native_apis`:

* the provider speaks the API natively: the request is forwarded as the client wrote it
  (:meth:`~routeguard.providers.base.Provider.forward`), and the answer relayed as is;
* otherwise the request is translated into chat completions, sent through the adapter's
  ``chat`` / ``open_chat_stream``, and the answer translated back (a :class:`Translation`).

Which of the two happens is a property of each attempt, so one model group may mix Anthropic
and OpenAI-compatible deployments and fail over between them with the client none the wiser.
Everything else (retries, breakers, limits, fallbacks, metrics) is the router's, unchanged.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from routeguard.errors import (
    InvalidRequestError,
    RouteGuardError,
    UnsupportedByDeploymentError,
    UpstreamBadResponseError,
)
from routeguard.providers.base import ChatResult, ChatStream, NativeRequest, Usage
from routeguard.routing.groups import Deployment
from routeguard.wire.chat import ChatRequest
from routeguard.wire.errors import error_body as openai_error_body
from routeguard.wire.errors import sse_error_event
from routeguard.wire.sse import SSEDecoder, SSEEvent

__all__ = [
    "Attempt",
    "InboundApi",
    "InboundCall",
    "StreamTranslator",
    "TranslatedStream",
    "Translation",
    "attempt_for",
    "load_json_object",
    "nobody_can_serve",
]

Attempt = Callable[[Deployment], Awaitable[ChatResult | ChatStream]]


@dataclass(frozen=True, slots=True)
class InboundCall:
    """A parsed inbound request: the group it names, whether it streams, and how to serve it
    on one deployment.

    ``local`` answers (a whole JSON body) when no deployment of the group can serve the request
    at all; without it the client gets the 400 that says why.
    """

    model: str
    stream: bool
    attempt: Attempt
    local: Callable[[], bytes] | None = None


def load_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or the 400 that says what is wrong with it."""
    if not body:
        raise InvalidRequestError("Request body is empty; expected a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    return data


def nobody_can_serve(exc: RouteGuardError) -> bool:
    """Whether routing failed only because no deployment supports the request."""
    failures = getattr(exc, "failures", [exc])
    return all(isinstance(f, UnsupportedByDeploymentError) for f in failures)


class InboundApi(abc.ABC):
    """One inbound API: parses requests and shapes errors the way its clients expect."""

    name: str
    """The ``api`` label of metrics and access lines (a fixed, bounded set)."""

    @abc.abstractmethod
    def parse(self, body: bytes, headers: Mapping[str, str]) -> InboundCall:
        """Validate the request once, at the edge; raise InvalidRequestError if it is wrong."""

    def error(self, exc: RouteGuardError) -> tuple[int, bytes]:
        """The status and body of an error answer; OpenAI's envelope unless overridden."""
        return exc.status, openai_error_body(exc)

    def stream_error(self, exc: RouteGuardError) -> bytes:
        """The terminal event of a stream that failed after bytes reached the client."""
        return sse_error_event(exc)


class StreamTranslator(Protocol):
    """Turns OpenAI chat-completion chunks into another API's stream events."""

    @property
    def finished(self) -> bool: ...

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """Translate one chunk (a usage-only chunk included: the translator keeps its usage)."""

    def finish(self, usage: Usage | None) -> list[bytes]:
        """The closing events; ``usage`` stands in if no chunk carried any."""


class Translation(Protocol):
    """How one inbound request travels as chat completions, and its answer back."""

    def chat_request(self) -> ChatRequest: ...

    def answer(self, body: bytes) -> bytes: ...

    def stream_translator(self) -> StreamTranslator: ...


def attempt_for(native: NativeRequest, translation: Translation | None) -> Attempt:
    """The per-deployment call: native where the provider speaks the API, else translated."""

    async def attempt(deployment: Deployment) -> ChatResult | ChatStream:
        provider = deployment.provider
        if translation is None or native.api in provider.native_apis:
            return await provider.forward(native)
        try:
            chat = translation.chat_request()
        except UnsupportedByDeploymentError as exc:
            mine = copy.copy(exc)  # the translation is shared by every attempt: blame this one
            mine.deployment = deployment.name
            raise mine from None
        if chat.stream:
            inner = await provider.open_chat_stream(chat)
            return TranslatedStream(inner, translation.stream_translator(), deployment.name)
        result = await provider.chat(chat)
        try:
            return ChatResult(translation.answer(result.body), result.usage)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UpstreamBadResponseError(
                "upstream chat answer could not be translated", deployment=deployment.name
            ) from None

    return attempt


class TranslatedStream(ChatStream):
    """An adapter's OpenAI chunk stream, re-emitted as another API's events."""

    def __init__(self, inner: ChatStream, translator: StreamTranslator, deployment: str) -> None:
        self._inner = inner
        self._translator = translator
        self._deployment = deployment
        self.usage: Usage | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        decoder = SSEDecoder()
        translator = self._translator
        try:
            async for piece in self._inner:
                out: list[bytes] = []
                for event in decoder.feed(piece):
                    out.extend(_translate(translator, event, self._inner.usage))
                if out:
                    yield b"".join(out)
            if not translator.finished:
                tail = translator.finish(self._inner.usage)
                if tail:
                    yield b"".join(tail)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UpstreamBadResponseError(
                "upstream chunk could not be translated", deployment=self._deployment
            ) from None
        finally:
            self.usage = self._inner.usage

    async def aclose(self) -> None:
        await self._inner.aclose()


def _translate(
    translator: StreamTranslator,
    event: SSEEvent,
    usage: Usage | None,
) -> list[bytes]:
    if event.data == b"[DONE]":
        return translator.finish(usage)
    chunk = orjson.loads(event.data)
    if not isinstance(chunk, dict):
        raise ValueError("chunk is not an object")
    return translator.feed(chunk)
