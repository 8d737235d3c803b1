"""Anthropic Messages API answers, rewritten as OpenAI chat completions and chunks.

The ``model`` in what the client gets is the model Anthropic reports having run (e.g.
``claude-3-5-sonnet-20241022``), as OpenAI and Azure answers, relayed untouched, name theirs;
the deployment's configured ``model`` stands in if Anthropic leaves it out. The ``id`` is
Anthropic's message id, so a support ticket can quote it.

Stream translation is on the hot path: one ``orjson.loads`` per Anthropic event, and each
OpenAI chunk is assembled from a byte prefix built once per stream plus an ``orjson``-encoded
delta, with no intermediate objects.
"""

from __future__ import annotations

from typing import Any

import orjson

from routeguard.errors import UpstreamBadResponseError
from routeguard.providers.anthropic_errors import in_band_error
from routeguard.providers.base import Usage
from routeguard.wire.sse import SSEEvent

__all__ = ["FINISH_REASONS", "StreamTranslator", "to_openai_completion", "usage_of"]

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic ``stop_reason`` -> OpenAI ``finish_reason``; anything new reads as ``stop``."""

_DONE = b"data: [DONE]\n\n"


def finish_reason(stop_reason: object) -> str:
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage_of(usage: object) -> Usage | None:
    """OpenAI counts cached prompt tokens in ``prompt_tokens``; Anthropic reports them apart."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("input_tokens"))
    prompt += _int(usage.get("cache_creation_input_tokens"))
    prompt += _int(usage.get("cache_read_input_tokens"))
    return Usage(prompt, _int(usage.get("output_tokens")))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def to_openai_completion(
    message: object, *, created: int, model: str
) -> tuple[dict[str, Any], Usage | None]:
    """The ``chat.completion`` object for an Anthropic ``message`` (and its usage)."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamBadResponseError("Anthropic answer has no 'content' array")
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        # thinking and server-tool blocks have no place in an OpenAI message
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    usage = usage_of(message.get("usage"))
    completion: dict[str, Any] = {
        "id": message.get("id") or "chatcmpl-anthropic",
        "object": "chat.completion",
        "created": created,
        "model": message.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
    }
    if usage is not None:
        completion["usage"] = _usage_json(usage)
    return completion, usage


class StreamTranslator:
    """Anthropic stream events in, OpenAI ``data: {chunk}\\n\\n`` events out.

    ``started`` turns true once the client would have seen content (text, a tool call, or the
    end), which is the point after which a failure can no longer be retried elsewhere.
    ``finished`` turns true at ``message_stop``; a stream that ends before it is broken.
    """

    __slots__ = (
        "_created",
        "_fallback_model",
        "_include_usage",
        "_input_tokens",
        "_output_tokens",
        "_prefix",
        "_stop_reason",
        "_tool_index",
        "finished",
        "started",
    )

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        self._fallback_model = model
        self._created = created
        self._include_usage = include_usage
        self._prefix = b""
        self._tool_index: dict[int, int] = {}
        self._stop_reason: object = None
        self._input_tokens = 0
        self._output_tokens = 0
        self.started = False
        self.finished = False

    @property
    def usage(self) -> Usage:
        return Usage(self._input_tokens, self._output_tokens)

    def translate(self, event: SSEEvent) -> list[bytes]:
        """The OpenAI events for one Anthropic event (often none: pings, block stops)."""
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamBadResponseError(
                "Anthropic stream carried an event that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise UpstreamBadResponseError(
                "Anthropic stream carried an event that is not an object"
            )
        kind = data.get("type", event.event)
        try:
            if kind == "content_block_delta":
                return self._block_delta(data)
            if kind == "content_block_start":
                return self._block_start(data)
            if kind == "message_start":
                return self._message_start(data)
            if kind == "message_delta":
                self._message_delta(data)
                return []
            if kind == "message_stop":
                return self._message_stop()
            if kind == "error":
                raise in_band_error(data)
        except (KeyError, TypeError, AttributeError):
            raise UpstreamBadResponseError(
                f"Anthropic stream event {kind!r} is malformed"
            ) from None
        return []  # ping, content_block_stop, and event types newer than this adapter

    def _chunk(self, delta: bytes, finish: bytes = b"null") -> bytes:
        if not self._prefix:
            raise UpstreamBadResponseError("Anthropic stream sent content before message_start")
        return b"".join(
            (self._prefix, delta, b',"logprobs":null,"finish_reason":', finish, b"}]}\n\n")
        )

    def _message_start(self, data: dict[str, Any]) -> list[bytes]:
        message = data["message"]
        head = {
            "id": message.get("id") or "chatcmpl-anthropic",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": message.get("model") or self._fallback_model,
        }
        # '{"id":…,"model":…}' minus its closing brace, then the one choice's opening.
        self._prefix = b"data: " + orjson.dumps(head)[:-1] + b',"choices":[{"index":0,"delta":'
        usage = usage_of(message.get("usage"))
        if usage is not None:
            self._input_tokens, self._output_tokens = usage.prompt_tokens, usage.completion_tokens
        return [self._chunk(b'{"role":"assistant","content":"","refusal":null}')]

    def _block_start(self, data: dict[str, Any]) -> list[bytes]:
        block = data["content_block"]
        kind = block.get("type")
        if kind == "tool_use":
            position = self._tool_index[data["index"]] = len(self._tool_index)
            call = {
                "index": position,
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": ""},
            }
            self.started = True
            return [self._chunk(b'{"tool_calls":[' + orjson.dumps(call) + b"]}")]
        if kind == "text" and block.get("text"):
            self.started = True
            return [self._chunk(b'{"content":' + orjson.dumps(block["text"]) + b"}")]
        return []

    def _block_delta(self, data: dict[str, Any]) -> list[bytes]:
        delta = data["delta"]
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta["text"]
            if not text:
                return []
            self.started = True
            return [self._chunk(b'{"content":' + orjson.dumps(text) + b"}")]
        if kind == "input_json_delta":
            partial = delta["partial_json"]
            position = self._tool_index.get(data["index"])
            if not partial or position is None:
                return []
            call = {"index": position, "function": {"arguments": partial}}
            return [self._chunk(b'{"tool_calls":[' + orjson.dumps(call) + b"]}")]
        return []  # thinking, signature and citation deltas have no OpenAI counterpart

    def _message_delta(self, data: dict[str, Any]) -> None:
        stop_reason = data.get("delta", {}).get("stop_reason")
        if stop_reason is not None:
            self._stop_reason = stop_reason
        usage = data.get("usage")
        if isinstance(usage, dict):
            # message_delta counts are cumulative; input counts appear here on newer API versions.
            if "output_tokens" in usage:
                self._output_tokens = _int(usage["output_tokens"])
            if usage.get("input_tokens") is not None:
                updated = usage_of(usage)
                if updated is not None:
                    self._input_tokens = updated.prompt_tokens

    def _message_stop(self) -> list[bytes]:
        self.started = True
        self.finished = True
        reason = orjson.dumps(finish_reason(self._stop_reason))
        out = [self._chunk(b"{}", reason)]
        if self._include_usage:
            prefix = self._prefix[: self._prefix.rindex(b',"choices":')]
            usage = orjson.dumps(_usage_json(self.usage))
            out.append(prefix + b',"choices":[],"usage":' + usage + b"}\n\n")
        out.append(_DONE)
        return out
