"""Real processes for fleet tests: redis-server, redis-sentinel, and RouteGuard replicas."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from processes import ROUTEGUARD, free_port, wait_for_port
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "rg-fleet-admin-SECRET"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T = TypeVar("T")


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence; can be killed and restarted."""

    def __init__(self, tmp: Path, *extra: str, port: int | None = None) -> None:
        self.tmp = tmp
        self.port = port or free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.tmp), *self.extra]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        self.kill()


@contextlib.contextmanager
def redis_server(tmp: Path, *extra: str) -> Iterator[RedisServer]:
    server = RedisServer(tmp, *extra).start()
    try:
        yield server
    finally:
        server.stop()


def fleet_config(
    sim_url: Callable[[str], str],
    redis: str,
    audit: Path,
    *,
    routing: str = "",
    weights: str = "{dep-a: 1, dep-b: 1}",
    names: tuple[str, ...] = ("dep-a", "dep-b"),
    interval_s: float = 1.0,
) -> str:
    lines = [
        "server:",
        "  watch_config_s: 0",
        "  access_log: false",
        "admin:",
        f'  audit_log: "{audit}"',
        "  tokens:",
        f'    oncall: "{TOKEN}"',
        "routing:",
        "  num_retries: 2",
        "  retry_backoff_s: 0",
        "  circuit_breaker_error_rate: 0.5",
        "  circuit_breaker_min_requests: 3",
        "  cooldown_s: 60",
        *[f"  {line}" for line in routing.splitlines() if line],
        "deployments:",
    ]
    for name in names:
        lines.append(
            f'  {name}: {{provider: openai, model: m, api_base: "{sim_url(name)}", api_key: sk-x}}'
        )
    lines += ["weights:", f"  gpt-4-turbo: {weights}"]
    if redis:
        lines += ["redis:", *[f"  {line}" for line in redis.splitlines() if line]]
        lines.append(f"  sync_interval_s: {interval_s}")
    return "\n".join(lines) + "\n"


class Replica:
    """One ``routeguard serve`` process; ``log`` holds its stderr."""

    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.log = log
        self.config = config
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def start(self) -> Replica:
        with open(self.log, "ab") as err:
            self.process = subprocess.Popen(
                [
                    *ROUTEGUARD,
                    "serve",
                    "--config",
                    str(self.config),
                    "--port",
                    str(self.port),
                    "--log-format",
                    "text",
                    *self.extra,
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        wait_for_port(self.port, self.process, 60)
        return self

    def stop(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def chat(self) -> httpx.Response:
        return self.client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer client"},
        )

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.client.request(method, path, json=body, headers=AUTH)

    def breaker(self, name: str) -> str:
        deployments = self.admin("GET", "/admin/deployments").json()["deployments"]
        return next(d["breaker"] for d in deployments if d["deployment"] == name)

    def health(self) -> dict[str, Any]:
        return self.client.get("/health").json()  # type: ignore[no-any-return]


@contextlib.contextmanager
def replicas(configs: list[Path], tmp: Path, *extra: str) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for index, config in enumerate(configs):
            started.append(Replica(config, tmp / f"replica-{index}.log", *extra).start())
        yield started
    finally:
        for replica in started:
            replica.stop()


def poll(check: Callable[[], T], deadline_s: float = 15, every_s: float = 0.005) -> tuple[T, float]:
    """Call ``check`` until it returns something truthy; (that value, seconds it took)."""
    start = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > deadline_s:
            raise AssertionError(f"not true within {deadline_s} s: {check}")
        time.sleep(every_s)


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
