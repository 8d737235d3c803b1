"""The provider contract: a few async methods on typed values.

An adapter turns our request into one provider's wire format and the answer back into OpenAI's,
and maps the provider's errors into :mod:`routeguard.errors` by status and structured fields.
It never retries, never falls back, never counts: routing and resilience do that once, for every
provider alike. Adapters never import routing.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from routeguard.net.client import Origin, Timeouts, UpstreamPool
from routeguard.wire.chat import ChatRequest, EmbeddingRequest

__all__ = ["ChatResult", "ChatStream", "Endpoint", "Provider", "Usage", "retry_after"]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything an adapter needs to reach one deployment, resolved from config at load time.

    ``timeouts`` bound a whole answer; ``stream_timeouts`` differ only in the total, since a
    stream may legitimately run far longer than any single gap in it.
    """

    deployment: str
    provider: str
    model: str
    origin: Origin
    api_key: str | None
    timeouts: Timeouts
    stream_timeouts: Timeouts
    api_version: str | None = None
    azure_deployment: str | None = None
    default_max_tokens: int | None = None
    drop_unsupported_params: bool = False


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A whole chat completion: the OpenAI-shaped JSON body, byte for byte what the client gets."""

    body: bytes
    usage: Usage | None


class ChatStream(abc.ABC):
    """An opened stream: the upstream accepted the request and the answer is flowing.

    Iterating yields OpenAI SSE bytes cut at event boundaries (``data: {...}`` and a blank
    line), ending with ``data: [DONE]``. A failure mid-stream raises an
    :class:`~routeguard.errors.UpstreamError`. ``aclose`` abandons the upstream request.
    ``usage`` is set once the provider has reported token usage (the stream's last chunks).
    """

    usage: Usage | None = None

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class Provider(abc.ABC):
    """One deployment's adapter."""

    def __init__(self, endpoint: Endpoint, pool: UpstreamPool) -> None:
        self.endpoint = endpoint
        self.pool = pool

    @abc.abstractmethod
    async def chat(self, request: ChatRequest) -> ChatResult:
        """Complete ``request`` (``stream`` false) or raise an UpstreamError."""

    @abc.abstractmethod
    async def open_chat_stream(self, request: ChatRequest) -> ChatStream:
        """Start streaming ``request``; raises before returning if the upstream refuses."""

    @abc.abstractmethod
    async def embed(self, request: EmbeddingRequest) -> bytes:
        """Return the OpenAI-shaped embeddings body."""


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds, as providers send it."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the breaker falls back to its default cooldown
