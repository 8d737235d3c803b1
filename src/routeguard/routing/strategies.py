"""Routing strategies: each turns a model group into an ordered list of candidates.

Routing is data: the router tries candidates in the order a strategy returns them, so retries and
fallbacks need no strategy-specific code. Every strategy leaves out deployments with weight 0
(weight 0 always means "no traffic") and puts deployments that cannot take a request right now
(breaker open, no free slot, over rpm/tpm) after those that can, so the router only reaches them
to queue. Randomness comes from an injected ``random.Random`` so tests can seed it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from routeguard.config.schema import Strategy as StrategyName
from routeguard.routing.groups import Deployment, ModelGroup

__all__ = [
    "CostStrategy",
    "LatencyStrategy",
    "LeastBusyStrategy",
    "Strategy",
    "WeightedStrategy",
    "build_strategy",
]


class Strategy(Protocol):
    def order(self, group: ModelGroup) -> list[Deployment]:
        """Candidates to try, best first; deployments with weight 0 are never included."""
        ...


def _weighted_order(
    pairs: list[tuple[Deployment, float]], draw: Callable[[], float]
) -> list[Deployment]:
    """Weighted sampling without replacement: each pick is proportional to the weights left."""
    ordered: list[Deployment] = []
    while pairs:
        if len(pairs) == 1:
            ordered.append(pairs[0][0])
            break
        point = draw() * sum(weight for _, weight in pairs)
        index = len(pairs) - 1
        for i, (_, weight) in enumerate(pairs):
            point -= weight
            if point < 0:
                index = i
                break
        ordered.append(pairs.pop(index)[0])
    return ordered


def _split_usable(members: Sequence[Deployment]) -> tuple[list[Deployment], list[Deployment]]:
    usable: list[Deployment] = []
    blocked: list[Deployment] = []
    for member in members:
        (usable if member.runtime.usable() else blocked).append(member)
    return usable, blocked


class WeightedStrategy:
    """Random order in proportion to weight among usable deployments.

    The first candidate is member *i* with probability ``w_i / sum(w)``; the next is drawn the
    same way from those left, so a retry lands on another deployment in proportion too. When a
    deployment's breaker opens, its share goes to the others in proportion to their weights.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def order(self, group: ModelGroup) -> list[Deployment]:
        members, weights = group.members, group.weights
        if len(members) == 1:
            return [members[0]] if weights[0] > 0 else []
        positive = [m for m, w in zip(members, weights, strict=True) if w > 0]
        weight_of = dict(zip(members, weights, strict=True))
        usable, blocked = _split_usable(positive)
        return _weighted_order([(m, weight_of[m]) for m in usable], self._random) + blocked


class LatencyStrategy:
    """Lowest recent latency (time to first token where known, EWMA).

    Choosing at random among every deployment within ``buffer`` of the fastest keeps the
    fastest from being stampeded, and lets a slightly slower one keep being measured.
    """

    def __init__(self, rng: random.Random | None = None, buffer: float = 0.2) -> None:
        self._rng = rng or random.Random()
        self.buffer = buffer

    def order(self, group: ModelGroup) -> list[Deployment]:
        positive = group.positive_members()
        usable, blocked = _split_usable(positive)
        ranked = sorted(usable, key=lambda d: d.runtime.latency.score_s)
        if not ranked:
            return blocked
        limit = ranked[0].runtime.latency.score_s * (1 + self.buffer)
        near = [d for d in ranked if d.runtime.latency.score_s <= limit]
        self._rng.shuffle(near)
        return near + ranked[len(near) :] + blocked


class LeastBusyStrategy:
    """Fewest requests in flight first; ties broken at random."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def order(self, group: ModelGroup) -> list[Deployment]:
        usable, blocked = _split_usable(group.positive_members())
        usable.sort(key=lambda d: (d.runtime.limiter.in_flight, self._random()))
        return usable + blocked


class CostStrategy:
    """Cheapest by configured per-token prices among healthy deployments; ties by weight."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def order(self, group: ModelGroup) -> list[Deployment]:
        usable, blocked = _split_usable(group.positive_members())
        weight_of = dict(zip(group.members, group.weights, strict=True))
        usable.sort(key=lambda d: (d.cost_per_token, -weight_of[d] * self._random()))
        return usable + blocked


def build_strategy(name: StrategyName, rng: random.Random, latency_buffer: float) -> Strategy:
    if name == "latency":
        return LatencyStrategy(rng, latency_buffer)
    if name == "least-busy":
        return LeastBusyStrategy(rng)
    if name == "cost":
        return CostStrategy(rng)
    return WeightedStrategy(rng)
