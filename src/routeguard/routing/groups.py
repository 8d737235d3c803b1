"""Model groups and their deployments, as the router sees them.

A model group is what clients name in ``model``; its members are deployments with a traffic
weight. Built once per configuration (and again on reload); the request path only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from routeguard.config.schema import Config
from routeguard.net.client import UpstreamPool
from routeguard.providers.base import Provider
from routeguard.providers.registry import build_endpoint, build_provider
from routeguard.routing.runtime import DeploymentRuntime, RuntimeRegistry

__all__ = ["Deployment", "ModelGroup", "build_groups"]


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """One upstream that can serve a model group."""

    name: str
    provider: Provider
    runtime: DeploymentRuntime
    input_cost_per_token: float = 0.0
    output_cost_per_token: float = 0.0

    @property
    def provider_name(self) -> str:
        return self.provider.endpoint.provider

    @property
    def cost_per_token(self) -> float:
        """A blended price for ranking: input and output tokens weighted alike."""
        return self.input_cost_per_token + self.output_cost_per_token


@dataclass(frozen=True, slots=True)
class ModelGroup:
    """A model group: its members in config order and their weights (same order)."""

    name: str
    members: tuple[Deployment, ...]
    weights: tuple[float, ...]

    def positive_members(self) -> list[Deployment]:
        """Members that may get traffic: weight 0 means none, whatever the strategy."""
        return [m for m, w in zip(self.members, self.weights, strict=True) if w > 0]


def build_groups(
    config: Config,
    pool: UpstreamPool,
    runtimes: RuntimeRegistry,
    weights: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, ModelGroup]:
    """One adapter per deployment (shared by every group that names it), grouped by weights.

    ``runtimes`` must already be synced with ``config``; each deployment is bound to its state.
    ``weights`` (default: the file's) lets runtime overrides take effect without a new config.
    """
    deployments: Mapping[str, Deployment] = {
        name: Deployment(
            name,
            build_provider(build_endpoint(name, cfg, config.routing), pool),
            runtimes[name],
            cfg.input_cost_per_token,
            cfg.output_cost_per_token,
        )
        for name, cfg in config.deployments.items()
    }
    return {
        group: ModelGroup(
            group,
            tuple(deployments[name] for name in members),
            tuple(members.values()),
        )
        for group, members in (config.weights if weights is None else weights).items()
    }
