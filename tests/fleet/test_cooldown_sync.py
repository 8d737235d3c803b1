"""A 429's Retry-After on one replica benches the deployment on all of them."""

from __future__ import annotations

from pathlib import Path

from fleetkit import fleet_config, poll, redis_server, replicas

from routeguard.simulator import FaultSpec, Simulator


def _retry_in(replica, name: str) -> float | None:
    deployments = replica.admin("GET", "/admin/deployments").json()["deployments"]
    return next(d["retry_in_s"] for d in deployments if d["deployment"] == name)


def test_a_rate_limited_key_is_not_hammered_by_the_other_replica(
    simulator: Simulator, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as redis:
        configs = []
        for index in range(2):
            path = tmp_path / f"router-{index}.yaml"
            path.write_text(
                fleet_config(simulator.url, f'url: "{redis.url}"', tmp_path / f"D-{index}.log")
            )
            configs.append(path)
        with replicas(configs, tmp_path) as (a, b):
            limited = FaultSpec(error_rate=1.0, error_status=429, retry_after_s=30)
            simulator.set_fault("dep-a", limited)
            while not _retry_in(a, "dep-a"):
                assert a.chat().status_code == 200  # retried on dep-b
            retry_in, _ = poll(lambda: _retry_in(b, "dep-a"))
            assert 20 < retry_in <= 30
            assert b.breaker("dep-a") == "closed"  # a 429 is not a failure: no breaker opened
            before = simulator.stats()["dep-a"].requests
            for _ in range(20):
                assert b.chat().status_code == 200
            assert simulator.stats()["dep-a"].requests == before
