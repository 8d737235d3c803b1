"""Exponential backoff with full jitter, with seeded and scripted random sources."""

from __future__ import annotations

import random
from typing import Any

import pytest

from routeguard.resilience import Backoff


class Scripted(random.Random):
    """A random source that always draws the same number."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [
        (1, 0.05),
        (2, 0.1),
        (3, 0.2),
        (4, 0.4),
        (5, 0.8),
        (6, 1.0),
        (7, 1.0),
        (100, 1.0),
        (5000, 1.0),
    ],
)
def test_ceiling_grows_then_caps(attempt: int, ceiling: float) -> None:
    backoff = Backoff()
    assert backoff.ceiling(attempt) == pytest.approx(ceiling)
    assert Backoff(jitter=0).delay(attempt, random.Random(1)) == pytest.approx(ceiling)


def test_custom_multiplier() -> None:
    backoff = Backoff(base_s=1.0, max_s=100.0, multiplier=3.0, jitter=0.0)
    assert [backoff.delay(n, random.Random()) for n in (1, 2, 3, 4, 5)] == [
        1.0,
        3.0,
        9.0,
        27.0,
        81.0,
    ]


@pytest.mark.parametrize(
    ("draw", "jitter", "fraction"),
    [(0.0, 1.0, 1.0), (0.5, 1.0, 0.5), (0.999, 1.0, 0.001), (0.0, 0.5, 1.0), (0.5, 0.5, 0.75)],
)
def test_jitter_takes_a_fraction_of_the_ceiling(
    draw: float, jitter: float, fraction: float
) -> None:
    backoff = Backoff(base_s=1.0, max_s=1.0, jitter=jitter)
    assert backoff.delay(1, Scripted(draw)) == pytest.approx(fraction)


@pytest.mark.parametrize("jitter", [1.0, 0.5, 0.1])
def test_jittered_delays_stay_in_bounds_and_spread(jitter: float) -> None:
    backoff = Backoff(jitter=jitter)
    rng = random.Random(42)
    for attempt in (1, 3, 8):
        ceiling = backoff.ceiling(attempt)
        floor = ceiling * (1 - jitter)
        delays = [backoff.delay(attempt, rng) for _ in range(2000)]
        assert all(floor < d <= ceiling for d in delays)
        # Spread over the whole allowed interval, not clustered: that is the point of jitter.
        span = ceiling - floor
        assert min(delays) < floor + 0.05 * span
        assert max(delays) > ceiling - 0.05 * span


def test_same_seed_same_delays() -> None:
    backoff = Backoff()
    first = [backoff.delay(n, random.Random(7)) for n in range(1, 6)]
    second = [backoff.delay(n, random.Random(7)) for n in range(1, 6)]
    assert first == second


@pytest.mark.parametrize("backoff", [Backoff(base_s=0.0), Backoff.disabled()])
def test_zero_base_disables_waiting(backoff: Backoff) -> None:
    rng = random.Random(3)
    state = rng.getstate()
    assert [backoff.delay(n, rng) for n in (1, 2, 10, 1000)] == [0.0, 0.0, 0.0, 0.0]
    assert rng.getstate() == state  # and draws nothing


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        Backoff().delay(0, random.Random())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": -0.1},
        {"base_s": 2.0, "max_s": 1.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Backoff(**kwargs)
