"""Inbound APIs beyond chat completions, served through the same router: Anthropic Messages,
OpenAI Responses and legacy Completions (see :mod:`routeguard.inbound.base`)."""

from routeguard.inbound.base import InboundApi, InboundCall
from routeguard.inbound.completions import CompletionsApi
from routeguard.inbound.messages import CountTokensApi, MessagesApi
from routeguard.inbound.responses import ResponsesApi

__all__ = [
    "CompletionsApi",
    "CountTokensApi",
    "InboundApi",
    "InboundCall",
    "MessagesApi",
    "ResponsesApi",
]
