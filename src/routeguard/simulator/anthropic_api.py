"""The Anthropic Messages API as Anthropic puts it on the wire.

Requests are validated the way the real API does (``x-api-key`` and ``anthropic-version``
headers, ``max_tokens`` required, ``messages`` non-empty, starting with ``user`` and
alternating, ``system`` only as a top-level field), errors use the
``{"type": "error", "error": {"type", "message"}}`` envelope, and streams carry the full
event sequence: ``message_start``, ``content_block_start``, ``ping``,
``content_block_delta`` (``text_delta`` or ``input_json_delta``), ``content_block_stop``,
``message_delta`` and ``message_stop``.

Tool use is deterministic: with ``tools`` offered, ``tool_choice`` not ``none`` and a
last message that is not a ``tool_result``, the answer is a ``tool_use`` block for the
first tool (or the one ``tool_choice`` names); after a ``tool_result`` the answer is text
echoing the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from routeguard.simulator.delivery import Dialect, Exchange, InvalidRequest, json_response
from routeguard.simulator.text import (
    Answer,
    ToolCall,
    count_words,
    join_text,
    make_answer,
    make_tool_call,
    new_id,
)

__all__ = ["AnthropicDialect", "handle_count_tokens", "handle_messages", "handle_models"]

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")

# Injected error bodies: status -> (error type, message), as Anthropic sends them.
_FAULT_BODIES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization. Please retry later.",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _frame(event: str, payload: Mapping[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class AnthropicDialect(Dialect):
    """Anthropic's ``{"type": "error", "error": {"type", "message"}}`` envelope."""

    name = "anthropic"
    key_required = True

    def api_key(self, request: web.Request) -> str | None:
        key = request.headers.get("x-api-key")
        if key:
            return key
        auth = request.headers.get("Authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    @staticmethod
    def error(
        status: int, etype: str, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        body = {"type": "error", "error": {"type": etype, "message": message}}
        return json_response(body, status, headers)

    def unauthorized(self, missing: bool) -> web.Response:
        message = "x-api-key header is required" if missing else "invalid x-api-key"
        return self.error(401, "authentication_error", message)

    def invalid_request(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> web.Response:
        return self.error(400, "invalid_request_error", message)

    def bad_json(self) -> web.Response:
        return self.error(400, "invalid_request_error", "Request body is not valid JSON.")

    def not_found(self, method: str, path: str) -> web.Response:
        return self.error(404, "not_found_error", "Not found")

    def fault_error(self, status: int, retry_after_s: float) -> web.Response:
        default_type = "api_error" if status >= 500 else "invalid_request_error"
        etype, message = _FAULT_BODIES.get(status, (default_type, f"Simulated error {status}."))
        return self.error(status, etype, message, self.retry_headers(status, retry_after_s))

    def stream_error_event(self) -> bytes:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return _frame("error", error)

    def malformed_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'


DIALECT = AnthropicDialect()


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    """The parts of a Messages API request the simulator acts on."""

    model: str
    messages: list[dict[str, Any]]
    system: str
    max_tokens: int
    stream: bool
    stop_sequences: tuple[str, ...]
    tools: list[tuple[str, Any]]
    tool_choice: str | None  # "auto" | "any" | "none" | a forced tool name | None


def check_headers(request: web.Request) -> None:
    if not request.headers.get("anthropic-version"):
        raise InvalidRequest("anthropic-version: header is required")


def parse_messages(body: Any, *, need_max_tokens: bool = True) -> MessagesRequest:
    """Validate a Messages API body, with the real API's field-path error messages."""
    if not isinstance(body, dict):
        raise InvalidRequest("body: Input should be a valid dictionary")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None and need_max_tokens:
        raise InvalidRequest("max_tokens: Field required")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise InvalidRequest("max_tokens: Input should be a valid integer")
    if max_tokens is not None and max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    for key in ("temperature", "top_p"):
        _unit_interval(body, key)
    stop = body.get("stop_sequences") or []
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise InvalidRequest("stop_sequences: Input should be a valid list of strings")
    tools = _tools(body.get("tools"))
    return MessagesRequest(
        model=model,
        messages=_messages(body.get("messages")),
        system=_system(body.get("system")),
        max_tokens=max_tokens or 1,
        stream=body.get("stream") is True,
        stop_sequences=tuple(stop),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
    )


def _unit_interval(body: Mapping[str, Any], key: str) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"{key}: Input should be a valid number")
    if value < 0:
        raise InvalidRequest(f"{key}: Input should be greater than or equal to 0")
    if value > 1:
        raise InvalidRequest(f"{key}: Input should be less than or equal to 1")


def _messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    previous = None
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages.{index}: Input should be a valid dictionary")
        role = message.get("role")
        if role == "system":
            raise InvalidRequest(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise InvalidRequest(f"messages.{index}.content: Field required")
        if index == 0 and role != "user":
            raise InvalidRequest('messages: first message must use the "user" role')
        if role == previous:
            raise InvalidRequest(
                'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row'
            )
        previous = role
    return messages


def _system(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return block_text(system)
    raise InvalidRequest("system: Input should be a valid string")


def _tools(tools: Any) -> list[tuple[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    parsed = []
    for index, tool in enumerate(tools):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"tools.{index}.name: Field required")
        schema = tool.get("input_schema")
        if tool.get("type") in (None, "custom") and not isinstance(schema, dict):
            raise InvalidRequest(f"tools.{index}.custom.input_schema: Field required")
        parsed.append((name, schema))
    return parsed


def _tool_choice(choice: Any, tools: list[tuple[str, Any]]) -> str | None:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "any", "none"):
        return str(kind)
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or name not in {tool[0] for tool in tools}:
            raise InvalidRequest("tool_choice.tool.name: must name one of the provided tools")
        return name
    raise InvalidRequest(
        "tool_choice: Input tag does not match any of the expected tags: "
        "'auto', 'any', 'tool', 'none'"
    )


def block_text(content: Any) -> str:
    """The text in a ``content`` (a string or blocks, tool results included)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            parts.append(block_text(block.get("content")))
    return join_text(parts)


def _is_tool_result(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def input_tokens(req: MessagesRequest) -> int:
    words = count_words(req.system)
    words += sum(count_words(block_text(m.get("content"))) for m in req.messages)
    return max(1, words)


def _reply(ex: Exchange, req: MessagesRequest) -> Answer | ToolCall:
    last = req.messages[-1]
    after_tool = _is_tool_result(last)
    if req.tools and req.tool_choice != "none" and not after_tool:
        forced = req.tool_choice not in (None, "auto", "any")
        name, schema = next(t for t in req.tools if not forced or t[0] == req.tool_choice)
        return make_tool_call(name, schema)
    users = [m for m in req.messages if m.get("role") == "user"]
    source = block_text(users[-1].get("content")) if users else ""
    return make_answer(source, ex.words, req.max_tokens, req.stop_sequences)


def _stop_reason(reply: Answer | ToolCall) -> tuple[str, str | None]:
    if isinstance(reply, ToolCall):
        return "tool_use", None
    if reply.stop_sequence is not None:
        return "stop_sequence", reply.stop_sequence
    return ("max_tokens" if reply.truncated else "end_turn"), None


def _usage(prompt: int, output: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard",
    }


def _message(
    msg_id: str, model: str, content: list[dict[str, Any]], usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }


def _events(
    msg_id: str, req: MessagesRequest, reply: Answer | ToolCall, prompt: int, tool_id: str
) -> list[bytes]:
    stop_reason, stop_sequence = _stop_reason(reply)
    start = _message(msg_id, req.model, [], _usage(prompt, 1))
    frames = [_frame("message_start", {"type": "message_start", "message": start})]
    if isinstance(reply, ToolCall):
        block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": reply.name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": f} for f in reply.fragments]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in reply.pieces]
    frames.append(
        _frame(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
    )
    frames.append(_frame("ping", {"type": "ping"}))
    frames.extend(
        _frame("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
        for d in deltas
    )
    frames.append(_frame("content_block_stop", {"type": "content_block_stop", "index": 0}))
    frames.append(
        _frame(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": reply.tokens},
            },
        )
    )
    frames.append(_frame("message_stop", {"type": "message_stop"}))
    return frames


async def handle_messages(ex: Exchange, body: Any) -> web.StreamResponse:
    """``POST /{target}/v1/messages``, streamed or not."""
    check_headers(ex.request)
    req = parse_messages(body)
    reply = _reply(ex, req)
    prompt = input_tokens(req)
    msg_id = new_id(ex.rng, "msg_01")
    tool_id = new_id(ex.rng, "toolu_01")
    headers = {"request-id": new_id(ex.rng, "req_01")}
    if req.stream:
        return await ex.stream(_events(msg_id, req, reply, prompt, tool_id), headers=headers)
    if isinstance(reply, ToolCall):
        content = [{"type": "tool_use", "id": tool_id, "name": reply.name, "input": reply.input}]
    else:
        content = [{"type": "text", "text": reply.text}]
    message = _message(msg_id, req.model, content, _usage(prompt, reply.tokens))
    message["stop_reason"], message["stop_sequence"] = _stop_reason(reply)
    return ex.json(message, headers=headers)


async def handle_count_tokens(ex: Exchange, body: Any) -> web.StreamResponse:
    """``POST /{target}/v1/messages/count_tokens``."""
    check_headers(ex.request)
    return ex.json({"input_tokens": input_tokens(parse_messages(body, need_max_tokens=False))})


async def handle_models(ex: Exchange, body: Any) -> web.StreamResponse:
    """``GET /{target}/v1/models`` when the caller speaks Anthropic (sends the version header)."""
    data = [
        {
            "type": "model",
            "id": model,
            "display_name": model,
            "created_at": "2025-01-01T00:00:00Z",
            "deprecated_at": None,
            "lifecycle": "active",
        }
        for model in MODELS
    ]
    return ex.json({"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]})
