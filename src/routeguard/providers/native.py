"""Forwarding requests in a provider's own wire format: bodies and streams relayed as they come.

An Anthropic Messages request to an Anthropic deployment, or a Completions / Responses request
to an OpenAI deployment, needs no translation; translating it through chat completions and
back would drop whatever the translation does not know. The adapter swaps the model name and
credentials; this module checks what comes back and reads token usage on the way, so routing
can count tokens and cost as for any other answer.

A relayed stream is checked like a translated one: it must end with its API's terminal event
(a stream cut short is an :class:`~routeguard.errors.UpstreamBadResponseError`, never a silent
truncation), and an error the provider reports in-band before any content (Anthropic's
``overloaded_error`` arrives that way) is raised while the router may still fail over.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson

from routeguard.errors import UpstreamBadResponseError, UpstreamError
from routeguard.net.client import UpstreamResponse
from routeguard.providers.anthropic_errors import in_band_error
from routeguard.providers.base import ChatResult, ChatStream, Endpoint, NativeApi, Usage
from routeguard.wire.sse import SSEDecoder, SSEEvent

__all__ = ["NativeStream", "StreamRules", "native_result", "rules_for"]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(data: object, prompt_key: str, completion_key: str) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt, completion = _int(data.get(prompt_key)), _int(data.get(completion_key))
    if prompt is None and completion is None:
        return None
    return Usage(prompt or 0, completion or 0)


def _body_usage(api: NativeApi, data: dict[str, Any]) -> Usage | None:
    if api == "completions":
        return _usage(data.get("usage"), "prompt_tokens", "completion_tokens")
    if api in ("messages", "responses"):
        return _usage(data.get("usage"), "input_tokens", "output_tokens")
    return None  # count_tokens uses nothing


def native_result(api: NativeApi, body: bytes, endpoint: Endpoint) -> ChatResult:
    """A whole native answer: the provider's bytes, checked to be a JSON object."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamBadResponseError(
            "upstream answered 200 with a body that is not a JSON object",
            deployment=endpoint.deployment,
            provider=endpoint.provider,
        )
    return ChatResult(body, _body_usage(api, data))


@dataclass(frozen=True, slots=True)
class StreamRules:
    """What one API's stream looks like: how it ends, where usage is, how errors arrive."""

    terminal: Callable[[SSEEvent], bool]
    usage: Callable[[SSEEvent, Usage | None], Usage | None]
    content: Callable[[SSEEvent], bool]
    in_band_error: Callable[[SSEEvent], UpstreamError | None]


def _no_error(event: SSEEvent) -> None:
    return None


def _anthropic_usage(event: SSEEvent, current: Usage | None) -> Usage | None:
    if b'"usage"' not in event.data:
        return current
    data = orjson.loads(event.data)
    prompt, completion = (current.prompt_tokens, current.completion_tokens) if current else (0, 0)
    if event.event == "message_start":
        usage = (data.get("message") or {}).get("usage") or {}
    else:
        usage = data.get("usage") or {}
    prompt = _int(usage.get("input_tokens")) or prompt
    completion = _int(usage.get("output_tokens")) or completion
    return Usage(prompt, completion)


def _anthropic_error(event: SSEEvent) -> UpstreamError | None:
    if event.event != "error":
        return None
    return in_band_error(event.data)


def _completions_usage(event: SSEEvent, current: Usage | None) -> Usage | None:
    if b'"usage"' not in event.data or event.data == b"[DONE]":
        return current
    data = orjson.loads(event.data)
    return _usage(data.get("usage"), "prompt_tokens", "completion_tokens") or current


_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _responses_usage(event: SSEEvent, current: Usage | None) -> Usage | None:
    if event.event not in _RESPONSE_ENDS:
        return current
    data = orjson.loads(event.data)
    return _usage((data.get("response") or {}).get("usage"), "input_tokens", "output_tokens")


_RULES: dict[str, StreamRules] = {
    "messages": StreamRules(
        terminal=lambda e: e.event == "message_stop",
        usage=_anthropic_usage,
        content=lambda e: e.event in ("content_block_start", "message_stop"),
        in_band_error=_anthropic_error,
    ),
    "completions": StreamRules(
        terminal=lambda e: e.data == b"[DONE]",
        usage=_completions_usage,
        content=lambda e: True,
        in_band_error=_no_error,
    ),
    "responses": StreamRules(
        terminal=lambda e: e.event in _RESPONSE_ENDS,
        usage=_responses_usage,
        content=lambda e: True,
        in_band_error=_no_error,
    ),
}


def rules_for(api: NativeApi) -> StreamRules:
    rules = _RULES.get(api)
    if rules is None:
        raise ValueError(f"the {api} API has no stream")
    return rules


class NativeStream(ChatStream):
    """A provider's SSE body relayed untouched, cut at event boundaries.

    Events are decoded only to watch them (usage, the end, an early error); the bytes the
    client gets are the provider's, re-framed as ``event:``/``data:`` lines exactly as sent.
    """

    def __init__(self, response: UpstreamResponse, rules: StreamRules, endpoint: Endpoint) -> None:
        self._response = response
        self._pieces = cast(AsyncGenerator[bytes, None], response.iter())
        self._rules = rules
        self._endpoint = endpoint
        self._decoder = SSEDecoder()
        self._ahead: list[bytes] = []
        self._ended = False
        self._content = False
        self.usage: Usage | None = None

    async def prime(self) -> None:
        """Read ahead until content flows; an in-band error before that is raised here."""
        try:
            while not self._content and not self._ended:
                piece = await anext(self._pieces, None)
                if piece is None:
                    self._check_ended()
                    return
                self._ahead.append(self._watch(piece, early=True))
        except BaseException as exc:
            if isinstance(exc, UpstreamError):
                self._blame(exc)
            await self.aclose()
            raise

    def _watch(self, piece: bytes, *, early: bool = False) -> bytes:
        rules = self._rules
        for event in self._decoder.feed(piece):
            if early and not self._content:
                error = rules.in_band_error(event)
                if error is not None:
                    raise error
                self._content = rules.content(event)
            try:
                self.usage = rules.usage(event, self.usage)
            except (orjson.JSONDecodeError, AttributeError):
                raise UpstreamBadResponseError("upstream stream event is not valid JSON") from None
            if rules.terminal(event):
                self._ended = True
        return piece

    def _check_ended(self) -> None:
        if not self._ended:
            raise UpstreamBadResponseError("upstream stream ended before its final event")

    def _blame(self, exc: UpstreamError) -> None:
        exc.deployment, exc.provider = self._endpoint.deployment, self._endpoint.provider

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pending = b""
        try:
            ahead, self._ahead = self._ahead, []
            for piece in ahead:
                out, pending = _frame(pending, piece)
                if out:
                    yield out
            async for piece in self._pieces:
                out, pending = _frame(pending, self._watch(piece))
                if out:
                    yield out
            if pending:
                yield pending
            self._check_ended()
        except UpstreamError as exc:
            self._blame(exc)
            raise

    async def aclose(self) -> None:
        await self._pieces.aclose()
        self._response.close()


def _frame(pending: bytes, piece: bytes) -> tuple[bytes, bytes]:
    """Split off the whole events in ``pending + piece``; the unfinished tail waits."""
    data = pending + piece if pending else piece
    cut = max(data.rfind(b"\n\n") + 2, data.rfind(b"\r\n\r\n") + 4)
    if cut <= 1:
        return b"", data
    return data[:cut], data[cut:]
