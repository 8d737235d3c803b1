"""The provider contract: a few async methods on typed values.

An adapter turns our request into one provider's wire format and the answer back into OpenAI's,
and maps the provider's errors into :mod:`routeguard.errors` by status and structured fields.
It never retries, never falls back, never counts: routing and resilience do that once, for every
provider alike. Adapters never import routing.

A provider may also speak some inbound APIs natively (``native_apis``: Anthropic Messages for
Anthropic, Completions and Responses for OpenAI): :meth:`Provider.forward` then sends the
client's request as written, but for the model name, and relays the answer as is. Whether an
attempt forwards or translates through chat is decided per deployment by the inbound layer
(:mod:`routeguard.inbound.base`), never by the adapter.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from routeguard.errors import UnsupportedByDeploymentError
from routeguard.net.client import Origin, Timeouts, UpstreamPool
from routeguard.wire.chat import ChatRequest, EmbeddingRequest

__all__ = [
    "BatchSettings",
    "ChatResult",
    "ChatStream",
    "Endpoint",
    "NativeApi",
    "NativeRequest",
    "Provider",
    "Usage",
    "retry_after",
]

NativeApi = Literal["messages", "count_tokens", "completions", "responses"]
"""Inbound APIs some providers speak natively, so a request in that format is forwarded as is."""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """Embedding micro-batching for one deployment: coalesce up to ``max_batch_size`` inputs,
    waiting at most ``max_wait_ms`` after the first for more."""

    max_batch_size: int
    max_wait_ms: float


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """A client request already in the provider's own wire format (``api``).

    ``payload`` is the client's JSON, forwarded with only ``model`` replaced by the deployment's,
    so fields RouteGuard does not know survive the hop. ``headers`` are the client's
    protocol headers worth keeping (``anthropic-version``, ``anthropic-beta``).
    """

    api: NativeApi
    payload: dict[str, Any]
    stream: bool = False
    headers: tuple[tuple[str, str], ...] = ()


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
    batching: BatchSettings | None = None


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
    """One deployment's adapter.

    ``native_apis`` are the inbound APIs the provider speaks as its own wire format; a request
    in one of them is handed to :meth:`forward` untranslated (an Anthropic Messages request to
    an Anthropic deployment loses nothing). Everything else arrives as chat completions.
    """

    native_apis: frozenset[str] = frozenset()

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

    async def forward(self, request: NativeRequest) -> ChatResult | ChatStream:
        """Send a request in one of :attr:`native_apis` as is; the answer is relayed as is.

        A whole answer's ``body`` is the provider's bytes; a stream yields the provider's SSE
        events cut at event boundaries.
        """
        raise UnsupportedByDeploymentError(
            f"Deployment '{self.endpoint.deployment}' ({self.endpoint.provider}) does not "
            f"serve the {request.api} API.",
            deployment=self.endpoint.deployment,
        )


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds, as providers send it."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the breaker falls back to its default cooldown
