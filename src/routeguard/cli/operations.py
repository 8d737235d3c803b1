"""Operator actions: ``probe``, ``drain``/``undrain``, ``weights``, ``rotate-key``.

Each is one admin API call (``--router``/``--token`` or ``ROUTEGUARD_URL``/
``ROUTEGUARD_ADMIN_TOKEN``), with a readable table by default and ``--json`` for scripts.
Exit codes: 0 done, 1 refused or unhealthy (a failed probe, a refused drain), 4 unreachable.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from routeguard.cli.client import (
    AdminClientError,
    JsonOption,
    RouterOption,
    TimeoutOption,
    TokenOption,
    admin_client,
    exit_on_error,
    print_json,
)
from routeguard.cli.common import app, fail

__all__ = ["weights_app"]

weights_app = typer.Typer(help="Show, set or clear runtime weight overrides.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


def _call(
    router: str, token: str | None, timeout: float, method: str, path: str, body: Any = None
) -> Any:
    try:
        with admin_client(router, token, timeout) as client:
            return client.request(method, path, body=body)
    except AdminClientError as exc:
        exit_on_error(exc)


def _ms(value: object) -> str:
    return "-" if value is None else f"{float(value):.0f} ms"  # type: ignore[arg-type]


@app.command()
def probe(
    deployment: Annotated[str | None, typer.Argument(help="Deployment to probe.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Probe every deployment.")] = False,
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Send one tiny, timed request straight to each deployment (bypassing routing)."""
    from rich.console import Console
    from rich.table import Table

    if (deployment is None) == (not all_):
        fail("name a DEPLOYMENT or pass --all (not both)")
    body = {"all": True} if all_ else {"deployment": deployment}
    results = _call(router, token, timeout, "POST", "/admin/probe", body)["results"]
    if as_json:
        print_json({"results": results})
    else:
        table = Table("deployment", "provider", "status", "TTFB", "total", "error")
        for r in results:
            style = "green" if r["ok"] else "red"
            table.add_row(
                r["deployment"],
                r["provider"],
                f"[{style}]{r['status'] or 'no answer'}[/]",
                _ms(r["ttfb_ms"]),
                _ms(r["total_ms"]),
                r.get("error") or "",
            )
        Console().print(table)
    raise typer.Exit(0 if all(r["ok"] for r in results) else 1)


@app.command()
def drain(
    target: Annotated[
        str, typer.Argument(help="A deployment, or a provider (all its deployments).")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Drain even the last healthy deployment of a group.")
    ] = False,
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Weight 0 everywhere TARGET appears (a runtime override, audited)."""
    answer = _call(
        router, token, timeout, "POST", "/admin/drain", {"target": target, "force": force}
    )
    _report(answer, "drained", as_json)


@app.command()
def undrain(
    target: Annotated[str, typer.Argument(help="A deployment or provider drained before.")],
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Remove TARGET's overrides: the file's weights apply again."""
    answer = _call(router, token, timeout, "POST", "/admin/undrain", {"target": target})
    _report(answer, "undrained", as_json)


def _report(answer: dict[str, Any], verb: str, as_json: bool) -> None:
    if as_json:
        print_json(answer)
        return
    typer.echo(f"{verb}: {', '.join(answer[verb])}")
    _print_weights(answer["weights"])


def _print_weights(weights: dict[str, dict[str, float]], overrides: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("group", "deployment", "weight", "share")
    for group, members in weights.items():
        total = sum(members.values())
        for name, weight in members.items():
            mark = " (override)" if overrides and name in overrides.get(group, {}) else ""
            share = f"{weight / total:.0%}" if total else "-"
            table.add_row(group, name, f"{weight:g}{mark}", share)
    Console().print(table)


@weights_app.command("show")
def weights_show(
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Effective weights (file, with runtime overrides marked)."""
    answer = _call(router, token, timeout, "GET", "/admin/weights")
    if as_json:
        print_json(answer)
    else:
        _print_weights(answer["weights"], answer["overrides"])


@weights_app.command("set")
def weights_set(
    group: Annotated[str, typer.Argument(help="Model group.")],
    pairs: Annotated[list[str], typer.Argument(help="DEPLOYMENT=WEIGHT ...")],
    force: Annotated[bool, typer.Option("--force", help="Allow every weight 0.")] = False,
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Override weights of GROUP, e.g. ``weights set gpt-4-turbo openai=0 azure=60``."""
    members: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            members[name] = float(value)
        except ValueError:
            fail(f"{pair!r}: expected DEPLOYMENT=WEIGHT")
        if not sep or not name:
            fail(f"{pair!r}: expected DEPLOYMENT=WEIGHT")
    body = {"weights": {group: members}, "force": force}
    answer = _call(router, token, timeout, "PUT", "/admin/weights", body)
    if as_json:
        print_json(answer)
    else:
        _print_weights(answer["weights"])


@weights_app.command("clear")
def weights_clear(
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Drop every runtime override: the file's weights apply again."""
    answer = _call(router, token, timeout, "DELETE", "/admin/weights")
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"cleared overrides of: {', '.join(answer['cleared']) or 'none'}")
        _print_weights(answer["weights"])


@app.command("rotate-key")
def rotate_key(
    deployment: Annotated[str, typer.Argument(help="Deployment whose key file was updated.")],
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Re-read DEPLOYMENT's key now, reset its breaker and probe it (scenario 2)."""
    answer = _call(
        router, token, timeout, "POST", "/admin/deployments/rotate-key", {"deployment": deployment}
    )
    if as_json:
        print_json(answer)
    else:
        probe_result = answer["probe"]
        colour = typer.colors.GREEN if answer["recovered"] else typer.colors.RED
        typer.secho(
            f"{deployment}: config {answer['config_version']}, probe {probe_result['status']} "
            f"in {_ms(probe_result['total_ms'])}, breaker {answer['breaker']}",
            fg=colour,
        )
        if probe_result.get("error"):
            typer.echo(f"probe error: {probe_result['error']}")
    raise typer.Exit(0 if answer["recovered"] else 1)
