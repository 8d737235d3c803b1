"""Rolling traffic windows: counts, error rates and quantiles over moving time, on a fake clock."""

from __future__ import annotations

import pytest

from routeguard.observability.windows import TrafficWindows


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_attempts_counted_per_deployment_and_provider() -> None:
    clock = FakeClock()
    windows = TrafficWindows(clock)
    for _ in range(8):
        windows.attempt("openai-a", "openai", None, 0.040)
    windows.attempt("openai-a", "openai", "server_error", 0.010)
    windows.attempt("openai-a", "openai", "timeout", 30.0)
    windows.attempt("azure-a", "azure", None, 0.2)

    one = windows.stats(60, deployment="openai-a")
    assert (one.requests, one.errors) == (10, 2)
    assert one.error_rate == pytest.approx(0.2)
    assert one.errors_by_reason == {"server_error": 1, "timeout": 1}
    assert one.p50_ms is not None
    assert 25 <= one.p50_ms <= 50
    assert one.p99_ms is not None
    assert one.p99_ms > 1000
    assert windows.stats(60, provider="azure").requests == 1
    assert windows.stats(60).requests == 11
    assert windows.deployments() == {("openai-a", "openai"), ("azure-a", "azure")}


def test_old_buckets_leave_the_window_and_the_horizon() -> None:
    clock = FakeClock()
    windows = TrafficWindows(clock, bucket_s=10, horizon_s=900)
    windows.attempt("d", "openai", "server_error", 0.1)
    clock.now += 65
    windows.attempt("d", "openai", None, 0.1)
    assert windows.stats(60).requests == 1
    assert windows.stats(300).requests == 2
    clock.now += 1000
    assert windows.stats(900).requests == 0
    assert windows.stats(900).p95_ms is None


def test_client_answers_split_by_status_class() -> None:
    clock = FakeClock()
    windows = TrafficWindows(clock)
    windows.client("gpt-4-turbo", 200, 0.05)
    windows.client("gpt-4-turbo", 429, 0.001)
    windows.client("gpt-4-turbo", 502, 0.3)
    windows.client(None, 404, 0.001)
    stats = windows.client_stats(60, group="gpt-4-turbo")
    assert stats.requests == 3
    assert stats.errors == 1
    assert stats.by_status_class == {"2xx": 1, "4xx": 1, "5xx": 1}
    assert windows.client_stats(60).requests == 4


def test_series_has_one_point_per_bucket_with_gaps_as_zeros() -> None:
    clock = FakeClock()
    windows = TrafficWindows(clock, bucket_s=10)
    windows.attempt("d", "openai", None, 0.1)
    clock.now += 30
    windows.attempt("d", "openai", "timeout", 0.1)
    points = windows.series(60, deployment="d")
    assert len(points) == 6
    assert [p.requests for p in points][-4:] == [1, 0, 0, 1]
    assert points[-1].errors == 1
    assert points[0].age_s > points[-1].age_s
