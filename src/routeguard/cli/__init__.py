"""The ``routeguard`` command: one typer app, one module per area of the runbook.

Each module under ``routeguard.cli`` registers its commands on :data:`app` when imported; the
imports below are the whole table of contents. Command bodies import their subsystem lazily so
``routeguard --help`` stays fast.
"""

from __future__ import annotations

# Importing a module registers its commands (typer decorators run at import time).
from routeguard.cli import drills as _drills  # noqa: F401
from routeguard.cli import incident as _incident  # noqa: F401
from routeguard.cli import keys as _keys  # noqa: F401
from routeguard.cli import operations as _operations  # noqa: F401
from routeguard.cli import rollouts as _rollouts  # noqa: F401
from routeguard.cli import serving as _serving  # noqa: F401
from routeguard.cli import simulation as _simulation  # noqa: F401
from routeguard.cli import status as _status  # noqa: F401
from routeguard.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app(prog_name="routeguard")
