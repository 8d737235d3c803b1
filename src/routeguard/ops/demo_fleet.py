"""``routeguard demo --replicas N``: one replica detects an outage, the others follow.

The simulator, a private ``redis-server`` (when one is on PATH) and N routers run on free local
ports; traffic is spread over the routers as a load balancer would. When the scripted outage
starts, whichever replica first sees enough failures opens the breaker, and the live view shows
the others turning it open too, milliseconds later, without sending the failing provider a
request of their own. Without ``redis-server`` the replicas run as islands, and each has to
discover the outage for itself: the contrast the fleet exists for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from routeguard.config.loader import parse_config
from routeguard.ops.demo import (
    _STATE_STYLE,
    DEMO_DEPLOYMENTS,
    PACING,
    DemoStats,
    Outage,
    _one_request,
    demo_config,
)
from routeguard.resilience import BreakerState
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import Simulator

__all__ = ["run_fleet_demo", "start_redis"]


@dataclass
class _Follow:
    """When each replica first showed the outage's breaker open (monotonic seconds)."""

    opened: dict[int, float] = field(default_factory=dict)
    first: int | None = None
    lag_s: dict[int, float] = field(default_factory=dict)
    """For followers: the age of the origin's decision when they applied it."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_redis(directory: Path) -> tuple[asyncio.subprocess.Process, int] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = _free_port()
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = await asyncio.create_subprocess_exec(
        binary,
        *args,
        "--dir",
        str(directory),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return process, port
        await asyncio.sleep(0.02)
    process.kill()
    await process.wait()
    return None


def _view(
    apps: list[RouteGuardApp], stats: DemoStats, follow: _Follow, outage: Outage | None, redis: bool
) -> Group:
    table = Table(title="RouteGuard fleet demo — breaker state per replica", expand=False)
    table.add_column("deployment")
    for index, app in enumerate(apps):
        table.add_column(f"replica-{index + 1} :{app.port}")
    for name, *_ in DEMO_DEPLOYMENTS:
        cells = []
        for app in apps:
            label, style = _STATE_STYLE[app.runtimes[name].breaker.state]
            cells.append(Text(label, style=style))
        table.add_row(name, *cells)
    lines = [
        f"{time.monotonic() - stats.started:5.1f}s  requests {stats.total}  "
        f"client-visible errors {stats.client_errors}  "
        + ("shared state: redis" if redis else "no redis-server on PATH: replicas are islands")
    ]
    if outage is not None and follow.first is not None:
        first_at = follow.opened[follow.first]
        parts = [f"replica-{follow.first + 1} detected the outage of {outage.deployment}"]
        for index, at in sorted(follow.opened.items()):
            if index != follow.first:
                lag = follow.lag_s.get(index, at - first_at)
                parts.append(f"replica-{index + 1} followed after {1000 * lag:.1f} ms")
        lines.append("; ".join(parts))
    return Group(table, Text("\n".join(lines), style="bold"))


async def run_fleet_demo(
    replicas: int,
    *,
    duration_s: float | None = None,
    rate: float = 20.0,
    seed: int | None = None,
    outage: Outage | None = None,
    console: Console | None = None,
) -> DemoStats:
    console = console or Console()
    directory = Path(tempfile.mkdtemp(prefix="routeguard-demo-"))
    simulator = Simulator(seed=seed)
    await simulator.start()
    simulator.set_fault("*", PACING)
    redis = await start_redis(directory)
    text = demo_config(simulator) + f'admin: {{audit_log: "{directory / "DECISIONS.log"}"}}\n'
    if redis is not None:
        text += f'redis: {{url: "redis://127.0.0.1:{redis[1]}/0", key_prefix: "demo:"}}\n'
    apps = []
    stats, follow = DemoStats(), _Follow()
    tasks: set[asyncio.Task[None]] = set()
    try:
        for index in range(replicas):
            app = RouteGuardApp(parse_config(text, "<demo>"), rng=random.Random(seed or index))
            await app.start("127.0.0.1", 0)
            apps.append(app)
        urls = [f"http://127.0.0.1:{app.port}/v1/chat/completions" for app in apps]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            def view() -> Group:
                return _view(apps, stats, follow, outage, redis is not None)

            with Live(view(), console=console, refresh_per_second=8) as live:
                number = 0
                deadline = None if duration_s is None else time.monotonic() + duration_s
                while deadline is None or time.monotonic() < deadline:
                    number += 1
                    url = urls[number % len(urls)]  # a round-robin balancer
                    task = asyncio.create_task(
                        _one_request(session, url, number % 3 == 0, stats, number)
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    await asyncio.sleep(1 / rate)
                    _step(apps, simulator, stats, follow, outage)
                    live.update(view())
                if tasks:
                    await asyncio.wait(tasks, timeout=15)
                live.update(view())
    finally:
        for task in tasks:
            task.cancel()
        for app in apps:
            await app.close(drain_timeout_s=1)
        await simulator.stop()
        if redis is not None:
            redis[0].terminate()
            await redis[0].wait()
        shutil.rmtree(directory, ignore_errors=True)
    return stats


def _step(
    apps: list[RouteGuardApp],
    simulator: Simulator,
    stats: DemoStats,
    follow: _Follow,
    outage: Outage | None,
) -> None:
    if outage is None:
        return
    now = time.monotonic()
    elapsed = now - stats.started
    if stats.outage_began is None and elapsed >= outage.start_s:
        stats.outage_began = now
        simulator.set_fault(
            outage.deployment, PACING.model_copy(update={"error_rate": 1.0, "error_status": 503})
        )
    elif stats.outage_ended is None and elapsed >= outage.start_s + outage.length_s:
        stats.outage_ended = now
        simulator.clear_faults(outage.deployment)
    for index, app in enumerate(apps):
        fleet = app.fleet
        state = app.runtimes[outage.deployment].breaker.state
        if stats.outage_began and index not in follow.opened and state is BreakerState.OPEN:
            follow.opened[index] = now
            known = fleet.breakers.known.get(outage.deployment) if fleet is not None else None
            origin = known.record.origin if known is not None and known.record else None
            if fleet is None or origin == fleet.member_id:
                follow.first = index if follow.first is None else follow.first
            elif fleet.breakers.last_lag_s is not None:
                follow.lag_s[index] = fleet.breakers.last_lag_s
    if follow.first is None and follow.opened:
        follow.first = min(follow.opened, key=follow.opened.__getitem__)
