"""What every drill runs on: the simulator, a real router process, client load and a sampler.

The router is a separate ``routeguard serve`` process on a free port, so the drill sees it the
way an operator does (admin API, client API, its own RSS) and a crash in it cannot hide in the
drill's own process; the simulator runs in the drill's process, so faults and accepted keys can
be switched instantly. Everything is on loopback; the process is killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from routeguard.simulator import Simulator

__all__ = ["DrillEnv", "Load", "Sampler", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DrillEnv:
    """The simulator, one router process from ``config`` and an admin session, on loopback."""

    def __init__(
        self,
        workdir: Path,
        *,
        api_keys: Collection[str] | None = None,
        sim: Simulator | None = None,
    ) -> None:
        self.workdir = workdir
        # A replica of a multi-router drill shares the first env's simulator (and leaves
        # stopping it to that env).
        self._owns_sim = sim is None
        self.sim = sim if sim is not None else Simulator(seed=7, api_keys=api_keys)
        self.token = "drill-" + secrets.token_hex(8)
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self.t0 = time.monotonic()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def now(self) -> float:
        """Seconds since the drill began."""
        return time.monotonic() - self.t0

    async def start_simulator(self) -> None:
        await self.sim.start()

    async def start_router(self, config_text: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "router.yaml"
        path.write_text(config_text)
        self.port = free_port()
        with (self.workdir / "router.log").open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "routeguard.cli", "serve", "--config", str(path),
                "--host", "127.0.0.1", "--port", str(self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.session = aiohttp.ClientSession(
            headers={"authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=30),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"the router exited; see {self.workdir / 'router.log'}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self.session.get(f"{self.url}/health/ready") as response:
                    if response.status == 200:
                        self.t0 = time.monotonic()
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError("the router did not become ready within 30 s")

    async def admin(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        assert self.session is not None
        async with self.session.request(method, f"{self.url}{path}", json=body) as response:
            data = await response.json(content_type=None)
            return response.status, data

    def rss_mb(self) -> float | None:
        """The router process's resident memory, from ``/proc`` (Linux)."""
        if self.process is None:
            return None
        try:
            text = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._owns_sim:
            await self.sim.stop()


@dataclass
class Load:
    """Steady client traffic: ``workers`` loops posting small chat requests to one model group."""

    env: DrillEnv
    model: str
    workers: int = 4
    pause_s: float = 0.01
    records: list[tuple[float, int, str]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._session.close()

    async def _worker(self, number: int) -> None:
        url = f"{self.env.url}/v1/chat/completions"
        body = {"model": self.model, "messages": [{"role": "user", "content": f"drill {number}"}],
                "max_tokens": 8}  # fmt: skip
        while True:
            try:
                async with self._session.post(url, json=body) as response:
                    await response.read()
                    deployment = response.headers.get("x-routeguard-deployment", "")
                    self.records.append((self.env.now(), response.status, deployment))
            except (aiohttp.ClientError, TimeoutError):
                self.records.append((self.env.now(), 0, ""))
            await asyncio.sleep(self.pause_s)

    def errors(self, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(1 for t, status, _ in self.records if since <= t <= until and status != 200)

    def served_by(self, deployment: str, since: float = 0.0) -> int:
        return sum(
            1 for t, status, d in self.records if t >= since and status == 200 and d == deployment
        )


@dataclass
class Sampler:
    """Polls the router's admin API: breaker states (10 Hz), incident class and RSS (1 Hz)."""

    env: DrillEnv
    breakers: dict[str, str] = field(default_factory=dict)
    transitions: list[tuple[float, str, str]] = field(default_factory=list)
    classes: list[tuple[float, str]] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)
    status_available: bool | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        tick = 0
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                await self._breakers()
                if tick % 10 == 0:
                    await self._slow()
            tick += 1
            await asyncio.sleep(0.1)

    async def _breakers(self) -> None:
        status, data = await self.env.admin("GET", "/admin/deployments")
        if status != 200:
            return
        for item in data["deployments"]:
            name, state = item["deployment"], item["breaker"]
            if self.breakers.get(name) != state:
                self.transitions.append((self.env.now(), name, state))
                self.breakers[name] = state

    async def _slow(self) -> None:
        rss = self.env.rss_mb()
        if rss is not None:
            self.rss.append((self.env.now(), rss))
        if self.status_available is False:
            return
        status, data = await self.env.admin("GET", "/admin/status")
        self.status_available = status == 200
        if status == 200 and isinstance(data, dict):
            cls = str(data.get("class", "?"))
            if not self.classes or self.classes[-1][1] != cls:
                self.classes.append((self.env.now(), cls))

    def first(self, name: str, state: str, after: float) -> float | None:
        """When ``name``'s breaker was first seen in ``state`` at or after ``after``."""
        return next(
            (t for t, n, s in self.transitions if n == name and s == state and t >= after), None
        )

    def first_not(self, name: str, state: str, after: float) -> float | None:
        return next(
            (t for t, n, s in self.transitions if n == name and s != state and t >= after), None
        )
