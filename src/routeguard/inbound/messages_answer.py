"""Chat-completion answers rewritten as Anthropic Messages answers, whole or streamed.

The stream follows Anthropic's event sequence exactly, because the ``anthropic`` SDK assembles
the final message from it: ``message_start`` (then a ``ping``), for each content block a
``content_block_start``, its deltas (``text_delta``, or ``input_json_delta`` carrying a tool
call's arguments as they arrive) and ``content_block_stop``, then ``message_delta`` with the
stop reason and usage, and ``message_stop``. Chat completions reports usage only at the end,
so ``message_start`` carries zero input tokens and ``message_delta`` the real counts (the SDK
takes the later values). Chat completions does not say which stop sequence ended an answer,
so a translated answer reports ``end_turn`` with ``stop_sequence: null`` where Anthropic would
report ``stop_sequence``.
"""

from __future__ import annotations

from typing import Any

import orjson

from routeguard.providers.base import Usage

__all__ = ["STOP_REASONS", "MessagesStreamTranslator", "to_message"]

STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI ``finish_reason`` -> Anthropic ``stop_reason``; anything else reads as end_turn."""


def _message_id(chat_id: object) -> str:
    text = str(chat_id or "")
    return text if text.startswith("msg_") else f"msg_{text.removeprefix('chatcmpl-')}"


def _input(arguments: object) -> object:
    try:
        value = orjson.loads(str(arguments or "{}"))
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _usage(usage: object) -> dict[str, int]:
    data = usage if isinstance(usage, dict) else {}
    return {
        "input_tokens": int(data.get("prompt_tokens") or 0),
        "output_tokens": int(data.get("completion_tokens") or 0),
    }


def to_message(body: bytes) -> bytes:
    """A chat completion body as an Anthropic ``message`` body."""
    data = orjson.loads(body)
    choice = data["choices"][0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _input(function.get("arguments")),
            }
        )
    answer = {
        "id": _message_id(data.get("id")),
        "type": "message",
        "role": "assistant",
        "model": data.get("model"),
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(data.get("usage")),
    }
    return orjson.dumps(answer)


def _event(name: bytes, payload: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


_PING = b'event: ping\ndata: {"type": "ping"}\n\n'


class MessagesStreamTranslator:
    """One stream's state: which block is open, which tool call feeds which block."""

    def __init__(self) -> None:
        self._started = False
        self._finished = False
        self._block = -1  # index of the open block, -1 when none is open
        self._kind: str | None = None
        self._tools: dict[int, int] = {}  # chat tool-call index -> block index
        self._next = 0
        self._stop = "end_turn"
        self._usage: dict[str, int] | None = None

    @property
    def finished(self) -> bool:
        return self._finished

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._started = True
        message: dict[str, Any] = {
            "id": _message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [_event(b"message_start", {"type": "message_start", "message": message}), _PING]

    def _close(self) -> list[bytes]:
        if self._block < 0:
            return []
        index, self._block, self._kind = self._block, -1, None
        return [_event(b"content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open(self, block: dict[str, Any], kind: str) -> list[bytes]:
        out = self._close()
        self._block, self._kind = self._next, kind
        self._next += 1
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        out.append(_event(b"content_block_start", start))
        return out

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _event(
            b"content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        out = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self._kind != "text":
                    out.extend(self._open({"type": "text", "text": ""}, "text"))
                out.append(self._delta(self._block, {"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or []:
                out.extend(self._tool_delta(call))
            if choice.get("finish_reason"):
                self._stop = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        block = self._tools.get(position)
        if block is None:
            tool = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
            out.extend(self._open({**tool, "input": {}}, "tool_use"))
            block = self._tools[position] = self._block
        arguments = function.get("arguments")
        if arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out.append(self._delta(block, delta))
        return out

    def finish(self, usage: Usage | None) -> list[bytes]:
        out = [] if self._started else self._start({})
        out.extend(self._close())
        self._finished = True
        counts = self._usage
        if counts is None:
            counts = {
                "input_tokens": usage.prompt_tokens if usage else 0,
                "output_tokens": usage.completion_tokens if usage else 0,
            }
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        out.append(
            _event(b"message_delta", {"type": "message_delta", "delta": delta, "usage": counts})
        )
        out.append(_event(b"message_stop", {"type": "message_stop"}))
        return out
