"""What every ``routeguard`` command module shares: the typer app and how to fail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

__all__ = ["ConfigOption", "app", "fail"]

app = typer.Typer(
    help="RouteGuard: an OpenAI-compatible LLM model router with the outage runbook built in.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
