"""OpenAI and OpenAI-compatible servers (vLLM, llama.cpp, TGI in OpenAI mode).

The wire format is already ours, so the adapter only swaps the model name, adds credentials, and
checks what comes back: bodies must be JSON, streams must end with ``data: [DONE]``. Answers are
relayed byte for byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from routeguard.errors import UpstreamBadResponseError, UpstreamError, UpstreamStatusError
from routeguard.net.client import UpstreamPool, UpstreamResponse
from routeguard.providers.base import (
    ChatResult,
    ChatStream,
    Endpoint,
    NativeRequest,
    Provider,
    Usage,
    retry_after,
)
from routeguard.providers.batching import EmbeddingBatcher
from routeguard.providers.native import NativeStream, native_result, rules_for
from routeguard.wire.chat import ChatRequest, EmbeddingRequest

__all__ = ["OpenAIProvider", "status_error"]

_DONE = b"data: [DONE]"
# What each flavour serves as is: vLLM has /v1/completions; only OpenAI itself has /v1/responses.
_NATIVE: dict[str, frozenset[str]] = {
    "openai": frozenset({"completions", "responses"}),
    "vllm": frozenset({"completions"}),
}
_NATIVE_PATHS = {"completions": "/completions", "responses": "/responses"}


class OpenAIProvider(Provider):
    """``provider: openai`` and ``provider: vllm``."""

    # _headers() once per adapter, on first use (a subclass may need its own __init__ first):
    # the endpoint is frozen, and the pool only reads the list.
    _header_list: list[tuple[str, str]] | None = None

    def __init__(self, endpoint: Endpoint, pool: UpstreamPool) -> None:
        super().__init__(endpoint, pool)
        self.native_apis = _NATIVE.get(endpoint.provider, frozenset())
        settings = endpoint.batching
        self._batcher = (
            EmbeddingBatcher(self._embed_now, settings, deployment=endpoint.deployment)
            if settings is not None
            else None
        )

    def _headers(self) -> list[tuple[str, str]]:
        headers = [("content-type", "application/json"), ("accept-encoding", "identity")]
        if self.endpoint.api_key:
            headers.append(("authorization", f"Bearer {self.endpoint.api_key}"))
        return headers

    def _body(self, payload: dict[str, Any]) -> bytes:
        return orjson.dumps({**payload, "model": self.endpoint.model})

    def path(self, operation: str) -> str:
        """The request path for an operation such as ``/chat/completions``."""
        return operation

    def error_for(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        """Translate an error answer; dialects of the OpenAI format override this."""
        return status_error(status, body, headers)

    async def _post(
        self, path: str, payload: dict[str, Any], *, stream: bool = False
    ) -> UpstreamResponse:
        endpoint = self.endpoint
        headers = self._header_list
        if headers is None:
            headers = self._header_list = self._headers()
        try:
            response = await self.pool.request(
                endpoint.origin,
                "POST",
                self.path(path),
                headers,
                self._body(payload),
                endpoint.stream_timeouts if stream else endpoint.timeouts,
            )
            if response.status >= 400:
                raise self.error_for(response.status, await response.read(), response.headers)
        except UpstreamError as exc:
            exc.deployment, exc.provider = endpoint.deployment, endpoint.provider
            raise
        return response

    async def _post_json(self, path: str, payload: dict[str, Any]) -> tuple[bytes, Any]:
        response = await self._post(path, payload)
        try:
            body = await response.read()
            return body, orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamBadResponseError(
                "upstream answered 200 with a body that is not JSON",
                deployment=self.endpoint.deployment,
                provider=self.endpoint.provider,
            ) from None
        except UpstreamError as exc:
            exc.deployment, exc.provider = self.endpoint.deployment, self.endpoint.provider
            raise

    async def chat(self, request: ChatRequest) -> ChatResult:
        body, data = await self._post_json("/chat/completions", request.payload)
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamBadResponseError(
                "upstream answer has no 'choices'",
                deployment=self.endpoint.deployment,
                provider=self.endpoint.provider,
            )
        return ChatResult(body, _usage(data.get("usage")))

    async def open_chat_stream(self, request: ChatRequest) -> ChatStream:
        response = await self._post("/chat/completions", request.payload, stream=True)
        return _OpenAIStream(response, self.endpoint.deployment, self.endpoint.provider)

    async def forward(self, request: NativeRequest) -> ChatResult | ChatStream:
        """A Completions or Responses request, sent as the client wrote it but for ``model``."""
        if request.api not in self.native_apis:
            return await super().forward(request)
        path = _NATIVE_PATHS[request.api]
        response = await self._post(path, request.payload, stream=request.stream)
        if request.stream:
            stream = NativeStream(response, rules_for(request.api), self.endpoint)
            await stream.prime()
            return stream
        try:
            return native_result(request.api, await response.read(), self.endpoint)
        except UpstreamError as exc:
            exc.deployment, exc.provider = self.endpoint.deployment, self.endpoint.provider
            raise

    async def embed(self, request: EmbeddingRequest) -> bytes:
        if self._batcher is not None:
            return await self._batcher.embed(request.payload)
        return await self._embed_now(request.payload)

    async def _embed_now(self, payload: dict[str, Any]) -> bytes:
        body, data = await self._post_json("/embeddings", payload)
        if not isinstance(data, dict) or "data" not in data:
            raise UpstreamBadResponseError(
                "upstream embeddings answer has no 'data'",
                deployment=self.endpoint.deployment,
                provider=self.endpoint.provider,
            )
        return body


class _OpenAIStream(ChatStream):
    """Relays upstream SSE bytes, cut at event boundaries so a failure never splits an event."""

    def __init__(self, response: UpstreamResponse, deployment: str, provider: str) -> None:
        self._response = response
        self._deployment = deployment
        self._provider = provider

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pending = b""
        done = False
        try:
            async for piece in self._response.iter():
                data = pending + piece if pending else piece
                cut = max(data.rfind(b"\n\n") + 2, data.rfind(b"\r\n\r\n") + 4)
                if cut <= 1:
                    pending = data
                    continue
                pending = data[cut:]
                events = data[:cut] if pending else data
                if not done and _DONE in events:
                    done = True
                if b'"usage"' in events:
                    self._capture_usage(events)
                yield events
        except UpstreamError as exc:
            exc.deployment, exc.provider = self._deployment, self._provider
            raise
        if not done:
            raise UpstreamBadResponseError(
                "upstream stream ended without data: [DONE]",
                deployment=self._deployment,
                provider=self._provider,
            )

    def _capture_usage(self, events: bytes) -> None:
        """Read token usage from the usage chunk; only events that mention it are parsed."""
        for event in events.split(b"\n\n"):
            if b'"usage"' in event and event.startswith(b"data: {"):
                try:
                    data = orjson.loads(event[6:])
                except orjson.JSONDecodeError:
                    continue
                usage = _usage(data.get("usage")) if isinstance(data, dict) else None
                if usage is not None:
                    self.usage = usage

    async def aclose(self) -> None:
        self._response.close()


def status_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamStatusError:
    """Translate an OpenAI-shaped error answer, by status and structured fields only."""
    message, error_type, code, param = f"upstream answered HTTP {status}", None, None, None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        error_type = _str_or_none(error.get("type"))
        code = _str_or_none(error.get("code"))
        param = _str_or_none(error.get("param"))
    return UpstreamStatusError(
        message,
        status=status,
        error_type=error_type,
        code=code,
        param=param,
        retry_after_s=retry_after(headers),
    )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _usage(data: object) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int):
        return Usage(prompt, completion)
    return None
