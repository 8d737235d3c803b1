"""The redis: section: validated at load, unreachable at start is a warning, secrets stay out."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleetkit import RedisServer, Replica, fleet_config, poll
from processes import free_port

from routeguard.config.loader import parse_config
from routeguard.errors import ConfigError
from routeguard.simulator import Simulator

BASE = "deployments:\n  d: {provider: openai, model: m, api_base: 'http://127.0.0.1:1'}\n"
BASE += "weights:\n  g: {d: 1}\n"


@pytest.mark.parametrize(
    ("redis", "key", "reason"),
    [
        ("redis: {url: 'http://x'}", "redis.url", "must start with redis://"),
        ("redis: {}", "redis", "exactly one of url and sentinel"),
        (
            "redis: {url: 'redis://x', max_connections: 1}",
            "redis.max_connections",
            "greater than or equal to 2",
        ),
        (
            "redis: {url: 'redis://x', sync_interval_s: 0}",
            "redis.sync_interval_s",
            "greater than 0",
        ),
        ("redis: {sentinel: {hosts: ['x'], master_name: m}}", "redis.sentinel.hosts", "host:port"),
        ("redis: {url: 'redis://x', colour: blue}", "redis.colour", "unknown key"),
    ],
)
def test_bad_redis_sections_name_key_and_reason(redis: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + redis, "router.yaml")
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_defaults() -> None:
    config = parse_config(BASE + "redis: {url: 'redis://127.0.0.1:6379/0'}")
    assert config.redis is not None
    assert config.redis.key_prefix == "routeguard:"
    assert config.redis.sync_interval_s == 1.0


def test_unreachable_redis_at_start_serves_and_recovers_without_leaking_the_password(
    simulator: Simulator, tmp_path: Path
) -> None:
    port = free_port()
    password = "redis-pw-SECRET"
    config = tmp_path / "router.yaml"
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    config.write_text(fleet_config(simulator.url, f'url: "{url}"', tmp_path / "D.log"))
    replica = Replica(config, tmp_path / "replica.log").start()
    try:
        assert replica.chat().status_code == 200
        health = replica.health()
        assert health["redis"]["status"] == "degraded"
        assert replica.client.get("/health/ready").status_code == 200
        # Redis appears later (with that password): the replica connects by itself.
        (tmp_path / "redis").mkdir()
        late = RedisServer(tmp_path / "redis", "--requirepass", password, port=port).start()
        try:
            poll(lambda: replica.health()["redis"]["status"] == "ok", deadline_s=30, every_s=0.1)
            poll(lambda: len(replica.admin("GET", "/admin/fleet").json()["members"]) == 1)
        finally:
            late.stop()
        for text in (
            replica.client.get("/health").text,
            replica.client.get("/metrics").text,
            replica.admin("GET", "/admin/fleet").text,
            replica.admin("GET", "/admin/config").text,
        ):
            assert password not in text
    finally:
        replica.stop()
    assert password not in (tmp_path / "replica.log").read_text()
