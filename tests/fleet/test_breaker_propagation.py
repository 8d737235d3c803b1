"""Breakers across replicas: one replica's discovery is every replica's, within a second."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from fleetkit import fleet_config, metric_sum, poll, redis_server, replicas

from routeguard.simulator import FaultSpec, Simulator

DOWN = FaultSpec(error_rate=1.0, error_status=500)


def _configs(tmp: Path, sim: Simulator, redis_url: str, n: int, routing: str = "") -> list[Path]:
    paths = []
    for index in range(n):
        path = tmp / f"router-{index}.yaml"
        text = fleet_config(
            sim.url, f'url: "{redis_url}"', tmp / f"DECISIONS-{index}.log", routing=routing
        )
        path.write_text(text)
        paths.append(path)
    return paths


def _requests(sim: Simulator, name: str) -> int:
    stats = sim.stats().get(name)
    return 0 if stats is None else stats.requests


def test_b_stops_sending_within_a_second_of_a_opening(
    simulator: Simulator, tmp_path: Path, record_property
) -> None:
    lags: list[float] = []
    applied_lags: list[float] = []
    with redis_server(tmp_path) as redis:
        configs = _configs(tmp_path, simulator, redis.url, 2, routing="cooldown_s: 3")
        with replicas(configs, tmp_path) as (a, b):
            for _round in range(3):
                b_errors = metric_sum(
                    b.client.get("/metrics").text, "router_errors_total", deployment="dep-a"
                )
                simulator.set_fault("dep-a", DOWN)
                # Only A sees the outage: it opens dep-a's breaker after its first failures.
                while a.breaker("dep-a") != "open":
                    assert a.chat().status_code == 200  # retries hide the failures
                opened = time.monotonic()
                _, _lag = poll(lambda: b.breaker("dep-a") == "open")
                lags.append(time.monotonic() - opened)
                applied = b.admin("GET", "/admin/fleet").json()["sync_lag_s"]
                assert applied is not None
                applied_lags.append(applied)
                before = _requests(simulator, "dep-a")
                for _ in range(20):
                    assert b.chat().status_code == 200
                assert _requests(simulator, "dep-a") == before, "B sent to the dead deployment"
                scrape = b.client.get("/metrics").text
                assert metric_sum(scrape, "router_errors_total", deployment="dep-a") == b_errors
                # Recovery: the probe (on whichever replica holds the probe key) closes it
                # on both.
                simulator.clear_faults("dep-a")

                def closed_everywhere() -> bool:
                    a.chat()
                    b.chat()
                    return a.breaker("dep-a") == "closed" and b.breaker("dep-a") == "closed"

                poll(closed_everywhere, deadline_s=30, every_s=0.05)
    record_property("propagation_s", lags)
    record_property("decision_to_applied_s", applied_lags)
    print(
        f"breaker propagation A->B seen by polling: {[round(x, 4) for x in lags]}; "
        f"A's decision to B's apply: {[round(x, 4) for x in applied_lags]} "
        f"(median {statistics.median(applied_lags):.4f} s)"
    )
    assert max(lags) < 10  # generous: the measured values are reported, not asserted tightly
