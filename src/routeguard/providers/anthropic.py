"""Anthropic's Messages API behind the OpenAI chat-completions contract.

``POST {api_base}/v1/messages`` with ``x-api-key`` and ``anthropic-version``; the request is
rewritten by :mod:`~routeguard.providers.anthropic_request`, answers and streams by
:mod:`~routeguard.providers.anthropic_response`, errors by
:mod:`~routeguard.providers.anthropic_errors`. Anthropic has no embeddings endpoint.

A stream is opened only once it is really flowing: :meth:`AnthropicProvider.open_chat_stream`
reads ahead until the first content (or the end) and raises if Anthropic reports an error
in-band before then (``overloaded_error`` arrives that way), because until the client has seen
content the router may still try another deployment.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import orjson

from routeguard.errors import (
    UnsupportedByDeploymentError,
    UpstreamBadResponseError,
    UpstreamError,
)
from routeguard.net.client import UpstreamResponse
from routeguard.providers.anthropic_errors import status_error
from routeguard.providers.anthropic_request import to_anthropic
from routeguard.providers.anthropic_response import StreamTranslator, to_openai_completion
from routeguard.providers.base import (
    ChatResult,
    ChatStream,
    Endpoint,
    NativeRequest,
    Provider,
    Usage,
)
from routeguard.providers.native import NativeStream, native_result, rules_for
from routeguard.wire.chat import ChatRequest, EmbeddingRequest
from routeguard.wire.sse import SSEDecoder

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"
"""The ``anthropic-version`` header: the API version whose wire format this adapter speaks."""

_PATH = "/v1/messages"
_NATIVE_PATHS = {"messages": _PATH, "count_tokens": "/v1/messages/count_tokens"}
# Client headers forwarded on a native request: they select the wire format and beta features
# the client's body was written for.
_FORWARDED_HEADERS = frozenset({"anthropic-version", "anthropic-beta"})


class AnthropicProvider(Provider):
    """``provider: anthropic``."""

    native_apis = frozenset(_NATIVE_PATHS)

    def _headers(self, given: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
        forwarded = [(k, v) for k, v in given if k in _FORWARDED_HEADERS]
        version = (
            []
            if any(k == "anthropic-version" for k, _ in forwarded)
            else [("anthropic-version", ANTHROPIC_VERSION)]
        )
        headers = [
            ("content-type", "application/json"),
            ("accept-encoding", "identity"),
            *version,
            *forwarded,
        ]
        if self.endpoint.api_key:
            headers.append(("x-api-key", self.endpoint.api_key))
        return headers

    def _body(self, request: ChatRequest) -> bytes:
        endpoint = self.endpoint
        try:
            body = to_anthropic(
                request.payload,
                model=endpoint.model,
                stream=request.stream,
                default_max_tokens=endpoint.default_max_tokens,
                drop_unsupported=endpoint.drop_unsupported_params,
            )
        except UpstreamError as exc:
            raise _blame(exc, endpoint) from None
        return orjson.dumps(body)

    async def _post(
        self,
        body: bytes,
        *,
        stream: bool = False,
        path: str = _PATH,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> UpstreamResponse:
        endpoint = self.endpoint
        timeouts = endpoint.stream_timeouts if stream else endpoint.timeouts
        try:
            response = await self.pool.request(
                endpoint.origin, "POST", path, self._headers(headers), body, timeouts
            )
            if response.status >= 400:
                raise status_error(response.status, await response.read(), response.headers)
        except UpstreamError as exc:
            _blame(exc, endpoint)
            raise
        return response

    async def chat(self, request: ChatRequest) -> ChatResult:
        response = await self._post(self._body(request))
        try:
            raw = await response.read()
            message = orjson.loads(raw)
            completion, usage = to_openai_completion(
                message, created=int(time.time()), model=self.endpoint.model
            )
        except orjson.JSONDecodeError:
            raise _blame(
                UpstreamBadResponseError("upstream answered 200 with a body that is not JSON"),
                self.endpoint,
            ) from None
        except UpstreamError as exc:
            _blame(exc, self.endpoint)
            raise
        return ChatResult(orjson.dumps(completion), usage)

    async def open_chat_stream(self, request: ChatRequest) -> ChatStream:
        response = await self._post(self._body(request), stream=True)
        translator = StreamTranslator(
            model=self.endpoint.model, created=int(time.time()), include_usage=request.include_usage
        )
        stream = AnthropicStream(response, translator, self.endpoint)
        await stream.prime()
        return stream

    async def forward(self, request: NativeRequest) -> ChatResult | ChatStream:
        """An Anthropic-format request, sent as the client wrote it but for ``model``."""
        path = _NATIVE_PATHS.get(request.api)
        if path is None:
            return await super().forward(request)
        body = orjson.dumps({**request.payload, "model": self.endpoint.model})
        response = await self._post(body, stream=request.stream, path=path, headers=request.headers)
        if request.stream:
            stream = NativeStream(response, rules_for(request.api), self.endpoint)
            await stream.prime()
            return stream
        try:
            return native_result(request.api, await response.read(), self.endpoint)
        except UpstreamError as exc:
            raise _blame(exc, self.endpoint) from None

    async def embed(self, request: EmbeddingRequest) -> bytes:
        raise UnsupportedByDeploymentError(
            f"Deployment '{self.endpoint.deployment}' is an Anthropic model, which cannot embed.",
            param="model",
            deployment=self.endpoint.deployment,
        )


class AnthropicStream(ChatStream):
    """An Anthropic SSE body, relayed as OpenAI chunks.

    Each upstream piece is decoded and translated as it arrives; what one piece produces is
    yielded as one write, always cut at OpenAI event boundaries.
    """

    def __init__(
        self, response: UpstreamResponse, translator: StreamTranslator, endpoint: Endpoint
    ) -> None:
        self._response = response
        # iter() is an async generator; keeping that type lets aclose() end it deterministically.
        self._pieces = cast(AsyncGenerator[bytes, None], response.iter())
        self._translator = translator
        self._decoder = SSEDecoder()
        self._endpoint = endpoint
        self._ahead: list[bytes] = []
        self.usage: Usage | None = None
        """Tokens used, known once iteration ends (partial if the stream broke)."""

    async def prime(self) -> None:
        """Read ahead until the client would see content; raise any failure before that."""
        translator = self._translator
        try:
            while not translator.started:
                piece = await anext(self._pieces, None)
                if piece is None:
                    self._check_finished()
                    return
                self._ahead.extend(self._translate(piece))
        except BaseException as exc:
            if isinstance(exc, UpstreamError):
                _blame(exc, self._endpoint)
            await self.aclose()
            raise

    def _translate(self, piece: bytes) -> list[bytes]:
        out: list[bytes] = []
        translate = self._translator.translate
        for event in self._decoder.feed(piece):
            out.extend(translate(event))
        return out

    def _check_finished(self) -> None:
        if not self._translator.finished:
            raise UpstreamBadResponseError("Anthropic stream ended without message_stop")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._ahead:
                ahead, self._ahead = self._ahead, []
                yield b"".join(ahead)
            async for piece in self._pieces:
                out = self._translate(piece)
                if out:
                    yield out[0] if len(out) == 1 else b"".join(out)
            self._check_finished()
        except UpstreamError as exc:
            _blame(exc, self._endpoint)
            raise
        finally:
            self.usage = self._translator.usage

    async def aclose(self) -> None:
        await self._pieces.aclose()
        self._response.close()


def _blame(exc: UpstreamError, endpoint: Endpoint) -> UpstreamError:
    exc.deployment, exc.provider = endpoint.deployment, endpoint.provider
    return exc
