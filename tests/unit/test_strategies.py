"""Weighted ordering: proportions, weight 0, and retry order."""

from __future__ import annotations

import collections
import random

from routeguard.config.loader import parse_config
from routeguard.net.client import UpstreamPool
from routeguard.routing.groups import ModelGroup, build_groups
from routeguard.routing.runtime import RuntimeRegistry
from routeguard.routing.strategies import WeightedStrategy


def group(weights: dict[str, float]) -> ModelGroup:
    text = (
        "deployments:\n"
        + "".join(
            f'  {name}: {{provider: vllm, model: m, api_base: "http://127.0.0.1:1/v1"}}\n'
            for name in weights
        )
        + "weights:\n  g:\n"
        + "".join(f"    {name}: {w}\n" for name, w in weights.items())
    )
    config = parse_config(text)
    runtimes = RuntimeRegistry()
    runtimes.sync(config)
    return build_groups(config, UpstreamPool(), runtimes)["g"]


def test_first_choice_is_proportional_to_weight():
    g = group({"a": 70, "b": 20, "c": 10, "off": 0})
    strategy = WeightedStrategy(random.Random(1))
    firsts = collections.Counter(strategy.order(g)[0].name for _ in range(20000))
    assert firsts["off"] == 0
    assert abs(firsts["a"] / 20000 - 0.70) < 0.02
    assert abs(firsts["b"] / 20000 - 0.20) < 0.02
    assert abs(firsts["c"] / 20000 - 0.10) < 0.02


def test_order_holds_every_positive_member_once():
    g = group({"a": 1, "b": 1, "c": 5, "off": 0})
    strategy = WeightedStrategy(random.Random(3))
    for _ in range(100):
        names = [d.name for d in strategy.order(g)]
        assert sorted(names) == ["a", "b", "c"]


def test_all_zero_gives_no_candidates():
    assert WeightedStrategy(random.Random(0)).order(group({"a": 0, "b": 0})) == []
    assert WeightedStrategy(random.Random(0)).order(group({"a": 0})) == []


def test_same_seed_same_order():
    g = group({"a": 3, "b": 2, "c": 1})
    one = [[d.name for d in WeightedStrategy(random.Random(9)).order(g)] for _ in range(1)]
    two = [[d.name for d in WeightedStrategy(random.Random(9)).order(g)] for _ in range(1)]
    assert one == two
