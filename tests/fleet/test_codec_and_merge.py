"""Pure pieces: the record codec rejects what is not ours; worker expositions merge right."""

from __future__ import annotations

import time

import pytest
from fleetkit import metric_sum
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from routeguard.fleet.breakers import _left
from routeguard.fleet.codec import BreakerRecord, decode, encode
from routeguard.observability.aggregate import merge_expositions


def test_a_record_round_trips_and_newer_fields_are_tolerated() -> None:
    record = BreakerRecord(origin="a", at=1.5, deployment="d", state="open", until=9.0, left_s=3.0)
    assert decode(encode(record)) == record
    newer = encode(record)[:-1] + b',"from_the_future":1}'
    assert decode(newer) == record


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[1]",
        b'{"t":"breaker"}',
        b'{"v":2,"t":"breaker","origin":"a","at":1,"deployment":"d","state":"open"}',
        b'{"v":1,"t":"breaker","origin":"a","at":1,"deployment":"d","state":"OPEN"}',
        b'{"v":1,"t":"breaker","origin":"a","at":"NaN","deployment":"d","state":"open"}',
        b'{"v":1,"t":"admin","origin":"a","at":1,"id":"x","action":"rm -rf","operator":"o"}',
        b"\xff\xfe",
    ],
)
def test_junk_decodes_to_none(raw: bytes) -> None:
    assert decode(raw) is None


def test_cooldown_left_is_capped_by_the_senders_remaining_time() -> None:
    now = time.time()
    assert _left(now + 100, 5.0, 60) == pytest.approx(5.0)  # our clock lags: trust "5 s left"
    assert _left(now + 3, 5.0, 60) == pytest.approx(3.0, abs=0.05)  # transit took ~2 s
    assert _left(now - 1, 5.0, 60) == 0.0
    assert _left(now + 1000, None, 60) == 60  # never longer than our own cooldown
    assert _left(None, None, 60) == 60


def _worker(requests: float, in_flight: float, breaker: float) -> str:
    registry = CollectorRegistry()
    Counter("router_requests_total", "r", ["deployment"], registry=registry).labels("d").inc(
        requests
    )
    Gauge("router_in_flight", "f", ["deployment"], registry=registry).labels("d").set(in_flight)
    Gauge("router_circuit_breaker_state", "b", ["deployment"], registry=registry).labels("d").set(
        breaker
    )
    Gauge("router_redis_up", "u", registry=registry).set(1 if breaker < 2 else 0)
    Histogram("router_latency_seconds", "l", registry=registry).observe(requests / 10)
    return generate_latest(registry).decode()


def test_merge_sums_counts_and_takes_the_worst_state() -> None:
    merged = merge_expositions([_worker(3, 1, 0), _worker(4, 2, 2), _worker(5, 0, 1)]).decode()
    assert metric_sum(merged, "router_requests_total", deployment="d") == 12
    assert metric_sum(merged, "router_in_flight", deployment="d") == 3
    assert metric_sum(merged, "router_circuit_breaker_state", deployment="d") == 2
    assert metric_sum(merged, "router_redis_up") == 0
    assert metric_sum(merged, "router_latency_seconds_count") == 3
