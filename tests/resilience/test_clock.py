"""The manual clock and the bucketed sliding counter the breaker and rate limiter share."""

from __future__ import annotations

import pytest

from routeguard.resilience import ManualClock, SlidingCounter, monotonic


def test_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(5.0)
    assert clock() == 5.0
    clock.advance(2.5)
    assert clock() == 7.5
    clock.advance(0)
    clock.set(10)
    assert clock() == 10.0
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(9.9)
    assert clock() == 10.0


def test_production_clock_is_monotonic() -> None:
    first = monotonic()
    assert monotonic() >= first


@pytest.mark.parametrize(
    ("window_s", "bucket_s"),
    [(30.0, 1.0), (60.0, 1.0), (120.0, 1.0), (600.0, 5.0), (0.5, 0.5), (2.5, 2.5 / 3)],
)
def test_bucket_size(window_s: float, bucket_s: float) -> None:
    counter = SlidingCounter(window_s)
    assert counter.bucket_s == pytest.approx(bucket_s)
    assert counter.window_s == pytest.approx(window_s)


@pytest.mark.parametrize("window_s", [0.0, -1.0, float("inf"), float("nan")])
def test_rejects_nonsense_windows(window_s: float) -> None:
    with pytest.raises(ValueError, match="window_s"):
        SlidingCounter(window_s)


def test_counts_leave_with_their_bucket() -> None:
    counter = SlidingCounter(10.0)
    counter.add(100.0, 1, 1)
    counter.add(100.9, 2, 0)
    counter.add(105.0, 4, 3)
    assert counter.totals(109.99) == (7, 4)
    assert counter.totals(110.0) == (4, 3)
    assert counter.totals(114.99) == (4, 3)
    assert counter.totals(115.0) == (0, 0)


def test_long_gap_empties_everything() -> None:
    counter = SlidingCounter(10.0)
    for t in range(100, 110):
        counter.add(float(t))
    assert counter.totals(109.0) == (10, 0)
    counter.add(1000.0, 1, 0)
    assert counter.totals(1000.0) == (1, 0)


def test_an_earlier_time_counts_as_the_latest() -> None:
    counter = SlidingCounter(10.0)
    counter.add(100.0)
    counter.add(95.0)  # never happens with a monotonic clock; must not corrupt the ring
    assert counter.totals(100.0) == (2, 0)
    assert counter.totals(110.0) == (0, 0)


def test_clear() -> None:
    counter = SlidingCounter(10.0)
    counter.add(100.0, 3, 2)
    counter.clear()
    assert counter.totals(100.0) == (0, 0)
    counter.add(101.0)
    assert counter.totals(101.0) == (1, 0)


def test_seconds_until_below() -> None:
    counter = SlidingCounter(10.0)
    counter.add(100.0, 2, 0)
    counter.add(103.0, 1, 50)
    counter.add(106.0, 1, 50)
    assert counter.seconds_until_below(107.0, 5) == 0.0
    assert counter.seconds_until_below(107.0, 4) == 3.0  # the T=100 bucket leaves at 110
    assert counter.seconds_until_below(107.0, 2) == 6.0  # then the T=103 one at 113
    assert counter.seconds_until_below(107.0, 1) == 9.0
    assert counter.seconds_until_below(107.0, 100, second=True) == 6.0
    assert counter.seconds_until_below(107.0, 101, second=True) == 0.0
