"""OpenAI Responses requests: validated at the edge, and rewritten as chat completions for
deployments that do not serve ``/v1/responses`` themselves.

RouteGuard is stateless: ``previous_response_id`` (and ``conversation``) would need the answer
of an earlier request, possibly served by another deployment, so such a request is refused
with a 400 that says to send the conversation as ``input`` items instead. ``store`` is
accepted and nothing is ever stored by RouteGuard.

The chat translation covers ``instructions``, ``input`` as a string or as items (messages with
text and image parts, ``function_call`` and ``function_call_output``), function tools and
``tool_choice``, ``max_output_tokens``, ``temperature``, ``top_p``, ``parallel_tool_calls``,
``user`` and ``text.format`` (JSON schema or JSON object). Reasoning items are dropped; hosted
tools (web search, file search, ...) and file inputs can only be served by OpenAI itself, so
other deployments report they cannot serve the request and the router looks for one that can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routeguard.errors import InvalidRequestError, UnsupportedByDeploymentError
from routeguard.inbound.base import load_json_object
from routeguard.wire.chat import ChatRequest

__all__ = ["ResponsesRequest", "parse_responses_request", "to_chat_payload"]


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    model: str
    stream: bool
    payload: dict[str, Any]


def parse_responses_request(body: bytes) -> ResponsesRequest:
    data = load_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "'model' is required and must be a non-empty string.", param="model"
        )
    for stateful in ("previous_response_id", "conversation"):
        if data.get(stateful) is not None:
            raise InvalidRequestError(
                f"'{stateful}' is not supported: RouteGuard is stateless and stores no "
                "responses. Send the whole conversation as 'input' items instead.",
                param=stateful,
            )
    value = data.get("input")
    if not isinstance(value, (str, list)) or not value:
        raise InvalidRequestError(
            "'input' is required: a string or a non-empty array of input items.", param="input"
        )
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean.", param="stream")
    return ResponsesRequest(model, stream, data)


def _unsupported(what: str, param: str) -> UnsupportedByDeploymentError:
    return UnsupportedByDeploymentError(
        f"{what} can only be served by an OpenAI deployment (native /v1/responses).", param=param
    )


def _parts(content: object, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where} must be a string or an array of parts.", param=where)
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise _unsupported(f"An input part of type {kind!r}", f"{where}[{index}]")
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _output_text(output: object) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(
            str(p.get("text", "")) for p in output if isinstance(p, dict) and "text" in p
        )
    return str(output)


def _items(items: list[Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequestError(f"{where} must be an object.", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise InvalidRequestError(f"{where}.role is not a valid role.", param=where)
            messages.append({"role": role, "content": _parts(item.get("content"), where)})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": _output_text(item.get("output")),
                }
            )
        elif kind == "reasoning":
            continue
        else:
            raise _unsupported(f"An input item of type {kind!r}", where)
    return messages


def _tools(tools: object) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequestError("'tools' must be an array.", param="tools")
    out: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _unsupported(f"A tool of type {kind!r}", f"tools[{index}]")
        function: dict[str, Any] = {"name": tool.get("name")}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: object) -> object:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _response_format(text: object) -> dict[str, Any] | None:
    form = text.get("format") if isinstance(text, dict) else None
    if not isinstance(form, dict) or form.get("type") in (None, "text"):
        return None
    if form.get("type") == "json_object":
        return {"type": "json_object"}
    schema = {k: form[k] for k in ("name", "schema", "strict", "description") if k in form}
    return {"type": "json_schema", "json_schema": schema}


def to_chat_payload(payload: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if payload.get("instructions"):
        messages.append({"role": "system", "content": str(payload["instructions"])})
    value = payload["input"]
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
    else:
        messages.extend(_items(value))
    chat: dict[str, Any] = {"model": payload["model"], "messages": messages}
    if payload.get("max_output_tokens") is not None:
        chat["max_tokens"] = payload["max_output_tokens"]
    for key in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if payload.get(key) is not None:
            chat[key] = payload[key]
    if payload.get("tools"):
        chat["tools"] = _tools(payload["tools"])
        if payload.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(payload["tool_choice"])
    response_format = _response_format(payload.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def chat_request(request: ResponsesRequest) -> ChatRequest:
    payload = to_chat_payload(request.payload, stream=request.stream)
    return ChatRequest(request.model, request.stream, request.stream, payload)
