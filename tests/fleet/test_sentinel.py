"""Redis Sentinel: when the master dies and a replica is promoted, the fleet follows."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fleetkit import RedisServer, fleet_config, poll, replicas
from processes import free_port, wait_for_port

from routeguard.simulator import Simulator


def _sentinel(tmp: Path, master_port: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
        f"sentinel monitor fleetmaster 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds fleetmaster 1000\n"
        "sentinel failover-timeout fleetmaster 5000\n"
    )
    process = subprocess.Popen(
        ["redis-sentinel", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port, process)
    return process, port


def _master_port(sentinel_port: int) -> int:
    out = subprocess.run(
        [
            "redis-cli",
            "-p",
            str(sentinel_port),
            "SENTINEL",
            "get-master-addr-by-name",
            "fleetmaster",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.split()
    return int(out[1]) if len(out) == 2 else 0


def test_fleet_follows_a_sentinel_failover(simulator: Simulator, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "r").mkdir()
    master = RedisServer(tmp_path / "m").start()
    replica = RedisServer(tmp_path / "r", "--replicaof", "127.0.0.1", str(master.port)).start()
    sentinel, sentinel_port = _sentinel(tmp_path, master.port)
    try:
        redis = f'sentinel: {{hosts: ["127.0.0.1:{sentinel_port}"], master_name: fleetmaster}}'
        configs = []
        for index in range(2):
            path = tmp_path / f"router-{index}.yaml"
            path.write_text(fleet_config(simulator.url, redis, tmp_path / f"D-{index}.log"))
            configs.append(path)
        with replicas(configs, tmp_path) as (a, b):
            poll(lambda: len(a.admin("GET", "/admin/fleet").json()["members"]) == 2)
            a.admin("PUT", "/admin/weights", {"gpt-4-turbo": {"dep-b": 3}})
            poll(lambda: "dep-b" in master.cli("GET", "routeguard:weights"))
            poll(lambda: "dep-b" in replica.cli("GET", "routeguard:weights"))  # replicated
            master.kill()
            poll(lambda: _master_port(sentinel_port) == replica.port, deadline_s=30, every_s=0.2)
            # Both replicas reconnect to the promoted server and carry on sharing state.
            answer = b.admin("PUT", "/admin/weights", {"gpt-4-turbo": {"dep-b": 5}})
            assert answer.status_code == 200
            poll(lambda: '"dep-b":5.0' in replica.cli("GET", "routeguard:weights"), 30, 0.1)
            poll(
                lambda: (
                    a.admin("GET", "/admin/weights").json()["overrides"]
                    == {"gpt-4-turbo": {"dep-a": 1.0, "dep-b": 5.0}}
                ),
                deadline_s=30,
            )
            poll(lambda: a.health()["redis"]["status"] == "ok", deadline_s=30)
            poll(lambda: len(b.admin("GET", "/admin/fleet").json()["members"]) == 2, 30)
            assert a.chat().status_code == 200
    finally:
        sentinel.kill()
        sentinel.wait(10)
        replica.stop()
        master.stop()
