"""The Anthropic adapter over a real socket, against a canned upstream we own.

The simulator covers the ordinary paths end to end; these pin the stream contract at the
adapter's edge: what ``open_chat_stream`` raises, what iterating raises, and what goes out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from anthropic_frames import (
    MESSAGE_START,
    MESSAGE_STOP,
    OVERLOADED,
    PING,
    message_delta,
    text_block,
)

from routeguard.errors import (
    UnsupportedByDeploymentError,
    UpstreamBadResponseError,
    UpstreamError,
    UpstreamStatusError,
)
from routeguard.net.client import Origin, Timeouts, UpstreamPool
from routeguard.providers.anthropic import AnthropicProvider
from routeguard.providers.base import Endpoint
from routeguard.wire.chat import ChatRequest, EmbeddingRequest


@dataclass
class Upstream:
    """Answers every request with ``status`` and ``body`` and closes; remembers the requests."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[bytes] = field(default_factory=list)
    port: int = 0
    later: bytes = b""
    """Sent after ``release`` is set, so a test controls what the first read can see."""
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        self.seen.append(head + await reader.readexactly(length))
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        length = len(self.body) + len(self.later)
        writer.write(
            f"HTTP/1.1 {self.status} X\r\ncontent-length: {length}\r\n{extra}\r\n".encode()
            + self.body
        )
        await writer.drain()
        if self.later:
            await self.release.wait()
            writer.write(self.later)
            await writer.drain()
        writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0)
    up.port = server.sockets[0].getsockname()[1]
    yield up
    server.close()
    await server.wait_closed()


@pytest.fixture
async def provider(upstream: Upstream) -> AsyncIterator[AnthropicProvider]:
    pool = UpstreamPool()
    endpoint = Endpoint(
        deployment="claude-a",
        provider="anthropic",
        model="claude-sonnet-4-5",
        origin=Origin.parse(f"http://127.0.0.1:{upstream.port}"),
        api_key="sk-ant",
        timeouts=Timeouts(connect_s=5, first_byte_s=5, idle_s=5, total_s=5),
        stream_timeouts=Timeouts(connect_s=5, first_byte_s=5, idle_s=5, total_s=5),
        default_max_tokens=300,
    )
    yield AnthropicProvider(endpoint, pool)
    await pool.close()


def chat(stream: bool = False, include_usage: bool = False) -> ChatRequest:
    payload = {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "Hi"}]}
    return ChatRequest("gpt-4-turbo", stream, include_usage, payload)


async def collect(provider: AnthropicProvider, request: ChatRequest) -> bytes:
    stream = await provider.open_chat_stream(request)
    try:
        return b"".join([piece async for piece in stream])
    finally:
        await stream.aclose()


async def test_request_on_the_wire(upstream: Upstream, provider: AnthropicProvider) -> None:
    upstream.body = orjson.dumps(
        {"id": "msg_1", "model": "claude-sonnet-4-5", "content": [], "stop_reason": "end_turn"}
    )
    await provider.chat(chat())
    head, _, body = upstream.seen[0].partition(b"\r\n\r\n")
    lines = head.decode().lower().split("\r\n")
    assert lines[0] == "post /v1/messages http/1.1"
    assert "x-api-key: sk-ant" in lines
    assert "anthropic-version: 2023-06-01" in lines
    assert orjson.loads(body) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


async def test_chat_answer_is_openai_shaped(
    upstream: Upstream, provider: AnthropicProvider
) -> None:
    upstream.body = orjson.dumps(
        {
            "id": "msg_1",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 2},
        }
    )
    result = await provider.chat(chat())
    body = orjson.loads(result.body)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Hello"
    assert result.usage is not None
    assert result.usage.total_tokens == 5


async def test_error_answer(upstream: Upstream, provider: AnthropicProvider) -> None:
    upstream.status, upstream.headers = 429, {"retry-after": "9"}
    upstream.body = orjson.dumps(
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    )
    with pytest.raises(UpstreamStatusError) as info:
        await provider.chat(chat())
    assert (info.value.status, info.value.retry_after_s, info.value.deployment) == (
        429,
        9.0,
        "claude-a",
    )


async def test_chat_body_not_json(upstream: Upstream, provider: AnthropicProvider) -> None:
    upstream.body = b"<html>"
    with pytest.raises(UpstreamBadResponseError):
        await provider.chat(chat())


STREAM = (
    MESSAGE_START + PING + text_block(0, "Hel", "lo") + message_delta("end_turn", 2) + MESSAGE_STOP
)


async def test_stream(upstream: Upstream, provider: AnthropicProvider) -> None:
    upstream.body = STREAM
    out = await collect(provider, chat(stream=True, include_usage=True))
    events = out.split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""]
    assert b'"usage":{"prompt_tokens":30' in out
    assert orjson.loads(upstream.seen[0].partition(b"\r\n\r\n")[2])["stream"] is True


@pytest.mark.parametrize(
    "body",
    [MESSAGE_START + OVERLOADED, MESSAGE_START + PING + OVERLOADED, OVERLOADED],
    ids=["after-start", "after-ping", "first"],
)
async def test_error_before_content_raises_from_open(
    upstream: Upstream, provider: AnthropicProvider, body: bytes
) -> None:
    upstream.body = body
    with pytest.raises(UpstreamStatusError) as info:
        await provider.open_chat_stream(chat(stream=True))
    error = info.value
    assert (error.upstream_status, error.reason, error.retryable) == (529, "overloaded", True)
    assert (error.deployment, error.provider) == ("claude-a", "anthropic")


async def test_error_after_content_raises_while_iterating(
    upstream: Upstream, provider: AnthropicProvider
) -> None:
    upstream.body = MESSAGE_START + text_block(0, "partial")
    upstream.later = OVERLOADED
    stream = await provider.open_chat_stream(chat(stream=True))
    upstream.release.set()
    received: list[bytes] = []

    async def drain() -> None:
        async for piece in stream:
            received.append(piece)

    with pytest.raises(UpstreamError) as info:
        await drain()
    await stream.aclose()
    assert b"partial" in b"".join(received)
    assert info.value.deployment == "claude-a"


@pytest.mark.parametrize(
    "body",
    [MESSAGE_START + text_block(0, "cut") + message_delta("end_turn", 1), MESSAGE_START + PING],
    ids=["after-content", "before-content"],
)
async def test_stream_without_message_stop(
    upstream: Upstream, provider: AnthropicProvider, body: bytes
) -> None:
    upstream.body = body
    with pytest.raises(UpstreamBadResponseError, match="message_stop"):
        await collect(provider, chat(stream=True))


async def test_cannot_embed(provider: AnthropicProvider) -> None:
    with pytest.raises(UnsupportedByDeploymentError, match="cannot embed") as info:
        await provider.embed(EmbeddingRequest("gpt-4-turbo", {"input": "x"}))
    assert info.value.status == 400
