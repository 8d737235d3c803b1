"""``routeguard drill SCENARIO``: rehearse a runbook scenario against the built-in simulator.

Exit codes: 0 every target met, 1 a target missed, 3 the scenario cannot run here (it names what
it needs, e.g. ``needs redis:``), 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from routeguard.cli.client import JsonOption, print_json
from routeguard.cli.common import app, fail

__all__: list[str] = []

EXIT_SKIPPED = 3


@app.command()
def drill(
    scenario: Annotated[
        str,
        typer.Argument(
            help="provider-outage, redis-pool-exhaustion, key-rotation, memory-leak, vllm-oom"
        ),
    ],
    duration: Annotated[
        str, typer.Option("--duration", help="Load phases: 30s, 2m... (CI: 8s).")
    ] = "30s",
    out: Annotated[
        Path, typer.Option("--out", help="Where reports (JSON + Markdown) are saved.")
    ] = Path("drill-reports"),
    as_json: JsonOption = False,
) -> None:
    """Break something on purpose, measure detection, mitigation and recovery, save a report."""
    import asyncio

    from rich.console import Console
    from rich.markdown import Markdown

    from routeguard.ops.drills import SCENARIOS, run_drill
    from routeguard.ops.durations import parse_duration

    if scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r}; choose from: {', '.join(SCENARIOS)}")
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        fail(f"--duration: {exc}")
    report = asyncio.run(run_drill(scenario, seconds, out / "work"))
    json_path, md_path = report.save(out)
    if as_json:
        print_json({**report.to_json(), "saved": [str(json_path), str(md_path)]})
    else:
        Console().print(Markdown(report.markdown()))
        typer.echo(f"saved {json_path} and {md_path}")
    if report.skipped:
        typer.secho(report.skipped, fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(EXIT_SKIPPED)
    raise typer.Exit(0 if report.passed else 1)
