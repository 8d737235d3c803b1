"""Anthropic Messages requests: validated at the edge, and rewritten as chat completions for
deployments that do not speak Anthropic.

Validation checks what Anthropic itself requires and what routing needs (``model``,
``max_tokens``, ``messages``, ``stream``); the body otherwise travels untouched, so an Anthropic
deployment receives exactly what the client sent.

The chat translation keeps what chat completions can say: system text, text and image blocks,
tool use and tool results (as assistant ``tool_calls`` and ``role: tool`` messages, in order),
function tools and ``tool_choice``, ``max_tokens``, ``stop_sequences``, ``temperature`` and
``top_p``, and ``metadata.user_id`` as ``user``. What chat completions cannot say is dropped
(``top_k``, ``thinking``, cache-control marks); a block that cannot be expressed at all (a
document, a server tool) makes the deployment unable to serve the request, so the router
tries one that can (an Anthropic deployment) and otherwise answers 400 naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from routeguard.errors import InvalidRequestError, UnsupportedByDeploymentError
from routeguard.inbound.base import load_json_object
from routeguard.wire.chat import ChatRequest

__all__ = ["MessagesRequest", "parse_messages_request", "to_chat_payload"]


@dataclass(frozen=True, slots=True)
class MessagesRequest:
    model: str
    stream: bool
    payload: dict[str, Any]


def parse_messages_request(body: bytes, *, count_tokens: bool = False) -> MessagesRequest:
    """Check a ``/v1/messages`` (or ``count_tokens``) body the way Anthropic does."""
    data = load_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: Field required", param="model")
    if not count_tokens:
        max_tokens = data.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise InvalidRequestError(
                "max_tokens: Field required (an integer of at least 1)", param="max_tokens"
            )
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages: Field required (a non-empty list)", param="messages")
    for index, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ("user", "assistant")
            or not isinstance(message.get("content"), (str, list))
        ):
            raise InvalidRequestError(
                f"messages.{index}: needs role 'user' or 'assistant' and string or list content",
                param=f"messages.{index}",
            )
    system = data.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise InvalidRequestError("system: must be a string or a list of blocks", param="system")
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequestError("stream: must be a boolean", param="stream")
    return MessagesRequest(model, stream and not count_tokens, data)


def _unsupported(what: str, param: str) -> UnsupportedByDeploymentError:
    return UnsupportedByDeploymentError(
        f"{what} can only be served by an Anthropic deployment.", param=param
    )


def _text_of(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}: must be a string or a list of blocks", param=where)
    parts: list[str] = []
    for index, block in enumerate(content):
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") == "image":
            raise _unsupported("An image inside a tool result or system prompt", where)
        elif not isinstance(block, dict):
            raise InvalidRequestError(f"{where}.{index}: must be an object", param=where)
    return "\n".join(parts)


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequestError(f"{where}.source: Field required", param=where)
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = str(source.get("url"))
    else:
        raise _unsupported(f"An image source of type {source.get('type')!r}", where)
    return {"type": "image_url", "image_url": {"url": url}}


def _user(content: object, where: str) -> list[dict[str, Any]]:
    """One Anthropic user turn: its tool results first (as tool messages), then the rest."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    assert isinstance(content, list)
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        at = f"{where}.content.{index}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "tool_result":
            text = _text_of(block.get("content", ""), at)
            if block.get("is_error"):
                text = f"Error: {text}"
            tools.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}
            )
        else:
            raise _unsupported(f"A content block of type {kind!r}", at)
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        body: object = "\n".join(p["text"] for p in parts) if only_text else parts
        tools.append({"role": "user", "content": body})
    return tools


def _assistant(content: object, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    assert isinstance(content, list)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # the reasoning of another model: nothing a chat model can take
        else:
            raise _unsupported(f"A content block of type {kind!r}", f"{where}.content.{index}")
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: object) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequestError("tools: must be a list", param="tools")
    out: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or "input_schema" not in tool:
            raise _unsupported("A server tool (one without input_schema)", f"tools.{index}")
        function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: dict[str, Any], chat: dict[str, Any]) -> None:
    kind = choice.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def to_chat_payload(payload: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The chat-completions body that says what ``payload`` (a Messages body) says."""
    messages: list[dict[str, Any]] = []
    system = payload.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system, "system")})
    for index, message in enumerate(payload["messages"]):
        where = f"messages.{index}"
        if message["role"] == "user":
            messages.extend(_user(message["content"], where))
        else:
            messages.append(_assistant(message["content"], where))
    chat: dict[str, Any] = {"model": payload["model"], "messages": messages}
    if "max_tokens" in payload:
        chat["max_tokens"] = payload["max_tokens"]
    for key in ("temperature", "top_p"):
        if payload.get(key) is not None:
            chat[key] = payload[key]
    if payload.get("stop_sequences"):
        chat["stop"] = payload["stop_sequences"]
    if payload.get("tools"):
        chat["tools"] = _tools(payload["tools"])
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        _tool_choice(choice, chat)
    metadata = payload.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def chat_request(request: MessagesRequest) -> ChatRequest:
    payload = to_chat_payload(request.payload, stream=request.stream)
    return ChatRequest(request.model, request.stream, request.stream, payload)
