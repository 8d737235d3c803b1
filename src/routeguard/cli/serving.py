"""Serving commands: ``serve`` and ``check-config``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from routeguard.cli.common import ConfigOption, app, fail
from routeguard.config.loader import load_config
from routeguard.errors import ConfigError

__all__ = ["check_config", "serve"]


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
        fail("--log-format must be json or text")
    try:
        run(config, host, port, workers, "json" if log_format == "json" else "text")
    except ConfigError as exc:
        fail(str(exc))


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="YAML configuration file.")]) -> None:
    """Validate a configuration file without serving it."""
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    groups = ", ".join(f"{name} ({len(members)})" for name, members in loaded.weights.items())
    typer.echo(f"{config}: OK — {len(loaded.deployments)} deployments; model groups: {groups}")
