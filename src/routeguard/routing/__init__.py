"""Routing: model groups, strategies, and the router that tries candidates in order."""

from routeguard.routing.groups import Deployment, ModelGroup, build_groups
from routeguard.routing.router import Routed, Router
from routeguard.routing.strategies import Strategy, WeightedStrategy

__all__ = [
    "Deployment",
    "ModelGroup",
    "Routed",
    "Router",
    "Strategy",
    "WeightedStrategy",
    "build_groups",
]
