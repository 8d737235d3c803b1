"""Redis dies, comes back empty, is flushed, fills up, holds junk: clients never notice."""

from __future__ import annotations

import concurrent.futures
import signal
import threading
import time
from pathlib import Path

import httpx
from fleetkit import RedisServer, fleet_config, metric_sum, poll, redis_server, replicas

from routeguard.simulator import FaultSpec, Simulator

INTERVAL_S = 1.0
BODY = {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}


class Load:
    """Clients sending steadily to every replica from threads until stopped."""

    def __init__(self, ports: list[int], threads: int) -> None:
        self.ports = ports
        self.stop = threading.Event()
        self.sent = 0
        self.failed: list[str] = []
        self.lock = threading.Lock()
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self._run, i) for i in range(threads)]

    def _run(self, index: int) -> None:
        port = self.ports[index % len(self.ports)]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while not self.stop.is_set():
                try:
                    status = client.post("/v1/chat/completions", json=BODY).status_code
                    problem = None if status == 200 else f"status {status}"
                except httpx.HTTPError as exc:
                    problem = repr(exc)
                with self.lock:
                    self.sent += 1
                    if problem:
                        self.failed.append(problem)

    def finish(self) -> None:
        self.stop.set()
        for future in self.futures:
            future.result(60)
        self.pool.shutdown()


def _configs(tmp: Path, sim: Simulator, redis: str, n: int, routing: str = "") -> list[Path]:
    paths = []
    for index in range(n):
        path = tmp / f"router-{index}.yaml"
        text = fleet_config(
            sim.url, redis, tmp / f"DECISIONS-{index}.log", routing=routing, interval_s=INTERVAL_S
        )
        path.write_text(text)
        paths.append(path)
    return paths


def _state_back(redis: RedisServer) -> bool:
    breaker = redis.cli("HGET", "routeguard:breakers", "dep-a")
    weights = redis.cli("GET", "routeguard:weights")
    return '"open"' in breaker and "dep-b" in weights


def test_redis_killed_restarted_flushed_under_load(
    simulator: Simulator, tmp_path: Path, record_property
) -> None:
    measured: dict[str, float] = {}
    redis = RedisServer(tmp_path).start()
    try:
        configs = _configs(tmp_path, simulator, f'url: "{redis.url}"', 2, routing="cooldown_s: 600")
        with replicas(configs, tmp_path) as (a, b):
            # State worth keeping: dep-a open (A found it), an operator's weight override.
            simulator.set_fault("dep-a", FaultSpec(error_rate=1.0))
            while a.breaker("dep-a") != "open":
                a.chat()
            poll(lambda: b.breaker("dep-a") == "open")
            assert (
                a.admin("PUT", "/admin/weights", {"gpt-4-turbo": {"dep-b": 2}}).status_code == 200
            )
            poll(lambda: _state_back(redis))
            load = Load([a.port, b.port], threads=8)
            try:
                time.sleep(1)
                redis.kill()
                for replica in (a, b):
                    poll(lambda r=replica: r.health()["redis"]["status"] == "degraded")
                    health = replica.health()
                    assert health["status"] == "ok"
                    assert health["redis"]["last_error"]
                    assert replica.client.get("/health/ready").status_code == 200
                    scrape = replica.client.get("/metrics").text
                    assert "router_redis_up 0.0" in scrape
                    assert 'router_redis_errors_total{op="' in scrape
                time.sleep(2)
                # Back, empty (no persistence): the fleet republishes within two intervals.
                redis = RedisServer(tmp_path, port=redis.port).start()
                _, measured["restart_republish_s"] = poll(lambda: _state_back(redis), 20, 0.02)
                poll(lambda: a.health()["redis"]["status"] == "ok")
                # The runbook's own recovery step.
                assert redis.cli("FLUSHDB") == "OK"
                _, measured["flushdb_republish_s"] = poll(lambda: _state_back(redis), 20, 0.02)
                time.sleep(0.5)
            finally:
                load.finish()
            assert b.breaker("dep-a") == "open"
            assert b.admin("GET", "/admin/weights").json()["overrides"]["gpt-4-turbo"]["dep-b"] == 2
    finally:
        redis.stop()
    record_property("republish_s", measured)
    print(f"{load.sent} requests, {len(load.failed)} failed; republished after {measured}")
    assert load.failed == []
    assert load.sent > 100
    assert measured["restart_republish_s"] < 10 * INTERVAL_S  # target 2 intervals: reported


def test_maxclients_5_with_3_replicas_and_200_concurrent_requests(
    simulator: Simulator, tmp_path: Path
) -> None:
    with redis_server(tmp_path, "--maxclients", "5") as redis:
        configs = _configs(tmp_path, simulator, f'url: "{redis.url}"\nmax_connections: 4', 3)
        with replicas(configs, tmp_path) as fleet:
            ports = [r.port for r in fleet] * 67

            def one(port: int) -> int:
                with httpx.Client(timeout=60) as client:
                    url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    return client.post(url, json=BODY).status_code

            with concurrent.futures.ThreadPoolExecutor(200) as pool:
                statuses = list(pool.map(one, ports[:200]))
            assert statuses == [200] * 200
            # Whoever could not get a connection says so, and keeps routing.
            states = {r.health()["redis"]["status"] for r in fleet}
            assert states <= {"ok", "degraded"}
            for replica in fleet:  # the pool is bounded: never more than max_connections
                scrape = replica.client.get("/metrics").text
                assert metric_sum(scrape, "router_redis_pool_in_use") <= 4
            info = redis.cli("INFO", "clients")
            if "connected_clients:" in info:  # else: refused, the server is full (as designed)
                assert int(info.split("connected_clients:")[1].split()[0]) <= 5


def test_junk_under_the_prefix_is_ignored(simulator: Simulator, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        configs = _configs(tmp_path, simulator, f'url: "{redis.url}"', 2)
        with replicas(configs, tmp_path) as (a, b):
            junk = [
                ("HSET", "routeguard:breakers", "dep-a", "not json"),
                ("HSET", "routeguard:breakers", "dep-b", '{"v":1,"t":"breaker","state":"open"}'),
                (
                    "HSET",
                    "routeguard:breakers",
                    "ghost",
                    '{"v":1,"t":"breaker","origin":"x",'
                    '"at":9e12,"deployment":"ghost","state":"open","until":9e12,"left_s":600}',
                ),
                ("HSET", "routeguard:breakers", "dep-a-old", '{"v":0,"state":"OPEN"}'),
                ("SET", "routeguard:weights", "[1,2,3]"),
                ("HSET", "routeguard:members", "zz", "{}"),
                ("LPUSH", "routeguard:cooldowns", "wrong type"),
                ("SET", "routeguard:something-else", "foreign"),
                ("PUBLISH", "routeguard:events", "garbage"),
                ("PUBLISH", "routeguard:events", '{"v":99,"t":"breaker"}'),
                (
                    "PUBLISH",
                    "routeguard:events",
                    '{"v":1,"t":"admin","origin":"x","at":1,'
                    '"id":"1","action":"drop_tables","operator":"x"}',
                ),
            ]
            for command in junk:
                redis.cli(*command)
            time.sleep(3 * INTERVAL_S)
            for replica in (a, b):
                assert replica.process is not None
                assert replica.process.poll() is None
                assert replica.breaker("dep-a") == "closed"
                assert replica.breaker("dep-b") == "closed"
                assert replica.health()["redis"]["status"] == "ok"
                assert replica.admin("GET", "/admin/weights").json()["overrides"] == {}
                assert replica.chat().status_code == 200
                status = replica.admin("GET", "/admin/fleet").json()
                assert len(status["members"]) == 2
            log = (tmp_path / "replica-0.log").read_text()
            assert "ignoring a value in redis that is not RouteGuard state" in log
            assert log.count("Traceback") == 0


def test_a_frozen_redis_is_a_partition_not_a_slowdown(
    simulator: Simulator, tmp_path: Path, record_property
) -> None:
    with redis_server(tmp_path) as redis:
        configs = _configs(tmp_path, simulator, f'url: "{redis.url}"', 2)
        with replicas(configs, tmp_path) as (a, b):
            poll(lambda: a.health()["redis"]["status"] == "ok")
            load = Load([a.port, b.port], threads=4)
            try:
                time.sleep(1)
                assert redis.process is not None
                redis.process.send_signal(signal.SIGSTOP)  # connections open, nothing answers
                try:
                    poll(lambda: a.health()["redis"]["status"] == "degraded")
                    assert a.client.get("/health/ready").status_code == 200
                    time.sleep(2)
                finally:
                    redis.process.send_signal(signal.SIGCONT)
                _, back_s = poll(lambda: a.health()["redis"]["status"] == "ok")
            finally:
                load.finish()
    record_property("recovered_s", back_s)
    print(f"{load.sent} requests while Redis froze, {len(load.failed)} failed")
    assert load.failed == []
