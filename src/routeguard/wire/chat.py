"""OpenAI chat-completions requests, validated once at the edge.

Only the fields the router acts on are checked and lifted into typed attributes; the rest of the
client's JSON travels untouched in ``payload`` so providers forward what they do not translate
(the hot path pays for one ``orjson.loads`` and no re-validation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from routeguard.errors import InvalidRequestError

__all__ = ["ChatRequest", "EmbeddingRequest", "parse_chat_request", "parse_embedding_request"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat-completions request; ``model`` names a model group, not a provider model."""

    model: str
    stream: bool
    include_usage: bool
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    payload: dict[str, Any]


def _load_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequestError("Request body is empty; expected a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    return data


def _model(data: dict[str, Any]) -> str:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "'model' is required and must be a non-empty string.", param="model"
        )
    return model


def parse_chat_request(body: bytes) -> ChatRequest:
    data = _load_object(body)
    model = _model(data)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError(
            "'messages' is required and must be a non-empty array.", param="messages"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequestError(
                f"messages[{index}] must be an object with a string 'role'.",
                param=f"messages[{index}]",
            )
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean.", param="stream")
    options = data.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise InvalidRequestError("'stream_options' must be an object.", param="stream_options")
        if not stream:
            raise InvalidRequestError(
                "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
            )
        include_usage = options.get("include_usage") is True
    return ChatRequest(model, stream, include_usage, data)


def parse_embedding_request(body: bytes) -> EmbeddingRequest:
    data = _load_object(body)
    model = _model(data)
    value = data.get("input")
    valid = isinstance(value, str) or (
        isinstance(value, list) and value and all(isinstance(v, (str, int, list)) for v in value)
    )
    if not valid:
        raise InvalidRequestError(
            "'input' is required: a string, an array of strings, or token arrays.", param="input"
        )
    return EmbeddingRequest(model, data)
