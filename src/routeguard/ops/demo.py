"""``routeguard demo``: the simulator, a router, steady traffic and a scripted outage, live.

Everything runs in one process on free local ports with no API keys, so anyone can watch how
RouteGuard splits traffic across OpenAI, Azure OpenAI and Anthropic deployments, and what it does
when one of them goes down: the breaker opens, traffic shifts to the others, retries hide the
failures from clients, and traffic returns once the provider recovers. The traffic is real: an
HTTP client posts OpenAI-format chat requests (streaming and not) to the router over a socket,
and the router forwards them to the simulator over another.
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
from routeguard.resilience import BreakerState
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import FaultSpec, Simulator

__all__ = ["DemoStats", "Outage", "demo_config", "run_demo"]

DEPLOYMENT_HEADER = "x-routeguard-deployment"
DEMO_GROUP = "gpt-4-turbo"

# (deployment, provider, provider model, weight): the runbook's gpt-4-turbo group.
DEMO_DEPLOYMENTS: tuple[tuple[str, str, str, float], ...] = (
    ("openai-gpt4-turbo", "openai", "gpt-4-turbo", 60),
    ("azure-gpt4-turbo", "azure", "gpt-4-turbo", 30),
    ("anthropic-claude-3-opus", "anthropic", "claude-3-opus-20240229", 10),
)
# Provider-like pacing, so the live view shows latency a person would recognise.
PACING = FaultSpec(latency_ms=60, jitter_ms=60, chunk_delay_ms=10)
_STATE_STYLE = {
    BreakerState.CLOSED: ("closed", "green"),
    BreakerState.HALF_OPEN: ("half-open", "yellow"),
    BreakerState.OPEN: ("OPEN", "bold red"),
}


def demo_config(simulator: Simulator) -> str:
    """The demo's configuration as YAML text, the same shape an operator writes.

    Breaker settings are quicker than production defaults so an outage plays out in seconds.
    """
    lines = [
        "routing:",
        "  strategy: weighted",
        "  timeout_s: 10",
        "  num_retries: 2",
        "  retry_backoff_s: 0.01",
        "  circuit_breaker_error_rate: 0.5",
        "  circuit_breaker_window_s: 5",
        "  circuit_breaker_min_requests: 5",
        "  cooldown_s: 4",
        "deployments:",
    ]
    for name, provider, model, _ in DEMO_DEPLOYMENTS:
        api_base = simulator.url(name, provider)
        lines.append(
            f'  {name}: {{provider: {provider}, model: "{model}", api_base: "{api_base}", '
            'api_key: "demo-key"}'
        )
    lines += ["weights:", f"  {DEMO_GROUP}:"]
    lines += [f"    {name}: {weight:g}" for name, _, _, weight in DEMO_DEPLOYMENTS]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outage:
    """A scripted provider outage: ``deployment`` answers 503 from ``start_s`` for ``length_s``."""

    deployment: str
    start_s: float = 6.0
    length_s: float = 10.0


@dataclass
class DemoStats:
    """What the client side of the demo saw, and how the outage played out."""

    started: float = field(default_factory=time.monotonic)
    served: Counter[str] = field(default_factory=Counter)
    # Requests served while the scripted outage ran (which is why "actual" drifts from "target").
    served_in_outage: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    streams: int = 0
    outage_began: float | None = None
    outage_ended: float | None = None
    breaker_opened: float | None = None
    recovered: float | None = None

    @property
    def total(self) -> int:
        return sum(self.served.values()) + sum(self.errors.values())

    @property
    def client_errors(self) -> int:
        return sum(self.errors.values())

    def record(self, deployment: str, latency_ms: float) -> None:
        self.served[deployment] += 1
        if self.outage_began is not None and self.outage_ended is None:
            self.served_in_outage[deployment] += 1
        self.latencies_ms.setdefault(deployment, []).append(latency_ms)


async def _one_request(
    session: aiohttp.ClientSession, url: str, stream: bool, stats: DemoStats, number: int
) -> None:
    body: dict[str, object] = {
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
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.errors[type(exc).__name__] += 1
        return
    broken_stream = stream and (b'data: {"error"' in payload or b"[DONE]" not in payload)
    if status != 200 or broken_stream:
        stats.errors[f"HTTP {status}" if status != 200 else "broken stream"] += 1
        return
    stats.streams += stream
    stats.record(deployment, (time.perf_counter() - started) * 1000)


class _Scenario:
    """Drives the scripted outage and notes when the breaker opened and when traffic recovered."""

    def __init__(self, outage: Outage | None, simulator: Simulator, app: RouteGuardApp) -> None:
        self.outage = outage
        self.simulator = simulator
        self.app = app

    def step(self, stats: DemoStats) -> None:
        outage = self.outage
        if outage is None:
            return
        now = time.monotonic()
        elapsed = now - stats.started
        if stats.outage_began is None and elapsed >= outage.start_s:
            stats.outage_began = now
            failing = PACING.model_copy(update={"error_rate": 1.0, "error_status": 503})
            self.simulator.set_fault(outage.deployment, failing)
        elif stats.outage_ended is None and elapsed >= outage.start_s + outage.length_s:
            stats.outage_ended = now
            self.simulator.clear_faults(outage.deployment)
        state = self.app.runtimes[outage.deployment].breaker.state
        if stats.outage_began and stats.breaker_opened is None and state is BreakerState.OPEN:
            stats.breaker_opened = now
        if stats.outage_ended and stats.recovered is None and state is BreakerState.CLOSED:
            stats.recovered = now


def _view(
    stats: DemoStats,
    weights: dict[str, float],
    app: RouteGuardApp,
    sim_port: int,
    outage: Outage | None,
) -> Group:
    elapsed = time.monotonic() - stats.started
    served_total = sum(stats.served.values()) or 1
    weight_total = sum(weights.values()) or 1
    table = Table(title=f"RouteGuard demo — model group {DEMO_GROUP!r}", expand=False)
    for column in ("deployment", "weight", "target", "requests", "actual", "p50 ms", "breaker"):
        table.add_column(column, justify="left" if column in ("deployment", "breaker") else "right")
    for name, weight in weights.items():
        latencies = stats.latencies_ms.get(name, [])[-200:]
        label, style = _STATE_STYLE[app.runtimes[name].breaker.state]
        table.add_row(
            name,
            f"{weight:g}",
            f"{100 * weight / weight_total:.0f}%",
            str(stats.served[name]),
            f"{100 * stats.served[name] / served_total:.1f}%",
            f"{statistics.median(latencies):.0f}" if latencies else "-",
            Text(label, style=style),
        )
    phase = ""
    if outage is not None:
        if stats.outage_began is None:
            phase = f"outage of {outage.deployment} at {outage.start_s:.0f}s"
        elif stats.outage_ended is None:
            phase = f"OUTAGE: {outage.deployment} answers 503 (its share goes to the others)"
        else:
            phase = f"{outage.deployment} is back"
    summary = Text(
        f"router http://127.0.0.1:{app.port}/v1  simulator http://127.0.0.1:{sim_port}  "
        f"{elapsed:5.1f}s  requests {stats.total}  streams {stats.streams}  "
        f"client-visible errors {stats.client_errors}  {phase}",
        style="bold red" if stats.client_errors else "bold green",
    )
    return Group(table, summary)


def _split_note(stats: DemoStats, outage: Outage, weights: dict[str, float]) -> str:
    """Why "actual" differs from "target": the failing deployment served nothing while it was
    out, so its share went to the others; outside the outage the split follows the weights."""
    during = sum(stats.served_in_outage.values())
    outside = {name: stats.served[name] - stats.served_in_outage[name] for name in weights}
    outside_total = sum(outside.values()) or 1
    weight_total = sum(weights.values()) or 1
    failing = stats.served_in_outage[outage.deployment]
    shares = "/".join(f"{100 * outside[n] / outside_total:.0f}" for n in weights)
    targets = "/".join(f"{100 * w / weight_total:.0f}" for w in weights.values())
    return (
        f"traffic split: actual share differs from target because {outage.deployment} was out: "
        f"it served {failing} of {during} requests ({100 * failing / (during or 1):.0f}%) during "
        f"the outage, the others took its share. Outside the outage the split was {shares}% "
        f"(target {targets}%, {' / '.join(weights)})."
    )


def _report(stats: DemoStats, outage: Outage | None, weights: dict[str, float]) -> str:
    lines = [
        f"demo finished: {stats.total} requests ({stats.streams} streamed), "
        f"client-visible errors: {stats.client_errors}"
        + (f" {dict(stats.errors)}" if stats.errors else "")
    ]
    if outage is not None and stats.outage_began is not None:
        if stats.breaker_opened is not None:
            lines.append(
                f"outage of {outage.deployment}: breaker opened "
                f"{stats.breaker_opened - stats.outage_began:.1f}s after it began"
            )
        if stats.outage_ended is not None and stats.recovered is not None:
            lines.append(
                f"recovery: breaker closed {stats.recovered - stats.outage_ended:.1f}s after "
                "the provider came back"
            )
        elif stats.outage_ended is not None:
            lines.append("recovery: the breaker had not closed again when the demo ended")
        lines.append(_split_note(stats, outage, weights))
    return "\n".join(lines)


async def run_demo(
    duration_s: float | None = None,
    rate: float = 20.0,
    seed: int | None = None,
    outage: Outage | None = None,
    console: Console | None = None,
) -> DemoStats:
    """Run the demo until ``duration_s`` passes (or forever); returns what the client saw."""
    console = console or Console()
    simulator = Simulator(seed=seed)
    await simulator.start()
    simulator.set_fault("*", PACING)
    app = RouteGuardApp(parse_config(demo_config(simulator), "<demo>"), rng=random.Random(seed))
    await app.start("127.0.0.1", 0)
    scenario = _Scenario(outage, simulator, app)
    weights = {name: weight for name, _, _, weight in DEMO_DEPLOYMENTS}
    stats = DemoStats()
    url = f"http://127.0.0.1:{app.port}/v1/chat/completions"
    tasks: set[asyncio.Task[None]] = set()

    def view() -> Group:
        return _view(stats, weights, app, simulator.port, outage)

    try:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            with Live(view(), console=console, refresh_per_second=4) as live:
                number = 0
                deadline = None if duration_s is None else time.monotonic() + duration_s
                while deadline is None or time.monotonic() < deadline:
                    number += 1
                    request = _one_request(session, url, number % 3 == 0, stats, number)
                    task = asyncio.create_task(request)
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    await asyncio.sleep(1 / rate)
                    scenario.step(stats)
                    live.update(view())
                if tasks:
                    await asyncio.wait(tasks, timeout=15)
                live.update(view())
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await app.close(drain_timeout_s=2)
        await simulator.stop()
    console.line()
    console.print(_report(stats, outage, weights))
    return stats
