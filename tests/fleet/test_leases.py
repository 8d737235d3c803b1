"""Leases: one holder at a time across replicas; the local lease of a lone process."""

from __future__ import annotations

import time
from pathlib import Path

from fleetkit import fleet_config, redis_server

from routeguard.config.loader import parse_config
from routeguard.ops.lease import lease_for
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import Simulator


def test_one_holder_at_a_time_and_release(loop_thread, simulator: Simulator, tmp_path: Path):
    with redis_server(tmp_path) as redis:
        text = fleet_config(simulator.url, f'url: "{redis.url}"', tmp_path / "D.log")
        apps = [RouteGuardApp(parse_config(text)) for _ in range(2)]
        for app in apps:
            loop_thread.run(app.start("127.0.0.1", 0))
        try:
            a, b = (lease_for(app.fleet) for app in apps)
            assert loop_thread.run(a.acquire("rollout", 0.5)) is True
            assert loop_thread.run(b.acquire("rollout", 0.5)) is False
            assert loop_thread.run(a.acquire("rollout", 0.5)) is True  # renewal
            loop_thread.run(a.release("rollout"))
            assert loop_thread.run(b.acquire("rollout", 0.3)) is True
            time.sleep(0.5)  # b's lease lapses unrenewed
            assert loop_thread.run(a.acquire("rollout", 0.3)) is True
            redis.kill()  # a fleet that cannot agree does not act twice
            assert loop_thread.run(b.acquire("other", 1)) is False
        finally:
            for app in apps:
                loop_thread.run(app.close(0.5))


def test_a_lone_process_always_holds(loop_thread) -> None:
    lease = lease_for(None)
    assert loop_thread.run(lease.acquire("x", 1)) is True
    assert loop_thread.run(lease.acquire("x", 1)) is True
