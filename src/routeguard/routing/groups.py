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

__all__ = ["Deployment", "ModelGroup", "build_groups"]


@dataclass(frozen=True, slots=True, eq=False)
class Deployment:
    """One upstream that can serve a model group."""

    name: str
    provider: Provider

    @property
    def provider_name(self) -> str:
        return self.provider.endpoint.provider


@dataclass(frozen=True, slots=True)
class ModelGroup:
    """A model group: its members in config order and their weights (same order)."""

    name: str
    members: tuple[Deployment, ...]
    weights: tuple[float, ...]

    @property
    def routable(self) -> bool:
        return any(weight > 0 for weight in self.weights)


def build_groups(config: Config, pool: UpstreamPool) -> dict[str, ModelGroup]:
    """One adapter per deployment (shared by every group that names it), grouped by weights."""
    deployments: Mapping[str, Deployment] = {
        name: Deployment(name, build_provider(build_endpoint(name, cfg, config.routing), pool))
        for name, cfg in config.deployments.items()
    }
    return {
        group: ModelGroup(
            group,
            tuple(deployments[name] for name in members),
            tuple(members.values()),
        )
        for group, members in config.weights.items()
    }
