"""Rehearsal commands: the provider ``simulate``-or and the live ``demo``."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
import uvloop

from routeguard.cli.common import app, fail

__all__ = ["demo", "simulate"]


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 9000,
    seed: Annotated[int | None, typer.Option(help="Seed for fault injection randomness.")] = None,
    words: Annotated[int, typer.Option(min=1, help="Words per generated answer.")] = 12,
    api_key: Annotated[
        list[str] | None,
        typer.Option(help="Accept only this key, as the real provider would (repeatable)."),
    ] = None,
) -> None:
    """Run the provider simulator (OpenAI, Azure OpenAI and Anthropic wire formats)."""
    from routeguard.simulator import run_simulator

    typer.echo(f"simulator on http://{host}:{port} (control API: /_sim/faults, /_sim/stats)")
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run_simulator(host, port, seed=seed, api_keys=api_key or None, words=words))


@app.command()
def demo(
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    rate: Annotated[float, typer.Option(min=0.5, help="Requests per second to send.")] = 20.0,
    seed: Annotated[int | None, typer.Option(help="Seed for routing randomness.")] = None,
    outage: Annotated[
        str, typer.Option(help="Deployment whose provider fails during the demo.")
    ] = "openai-gpt4-turbo",
    outage_at: Annotated[
        float, typer.Option(help="Seconds into the demo the outage starts.")
    ] = 6.0,
    outage_for: Annotated[float, typer.Option(help="How long the outage lasts, seconds.")] = 10.0,
    no_outage: Annotated[bool, typer.Option("--no-outage", help="Steady traffic only.")] = False,
    replicas: Annotated[
        int, typer.Option(min=1, help="Routers sharing state through a local redis-server.")
    ] = 1,
) -> None:
    """Run the simulator and a router on free local ports, show live traffic and an outage."""
    from routeguard.observability.logs import configure_logging
    from routeguard.ops.demo import DEMO_DEPLOYMENTS, Outage, run_demo

    names = [name for name, *_ in DEMO_DEPLOYMENTS]
    if outage not in names:
        fail(f"--outage must name a demo deployment: {', '.join(names)}")
    scripted = None if no_outage else Outage(outage, outage_at, outage_for)
    # The live view shows breaker states and traffic; log lines would only tear it apart.
    configure_logging("text", level="ERROR")
    if replicas > 1:
        from routeguard.ops.demo_fleet import run_fleet_demo

        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(
                run_fleet_demo(replicas, duration_s=duration, rate=rate, seed=seed, outage=scripted)
            )
        return
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run_demo(duration_s=duration, rate=rate, seed=seed, outage=scripted))
