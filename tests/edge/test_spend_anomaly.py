"""The spend-rate anomaly signal, driven by an injected clock (minutes of traffic in milliseconds)."""

from __future__ import annotations

import calendar
import logging
import time
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from routeguard.clients import ClientGuard, ClientsConfig, hash_key, key_id
from routeguard.clients.errors import KeyRateLimitError
from routeguard.clients.usage import period_bounds

KEY = "rg-anomaly-test-key"


@dataclass
class Used:
    tokens: int
    cost_usd: float


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(throttle: bool) -> tuple[ClientGuard, FakeClock, CollectorRegistry]:
    clock, registry = FakeClock(), CollectorRegistry()
    config = ClientsConfig.model_validate(
        {
            "keys": {"agent": {"key_hash": hash_key(KEY)}},
            "anomaly": {
                "factor": 5,
                "window_s": 60,
                "baseline_s": 600,
                "min_spend_usd": 0.1,
                "throttle": throttle,
            },
        }
    )
    g = ClientGuard(registry, clock=clock, wall=lambda: 1_700_000_000.0)
    g.configure(config)
    return g, clock, registry


def spend(g: ClientGuard, clock: FakeClock, usd: float, every_s: float, count: int) -> None:
    for _ in range(count):
        ticket = g.admit({"authorization": f"Bearer {KEY}"})
        clock.now += every_s
        ticket.finish(Used(100, usd))


def anomaly_gauge(registry: CollectorRegistry) -> str:
    kid = key_id(hash_key(KEY))
    text = generate_latest(registry).decode()
    return next(
        line.split()[-1]
        for line in text.splitlines()
        if line.startswith(f'routeguard_client_key_spend_anomaly{{key_id="{kid}"}}')
    )


def test_steady_spend_is_normal_and_a_spike_raises_the_signal(caplog):
    g, clock, registry = guard(throttle=False)
    spend(g, clock, usd=0.01, every_s=10, count=70)  # ~11 minutes at $0.001/s: the baseline
    assert anomaly_gauge(registry) == "0.0"
    caplog.set_level(logging.WARNING, "routeguard.clients")
    spend(g, clock, usd=0.05, every_s=1, count=30)  # $1.50 in 30 s: 50x the baseline
    assert anomaly_gauge(registry) == "1.0"
    assert "spend rate anomalous" in caplog.text
    assert KEY not in caplog.text
    assert g.usage(g.find("agent"))["spend_rate"]["anomalous"] is True
    # Back to the old pace: once the spike leaves the window the signal clears.
    spend(g, clock, usd=0.01, every_s=10, count=12)
    assert anomaly_gauge(registry) == "0.0"


def test_throttle_refuses_the_key_while_anomalous():
    g, clock, _ = guard(throttle=True)
    spend(g, clock, usd=0.01, every_s=10, count=70)
    with pytest.raises(KeyRateLimitError) as caught:
        spend(g, clock, usd=0.05, every_s=1, count=60)  # refused part-way through the spike
    assert caught.value.status == 429
    assert "throttled" in caught.value.message
    clock.now += 120  # the spike leaves the short window: the next request re-checks and passes
    g.admit({"x-api-key": KEY})


def test_a_first_small_spend_is_not_an_anomaly():
    g, clock, registry = guard(throttle=True)
    spend(g, clock, usd=0.01, every_s=1, count=5)  # no baseline, but below min_spend_usd
    assert anomaly_gauge(registry) == "0.0"
    g.admit({"x-api-key": KEY})


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("hour", "2026-12-04T12:00:00", "2026-12-04T13:00:00"),
        ("day", "2026-12-04T00:00:00", "2026-12-05T00:00:00"),
        ("week", "2026-11-30T00:00:00", "2026-12-07T00:00:00"),
        ("month", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_budget_periods_follow_the_utc_calendar(period, start, end):
    def epoch(text: str) -> float:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))

    assert period_bounds(period, epoch("2026-12-04T12:34:56")) == (epoch(start), epoch(end))
