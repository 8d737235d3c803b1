"""The router: name a model group, get an answer from one of its deployments.

Free of any web framework: it takes typed requests and returns typed results, raising
:mod:`routeguard.errors` exceptions that the server turns into OpenAI-shaped answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from routeguard.errors import ModelNotFoundError, NoDeploymentAvailableError
from routeguard.providers.base import ChatResult, ChatStream
from routeguard.routing.groups import Deployment, ModelGroup
from routeguard.routing.strategies import Strategy
from routeguard.wire.chat import ChatRequest, EmbeddingRequest

__all__ = ["Routed", "Router"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Routed(Generic[T]):
    """A result and the deployment that produced it."""

    value: T
    deployment: Deployment
    attempts: int = 1


class Router:
    """Picks a deployment for each request with ``strategy`` and calls its adapter."""

    def __init__(self, groups: Mapping[str, ModelGroup], strategy: Strategy) -> None:
        self.groups = dict(groups)
        self.strategy = strategy

    def group(self, name: str) -> ModelGroup:
        group = self.groups.get(name)
        if group is None:
            raise ModelNotFoundError(
                f"The model '{name}' does not exist or you do not have access to it.", param="model"
            )
        return group

    def plan(self, name: str) -> list[Deployment]:
        """The candidates for a request to group ``name``, in the order to try them."""
        group = self.group(name)
        candidates = self.strategy.order(group)
        if not candidates:
            raise NoDeploymentAvailableError(
                f"Model group '{name}' has no deployment with a positive weight: all weights are 0."
            )
        return candidates

    async def _route(self, model: str, call: Callable[[Deployment], Awaitable[T]]) -> Routed[T]:
        deployment = self.plan(model)[0]
        return Routed(await call(deployment), deployment)

    async def chat(self, request: ChatRequest) -> Routed[ChatResult]:
        return await self._route(request.model, lambda d: d.provider.chat(request))

    async def open_chat_stream(self, request: ChatRequest) -> Routed[ChatStream]:
        return await self._route(request.model, lambda d: d.provider.open_chat_stream(request))

    async def embed(self, request: EmbeddingRequest) -> Routed[bytes]:
        return await self._route(request.model, lambda d: d.provider.embed(request))
