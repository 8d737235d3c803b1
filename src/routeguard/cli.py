"""The ``routeguard`` command."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
import uvloop

from routeguard.config.loader import load_config
from routeguard.errors import ConfigError

__all__ = ["app", "main"]

app = typer.Typer(
    help="RouteGuard: an OpenAI-compatible LLM model router with the outage runbook built in.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file.")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def serve(
    config: ConfigOption,
    host: Annotated[str | None, typer.Option(help="Listen address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: server.port).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes sharing the port.")] = 1,
    log_format: Annotated[
        str, typer.Option(help="Log lines as 'json' (for machines) or 'text' (for humans).")
    ] = "json",
) -> None:
    """Serve the OpenAI-compatible API. SIGHUP reloads the config; SIGTERM drains, then exits."""
    from routeguard.server.runner import serve as run

    if log_format not in ("json", "text"):
        _fail("--log-format must be json or text")
    try:
        run(config, host, port, workers, "json" if log_format == "json" else "text")
    except ConfigError as exc:
        _fail(str(exc))


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="YAML configuration file.")]) -> None:
    """Validate a configuration file without serving it."""
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        _fail(str(exc))
        return
    groups = ", ".join(f"{name} ({len(members)})" for name, members in loaded.weights.items())
    typer.echo(f"{config}: OK — {len(loaded.deployments)} deployments; model groups: {groups}")


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 9000,
    seed: Annotated[int | None, typer.Option(help="Seed for fault injection randomness.")] = None,
) -> None:
    """Run the provider simulator (OpenAI, Azure OpenAI and Anthropic wire formats)."""
    from routeguard.simulator import run_simulator

    typer.echo(f"simulator on http://{host}:{port} (control API: /_sim/faults, /_sim/stats)")
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run_simulator(host, port, seed=seed))


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
) -> None:
    """Run the simulator and a router on free local ports, show live traffic and an outage."""
    from routeguard.observability.logs import configure_logging
    from routeguard.ops.demo import DEMO_DEPLOYMENTS, Outage, run_demo

    names = [name for name, *_ in DEMO_DEPLOYMENTS]
    if outage not in names:
        _fail(f"--outage must name a demo deployment: {', '.join(names)}")
    scripted = None if no_outage else Outage(outage, outage_at, outage_for)
    # The live view shows breaker states and traffic; log lines would only tear it apart.
    configure_logging("text", level="ERROR")
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run_demo(duration_s=duration, rate=rate, seed=seed, outage=scripted))


def main() -> None:
    app(prog_name="routeguard")


if __name__ == "__main__":
    main()
