"""Chat completion requests as the OpenAI API validates them.

Validation happens once, here, at the edge: the handlers receive a typed ``ChatRequest``
and never look at the raw body again. Error messages, ``param`` and ``code`` follow the
real API (``decimal_above_max_value``, ``missing_required_parameter``, ...) because
routers and clients branch on those fields. Azure OpenAI validates the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from routeguard.simulator.delivery import InvalidRequest
from routeguard.simulator.text import join_text

__all__ = ["ChatRequest", "check_integer", "check_number", "content_text", "parse_chat"]

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat completion request the simulator acts on."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    n: int
    stop: tuple[str, ...]
    tools: list[tuple[str, Any]]
    tool_choice: str | None  # "none" | "auto" | "required" | a forced tool name | None


def parse_chat(body: Any) -> ChatRequest:
    """Validate a chat completion body the way the OpenAI API does, field by field."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid type for request body: expected an object.", None)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter", None)
    messages = _messages(body)
    for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        check_number(body, key, low, high)
    for key in ("presence_penalty", "frequency_penalty"):
        check_number(body, key, -2, 2)
    stream = body.get("stream") is True
    options = body.get("stream_options")
    if options is not None and not stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    max_tokens = check_integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = check_integer(body, "max_tokens", 1)
    tools = _tools(body.get("tools"))
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        max_tokens=max_tokens,
        n=check_integer(body, "n", 1, 128) or 1,
        stop=_stop(body.get("stop")),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
    )


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list):
        raise InvalidRequest(
            "Invalid type for 'messages': expected an array.", "messages", "invalid_type"
        )
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"Invalid type for '{where}': expected an object.", where)
        role = message.get("role")
        if role is None:
            raise InvalidRequest(
                f"Missing required parameter: '{where}.role'.",
                f"{where}.role",
                "missing_required_parameter",
            )
        if role not in ROLES:
            raise InvalidRequest(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                "'user', 'function', 'tool', and 'developer'.",
                f"{where}.role",
                "invalid_value",
            )
        if role == "tool" and not message.get("tool_call_id"):
            raise InvalidRequest(
                f"Missing required parameter: '{where}.tool_call_id'.",
                f"{where}.tool_call_id",
                "missing_required_parameter",
            )
    return messages


def check_number(body: Mapping[str, Any], key: str, low: float, high: float) -> None:
    """Range-check an optional number with OpenAI's error codes."""
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"Invalid type for '{key}': expected a decimal.", key, "invalid_type")
    if value < low:
        raise InvalidRequest(
            f"Invalid '{key}': decimal below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            key,
            "decimal_below_min_value",
        )
    if value > high:
        raise InvalidRequest(
            f"Invalid '{key}': decimal above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            key,
            "decimal_above_max_value",
        )


def check_integer(
    body: Mapping[str, Any], key: str, low: int, high: int | None = None
) -> int | None:
    """Range-check an optional integer with OpenAI's error codes."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"Invalid type for '{key}': expected an integer.", key, "invalid_type")
    if value < low:
        raise InvalidRequest(
            f"Invalid '{key}': integer below minimum value. Expected a value >= {low}, "
            f"but got {value} instead.",
            key,
            "integer_below_min_value",
        )
    if high is not None and value > high:
        raise InvalidRequest(
            f"Invalid '{key}': integer above maximum value. Expected a value <= {high}, "
            f"but got {value} instead.",
            key,
            "integer_above_max_value",
        )
    return value


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(stop)
    raise InvalidRequest("Invalid type for 'stop': expected a string or array.", "stop")


def _tools(tools: Any) -> list[tuple[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("Invalid type for 'tools': expected an array.", "tools")
    parsed: list[tuple[str, Any]] = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise InvalidRequest(
                f"Missing required parameter: 'tools[{index}].function.name'.",
                f"tools[{index}].function.name",
                "missing_required_parameter",
            )
        parsed.append((name, function.get("parameters")))
    return parsed


def _tool_choice(choice: Any, tools: Sequence[tuple[str, Any]]) -> str | None:
    if choice is None or isinstance(choice, str):
        if choice not in (None, "none", "auto", "required"):
            raise InvalidRequest(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                "tool_choice",
                "invalid_value",
            )
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or name not in {tool[0] for tool in tools}:
        raise InvalidRequest(
            "Invalid value for 'tool_choice': the named function is not in 'tools'.",
            "tool_choice",
            "invalid_value",
        )
    return name


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return join_text(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""
