"""OpenAI's Responses API (``POST /v1/responses``), stateless, as OpenAI puts it on the wire.

The answer follows the chat simulator's rules: with function tools offered (and
``tool_choice`` not ``"none"``) and no ``function_call_output`` as the last input item, it
calls the first tool (or the forced one) with arguments from its schema; otherwise it echoes
the last user text or tool output. ``previous_response_id`` is refused, since the simulator
stores nothing. Streams send the typed events in OpenAI's order with ``sequence_number``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from routeguard.simulator.delivery import Exchange, InvalidRequest
from routeguard.simulator.openai_api import request_headers
from routeguard.simulator.openai_request import check_integer, check_number, content_text
from routeguard.simulator.text import Answer, ToolCall, count_words, make_answer, make_tool_call
from routeguard.simulator.text import new_id as _new_id

__all__ = ["handle_responses"]


def _last_text(items: list[Any]) -> tuple[str, bool]:
    """The text to echo and whether the last item is a tool's output."""
    last = items[-1]
    if not isinstance(last, dict):
        raise InvalidRequest("Invalid input item: expected an object.", "input")
    if last.get("type") == "function_call_output":
        return str(last.get("output", "")), True
    content = last.get("content")
    if isinstance(content, list):
        texts = [str(p.get("text", "")) for p in content if isinstance(p, dict)]
        return " ".join(texts), False
    return content_text(content), False


def _tools(body: dict[str, Any]) -> list[tuple[str, Any]]:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise InvalidRequest("Invalid type for 'tools': expected an array.", "tools")
    return [
        (str(t.get("name")), t.get("parameters"))
        for t in tools
        if isinstance(t, dict) and t.get("type") == "function"
    ]


def _reply(ex: Exchange, body: dict[str, Any]) -> tuple[Answer | ToolCall, int]:
    value = body.get("input")
    if isinstance(value, str) and value:
        items: list[Any] = [{"role": "user", "content": value}]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise InvalidRequest("Missing required parameter: 'input'.", "input")
    text, after_tool = _last_text(items)
    tools = _tools(body)
    choice = body.get("tool_choice")
    limit = check_integer(body, "max_output_tokens", 16)
    prompt = sum(count_words(content_text(i.get("content"))) for i in items if isinstance(i, dict))
    prompt += count_words(str(body.get("instructions") or ""))
    if tools and choice != "none" and not after_tool:
        name = choice.get("name") if isinstance(choice, dict) else None
        chosen = next((t for t in tools if t[0] == name), tools[0])
        return make_tool_call(*chosen), max(1, prompt)
    return make_answer(text, ex.words, limit), max(1, prompt)


def _response(
    body: dict[str, Any], rid: str, status: str, output: list[Any], usage: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "metadata": body.get("metadata") or {},
    }


def _usage(prompt: int, output: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }


def _item(ex: Exchange, reply: Answer | ToolCall) -> dict[str, Any]:
    if isinstance(reply, ToolCall):
        return {
            "type": "function_call",
            "id": _new_id(ex.rng, "fc_"),
            "call_id": _new_id(ex.rng, "call_"),
            "name": reply.name,
            "arguments": reply.arguments,
            "status": "completed",
        }
    part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": _new_id(ex.rng, "msg_"),
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }


def _events(
    body: dict[str, Any], rid: str, item: dict[str, Any], reply: Any, usage: Any
) -> list[bytes]:
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(events), **fields}
        events.append(b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")

    opening = _response(body, rid, "in_progress", [], None)
    emit("response.created", response=opening)
    emit("response.in_progress", response=opening)
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "function_call":
        emit(
            "response.output_item.added",
            output_index=0,
            item={**item, "arguments": "", "status": "in_progress"},
        )
        for fragment in reply.fragments:
            emit("response.function_call_arguments.delta", **where, delta=fragment)
        emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
    else:
        emit(
            "response.output_item.added",
            output_index=0,
            item={**item, "content": [], "status": "in_progress"},
        )
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        emit("response.content_part.added", **where, content_index=0, part=empty)
        for piece in reply.pieces:
            emit("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
        emit("response.output_text.done", **where, content_index=0, text=reply.text, logprobs=[])
        emit("response.content_part.done", **where, content_index=0, part=item["content"][0])
    emit("response.output_item.done", output_index=0, item=item)
    emit("response.completed", response=_response(body, rid, "completed", [item], usage))
    return events


async def handle_responses(ex: Exchange, body: Any) -> web.StreamResponse:
    """``POST /{target}/v1/responses``."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid type for request body: expected an object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("Missing required parameter: 'model'.", "model")
    if body.get("previous_response_id") is not None:
        raise InvalidRequest(
            "Previous response not found (the simulator stores nothing).", "previous_response_id"
        )
    check_number(body, "temperature", 0, 2)
    reply, prompt = _reply(ex, body)
    usage = _usage(prompt, reply.tokens)
    rid = _new_id(ex.rng, "resp_")
    item = _item(ex, reply)
    if body.get("stream") is True:
        # error_offset 2: a stream_error fault counts from the first event after the opening two.
        return await ex.stream(
            _events(body, rid, item, reply, usage), headers=request_headers(ex), error_offset=2
        )
    return ex.json(_response(body, rid, "completed", [item], usage), headers=request_headers(ex))
