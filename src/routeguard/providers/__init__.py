"""Provider adapters: the contract and one module per wire format."""

from routeguard.providers.base import ChatResult, ChatStream, Endpoint, Provider, Usage
from routeguard.providers.registry import build_endpoint, build_provider

__all__ = [
    "ChatResult",
    "ChatStream",
    "Endpoint",
    "Provider",
    "Usage",
    "build_endpoint",
    "build_provider",
]
