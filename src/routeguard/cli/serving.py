"""Serving commands: ``serve`` and ``check-config``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvloop

from routeguard.cli.common import app, fail
from routeguard.config.loader import load_config
from routeguard.errors import ConfigError

if TYPE_CHECKING:
    from routeguard.observability.logs import LogFormat

__all__ = ["check_config", "serve"]


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML configuration file. Without one, RouteGuard serves the built-in simulator "
            "config (examples/simulator.yaml) with a simulator of its own: no API keys needed.",
        ),
    ] = None,
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
        fail("--log-format must be json or text")
    form: LogFormat = "json" if log_format == "json" else "text"
    if config is None:
        _serve_embedded(host, port, workers, form)
        return
    try:
        run(config, host, port, workers, form)
    except ConfigError as exc:
        fail(str(exc))


def _serve_embedded(host: str | None, port: int | None, workers: int, form: LogFormat) -> None:
    from routeguard.observability.logs import configure_logging
    from routeguard.server.embedded import serve_embedded

    if workers > 1:
        fail("--workers needs --config: the built-in simulator runs inside one process")
    configure_logging(form)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(serve_embedded(host, port, log_format=form))
    except ConfigError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen: {exc.strerror or exc} (is port {port or 8080} taken? try --port)")


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="YAML configuration file.")]) -> None:
    """Validate a configuration file without serving it."""
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    groups = ", ".join(f"{name} ({len(members)})" for name, members in loaded.weights.items())
    typer.echo(f"{config}: OK — {len(loaded.deployments)} deployments; model groups: {groups}")
