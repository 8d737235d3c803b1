"""``routeguard demo``: the simulator, a router and steady traffic, with a live view.

Everything runs in one process on free local ports with no API keys, so anyone can watch how
RouteGuard splits traffic before they point it at real providers. The traffic is real: an HTTP
client posts OpenAI-format chat requests (streaming and not) to the router over a socket, and the
router forwards them to the simulator over another.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from routeguard.config.loader import parse_config
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import FaultSpec, Simulator

__all__ = ["DemoStats", "demo_config", "run_demo"]

DEPLOYMENT_HEADER = "x-routeguard-deployment"

# (deployment, provider, simulated model, weight) for the demo's one model group.
DEMO_DEPLOYMENTS: tuple[tuple[str, str, str, float], ...] = (
    ("openai-gpt4-turbo", "openai", "gpt-4-turbo", 60),
    ("azure-gpt4-turbo", "openai", "gpt-4-turbo", 30),
    ("vllm-local-llama-3-1-8b", "vllm", "meta-llama/Llama-3.1-8B-Instruct", 10),
)
DEMO_GROUP = "gpt-4-turbo"


def demo_config(simulator: Simulator) -> str:
    """The demo's configuration as YAML text, the same shape an operator writes."""
    lines = ["routing:", "  strategy: weighted", "  timeout_s: 10", "deployments:"]
    for name, provider, model, _ in DEMO_DEPLOYMENTS:
        api_base = simulator.url(name, "openai")
        lines.append(
            f'  {name}: {{provider: {provider}, model: "{model}", api_base: "{api_base}"}}'
        )
    lines += ["weights:", f"  {DEMO_GROUP}:"]
    lines += [f"    {name}: {weight:g}" for name, _, _, weight in DEMO_DEPLOYMENTS]
    return "\n".join(lines) + "\n"


@dataclass
class DemoStats:
    """What the client side of the demo saw."""

    started: float = field(default_factory=time.monotonic)
    served: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    streams: int = 0

    @property
    def total(self) -> int:
        return sum(self.served.values()) + sum(self.errors.values())

    def record(self, deployment: str, latency_ms: float) -> None:
        self.served[deployment] += 1
        self.latencies_ms.setdefault(deployment, []).append(latency_ms)


async def _one_request(
    session: aiohttp.ClientSession, url: str, stream: bool, stats: DemoStats, number: int
) -> None:
    body = {
        "model": DEMO_GROUP,
        "messages": [{"role": "user", "content": f"Demo request {number}: say something short."}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    started = time.perf_counter()
    try:
        async with session.post(url, json=body) as response:
            payload = await response.read()
            deployment = response.headers.get(DEPLOYMENT_HEADER, "?")
            ok = response.status == 200 and (not stream or payload.rstrip().endswith(b"[DONE]"))
            if b'"error"' in payload and stream:
                ok = False
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.errors[type(exc).__name__] += 1
        return
    if ok:
        stats.streams += stream
        stats.record(deployment, (time.perf_counter() - started) * 1000)
    else:
        stats.errors[f"HTTP {response.status}"] += 1


def _view(stats: DemoStats, weights: dict[str, float], port: int, sim_port: int) -> Group:
    elapsed = time.monotonic() - stats.started
    served_total = sum(stats.served.values()) or 1
    weight_total = sum(weights.values()) or 1
    table = Table(title=f"RouteGuard demo — model group {DEMO_GROUP!r}", expand=False)
    for column in ("deployment", "weight", "target share", "requests", "actual share", "p50 ms"):
        table.add_column(column, justify="left" if column == "deployment" else "right")
    for name, weight in weights.items():
        latencies = stats.latencies_ms.get(name, [])
        table.add_row(
            name,
            f"{weight:g}",
            f"{100 * weight / weight_total:.0f}%",
            str(stats.served[name]),
            f"{100 * stats.served[name] / served_total:.1f}%",
            f"{statistics.median(latencies):.1f}" if latencies else "-",
        )
    errors = sum(stats.errors.values())
    summary = Text(
        f"router http://127.0.0.1:{port}/v1  simulator http://127.0.0.1:{sim_port}   "
        f"{elapsed:5.1f}s  requests {stats.total}  streams {stats.streams}  "
        f"client-visible errors {errors}",
        style="bold red" if errors else "bold green",
    )
    return Group(table, summary)


async def run_demo(
    duration_s: float | None = None,
    rate: float = 20.0,
    seed: int | None = None,
    console: Console | None = None,
) -> DemoStats:
    """Run the demo until ``duration_s`` passes (or forever); returns what the client saw."""
    console = console or Console()
    simulator = Simulator(seed=seed)
    await simulator.start()
    # Provider-like pacing, so the live view shows latency a person would recognise.
    simulator.set_fault("*", FaultSpec(latency_ms=60, jitter_ms=60, chunk_delay_ms=10))
    app = RouteGuardApp(parse_config(demo_config(simulator), "<demo>"), rng=random.Random(seed))
    port = await app.start("127.0.0.1", 0)
    weights = {name: weight for name, _, _, weight in DEMO_DEPLOYMENTS}
    stats = DemoStats()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    tasks: set[asyncio.Task[None]] = set()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            with Live(
                _view(stats, weights, port, simulator.port), console=console, refresh_per_second=4
            ) as live:
                number = 0
                deadline = None if duration_s is None else time.monotonic() + duration_s
                while deadline is None or time.monotonic() < deadline:
                    number += 1
                    task = asyncio.create_task(
                        _one_request(session, url, number % 3 == 0, stats, number)
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    await asyncio.sleep(1 / rate)
                    live.update(_view(stats, weights, port, simulator.port))
                if tasks:
                    await asyncio.wait(tasks, timeout=15)
                live.update(_view(stats, weights, port, simulator.port))
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await app.close(drain_timeout_s=2)
        await simulator.stop()
    console.print(
        f"demo finished: {stats.total} requests ({stats.streams} streamed), "
        f"client-visible errors: {sum(stats.errors.values())}"
        + (f" {dict(stats.errors)}" if stats.errors else "")
    )
    return stats
