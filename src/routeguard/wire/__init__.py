"""OpenAI wire shapes: requests, error envelopes, server-sent events."""

from routeguard.wire.chat import (
    ChatRequest,
    EmbeddingRequest,
    parse_chat_request,
    parse_embedding_request,
)
from routeguard.wire.errors import error_body, error_envelope, sse_error_event

__all__ = [
    "ChatRequest",
    "EmbeddingRequest",
    "error_body",
    "error_envelope",
    "parse_chat_request",
    "parse_embedding_request",
    "sse_error_event",
]
