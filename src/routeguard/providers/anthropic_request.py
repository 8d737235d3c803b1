"""OpenAI chat-completions requests, rewritten as Anthropic Messages API requests.

The two formats say the same things in different places: system prompts live in a top-level
``system`` rather than in the conversation, the conversation must alternate user/assistant
turns, tool results are user content, and ``max_tokens`` is mandatory. Everything is translated
from the client's payload into a fresh dict, so nothing Anthropic does not know leaks through.

OpenAI parameters with no Anthropic equivalent (:data:`UNSUPPORTED_PARAMS`) are refused with a
400 naming the parameter, unless the deployment sets ``drop_unsupported_params``: silently
answering a ``n: 3`` request with one choice would be a wrong answer, not a degraded one. Such
a parameter at its neutral value (``n: 1``, ``logprobs: false``, a penalty of 0, a ``text``
response format) is accepted, as it asks for nothing. Parameters that change nothing about the
answer (``store``, ``metadata``, ``service_tier``, ``stream_options``, ``reasoning_effort``…)
are not forwarded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from routeguard.errors import InvalidRequestError, UnsupportedByDeploymentError

__all__ = ["DEFAULT_MAX_TOKENS", "UNSUPPORTED_PARAMS", "to_anthropic"]

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when neither the request nor the deployment's ``max_tokens`` sets one."""


def _is_none(value: object) -> bool:
    return value is None


def _is_zero(value: object) -> bool:
    return value is None or value == 0


UNSUPPORTED_PARAMS: dict[str, Callable[[Any], bool]] = {
    "n": lambda v: v is None or v == 1,
    "logprobs": lambda v: v is None or v is False,
    "top_logprobs": _is_zero,
    "presence_penalty": _is_zero,
    "frequency_penalty": _is_zero,
    "logit_bias": lambda v: not v,
    "seed": _is_none,
    "response_format": lambda v: v is None or (isinstance(v, dict) and v.get("type") == "text"),
    "functions": _is_none,
    "function_call": _is_none,
    "audio": _is_none,
    "modalities": lambda v: v is None or v == ["text"],
    "prediction": _is_none,
}
"""OpenAI parameters Anthropic cannot honour, each with the test for its neutral value."""

_TOOL_CHOICE = {"auto": "auto", "none": "none", "required": "any"}


def to_anthropic(
    payload: dict[str, Any],
    *,
    model: str,
    stream: bool,
    default_max_tokens: int | None = None,
    drop_unsupported: bool = False,
) -> dict[str, Any]:
    """The Messages API body for the OpenAI ``payload`` (already checked by the wire layer)."""
    if not drop_unsupported:
        _refuse_unsupported(payload)
    system, messages = _conversation(payload["messages"])
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": _max_tokens(payload, default_max_tokens),
    }
    if system is not None:
        body["system"] = system
    if stream:
        body["stream"] = True
    stop = payload.get("stop")
    if stop is not None:
        body["stop_sequences"] = _stop_sequences(stop)
    for name in ("temperature", "top_p", "top_k"):
        value = payload.get(name)
        if value is not None:
            body[name] = value
    user = payload.get("user")
    if user is not None:
        body["metadata"] = {"user_id": str(user)}
    tools = payload.get("tools")
    if tools:
        body["tools"] = _tools(tools)
        choice = _tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
        if choice is not None:
            body["tool_choice"] = choice
    return body


def _refuse_unsupported(payload: dict[str, Any]) -> None:
    for name, neutral in UNSUPPORTED_PARAMS.items():
        if name in payload and not neutral(payload[name]):
            raise UnsupportedByDeploymentError(
                f"'{name}' is not supported by Anthropic models: remove it, or set "
                "drop_unsupported_params on the deployment to have it ignored.",
                param=name,
            )


def _max_tokens(payload: dict[str, Any], default: int | None) -> int:
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequestError(f"'{name}' must be a positive integer.", param=name)
        return value
    return default or DEFAULT_MAX_TOKENS


def _stop_sequences(stop: object) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise InvalidRequestError("'stop' must be a string or an array of strings.", param="stop")


# --- the conversation -----------------------------------------------------------------------


def _conversation(
    messages: list[dict[str, Any]],
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """Lift system messages out; merge consecutive same-role turns, as Anthropic requires."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message["role"]
        where = f"messages[{index}]"
        if role in ("system", "developer"):
            text = _plain_text(message.get("content"), where)
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), where)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            role, blocks = "user", [_tool_result(message, where)]
        else:
            raise InvalidRequestError(
                f"{where}.role {role!r} is not supported by Anthropic models.",
                param=f"{where}.role",
            )
        if not blocks:
            continue  # Anthropic refuses empty turns; an empty message says nothing anyway
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not system:
        return None, turns
    if len(system) == 1:
        return system[0], turns
    return [{"type": "text", "text": text} for text in system], turns


def _plain_text(content: object, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise InvalidRequestError(
                    f"{where}.content[{j}] must be a text part here.", param=f"{where}.content"
                )
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    raise InvalidRequestError(
        f"{where}.content must be a string or an array of parts.", param=f"{where}.content"
    )


def _user_blocks(content: object, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{where}.content must be a string or an array of parts.", param=f"{where}.content"
        )
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if isinstance(text, str) and text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), f"{where}.content[{j}]"))
        else:
            raise InvalidRequestError(
                f"{where}.content[{j}] of type {kind!r} is not supported by Anthropic models.",
                param=f"{where}.content[{j}]",
            )
    return blocks


def _image_block(image: object, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{where}.image_url.url must be a string.", param=where)
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not media_type:
            raise InvalidRequestError(
                f"{where}: a data URL image must be 'data:<media type>;base64,<data>'.", param=where
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequestError(
        f"{where}: image URL must be http(s) or a base64 data URL.", param=where
    )


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, list):
        # Assistant parts are text or refusal; a refusal is what the assistant said.
        for part in content:
            if isinstance(part, dict):
                text = part.get("text") if part.get("type") == "text" else part.get("refusal")
                if isinstance(text, str) and text:
                    blocks.append({"type": "text", "text": text})
    else:
        text = _plain_text(content, where)
        if text:
            blocks.append({"type": "text", "text": text})
    tool_calls = message.get("tool_calls")
    if tool_calls:
        if not isinstance(tool_calls, list):
            raise InvalidRequestError(
                f"{where}.tool_calls must be an array.", param=f"{where}.tool_calls"
            )
        blocks.extend(
            _tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(tool_calls)
        )
    return blocks


def _tool_use(call: object, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict):
        raise InvalidRequestError(f"{where} must be a function tool call.", param=where)
    arguments = function.get("arguments") or "{}"
    try:
        tool_input = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise InvalidRequestError(
            f"{where}.function.arguments is not valid JSON.", param=f"{where}.function.arguments"
        ) from None
    if not isinstance(tool_input, dict):
        raise InvalidRequestError(
            f"{where}.function.arguments must encode a JSON object for Anthropic models.",
            param=f"{where}.function.arguments",
        )
    return {
        "type": "tool_use",
        "id": call.get("id"),
        "name": function.get("name"),
        "input": tool_input,
    }


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise InvalidRequestError(
            f"{where}.tool_call_id is required.", param=f"{where}.tool_call_id"
        )
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    if isinstance(content, list):
        result["content"] = _user_blocks(content, where)
    elif content is not None:
        result["content"] = str(content)
    return result


# --- tools ----------------------------------------------------------------------------------


def _tools(tools: object) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequestError("'tools' must be an array.", param="tools")
    out: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(function, dict)
        ):
            raise InvalidRequestError(
                f"tools[{index}]: only function tools are supported by Anthropic models.",
                param=f"tools[{index}]",
            )
        spec: dict[str, Any] = {
            "name": function.get("name"),
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        description = function.get("description")
        if description:
            spec["description"] = description
        out.append(spec)
    return out


def _tool_choice(choice: object, parallel: object) -> dict[str, Any] | None:
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif isinstance(choice, str) and choice in _TOOL_CHOICE:
        result = {"type": _TOOL_CHOICE[choice]}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        result = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise InvalidRequestError(
            "'tool_choice' must be 'auto', 'none', 'required' or a named function.",
            param="tool_choice",
        )
    if parallel is False:
        if result is None:
            result = {"type": "auto"}
        if result["type"] != "none":
            result["disable_parallel_tool_use"] = True
    return result
