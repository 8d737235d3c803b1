"""Routing strategies: each turns a model group into an ordered list of candidates.

Routing is data: the router tries candidates in the order a strategy returns them, so retries and
fallbacks need no strategy-specific code. Randomness comes from an injected ``random.Random`` so
tests can seed it.
"""

from __future__ import annotations

import random
from typing import Protocol

from routeguard.routing.groups import Deployment, ModelGroup

__all__ = ["Strategy", "WeightedStrategy"]


class Strategy(Protocol):
    def order(self, group: ModelGroup) -> list[Deployment]:
        """Candidates to try, best first; deployments with weight 0 are never included."""
        ...


class WeightedStrategy:
    """Random order in proportion to weight: the first candidate is member *i* with probability
    ``w_i / sum(w)``, the next is drawn the same way from those left (weighted sampling without
    replacement), so a retry lands on another deployment in proportion to the weights too."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def order(self, group: ModelGroup) -> list[Deployment]:
        members, weights = group.members, group.weights
        if len(members) == 1:
            return [members[0]] if weights[0] > 0 else []
        pool = [(m, w) for m, w in zip(members, weights, strict=True) if w > 0]
        ordered: list[Deployment] = []
        while pool:
            if len(pool) == 1:
                ordered.append(pool[0][0])
                break
            point = self._random() * sum(w for _, w in pool)
            index = len(pool) - 1
            for i, (_, weight) in enumerate(pool):
                point -= weight
                if point < 0:
                    index = i
                    break
            ordered.append(pool.pop(index)[0])
        return ordered
