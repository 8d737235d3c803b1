"""Anthropic SSE byte sequences as the Messages API sends them, for the translation tests.

Written from Anthropic's streaming reference: ``event:`` line, one ``data:`` line of JSON, blank
line; a text block and a tool-use block each open, stream deltas, and close.
"""

from __future__ import annotations

from typing import Any

import orjson


def frame(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


MESSAGE_START = frame(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_01S",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-3-5-sonnet-20241022",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1},
        },
    },
)
PING = frame("ping", {"type": "ping"})
MESSAGE_STOP = frame("message_stop", {"type": "message_stop"})


def message_delta(stop_reason: str, output_tokens: int) -> bytes:
    return frame(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )


def text_block(index: int, *pieces: str) -> bytes:
    out = frame(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        },
    )
    for piece in pieces:
        delta = {"type": "text_delta", "text": piece}
        out += frame(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
    return out + frame("content_block_stop", {"type": "content_block_stop", "index": index})


def tool_block(index: int, tool_id: str, name: str, *fragments: str) -> bytes:
    block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    out = frame(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )
    for fragment in fragments:
        delta = {"type": "input_json_delta", "partial_json": fragment}
        out += frame(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
    return out + frame("content_block_stop", {"type": "content_block_stop", "index": index})


OVERLOADED = frame(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)
