"""``restore``, ``canary`` and ``rollouts``: the runbook's section 4, run by the router.

The command only starts the rollout (``POST /admin/rollouts``) and, if asked, follows it; the
steps, holds, judgements and rollbacks happen inside the router, so closing the terminal does not
stop them. Exit codes: restore 0 completed / 1 rolled back or aborted; canary 0 pass / 1 fail;
2 bad usage; 4 router unreachable.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from routeguard.cli.client import (
    AdminClient,
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

__all__: list[str] = []

_FINAL = {"completed", "rolled_back", "aborted", "passed", "failed"}
_GOOD = {"completed", "passed"}

HoldOption = Annotated[str, typer.Option("--hold", help="Hold per step: 15m, 90s, 1h or seconds.")]
MaxErrorOption = Annotated[
    float,
    typer.Option("--max-error-rate", min=0.0, max=1.0, help="Guard rail: attempt error rate."),
]
MaxP95Option = Annotated[
    float | None, typer.Option("--max-p95-ms", min=0.0, help="Guard rail: p95 attempt latency.")
]
MinRequestsOption = Annotated[
    int, typer.Option("--min-requests", min=0, help="Attempts needed before rates are judged.")
]
GroupOption = Annotated[
    str | None,
    typer.Option("--group", help="Model group (needed if the deployment is in several)."),
]


def _seconds(text: str, option: str) -> float:
    from routeguard.ops.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


def _find(client: AdminClient, rollout_id: str | None, kind: str) -> dict[str, Any] | None:
    rollouts = client.get("/admin/rollouts")["rollouts"]
    for rollout in rollouts:
        if rollout_id is None and rollout["kind"] == kind and rollout["state"] == "running":
            return dict(rollout)
        if rollout["id"] == rollout_id:
            return dict(rollout)
    return None


def _view(rollout: dict[str, Any]) -> Any:
    from rich.table import Table

    figures = rollout.get("figures") or {}
    table = Table(
        title=f"{rollout['kind']} {rollout['id']}: {rollout['deployment']} in {rollout['group']}"
        f" — {rollout['state']}"
    )
    table.add_column("")
    table.add_column(rollout["deployment"])
    table.add_column("peers (baseline)")
    canary, base = figures.get("canary") or {}, figures.get("baseline") or {}

    def cell(side: dict[str, Any], key: str, fmt: str) -> str:
        value = side.get(key)
        return "-" if value is None else format(value, fmt)

    table.add_row("attempts", cell(canary, "requests", "d"), cell(base, "requests", "d"))
    table.add_row("error rate", cell(canary, "error_rate", ".2%"), cell(base, "error_rate", ".2%"))
    table.add_row("p95 ms", cell(canary, "p95_ms", ".0f"), cell(base, "p95_ms", ".0f"))
    steps = rollout["steps"]
    step = rollout["step"]
    progress = " → ".join(
        f"[bold]{s:g}%[/]" if i == step else f"{s:g}%" for i, s in enumerate(steps)
    )
    table.caption = f"share now: {rollout['share_pct']}%   steps: {progress}"
    if rollout["reasons"]:
        table.caption += "\n" + "; ".join(rollout["reasons"])
    return table


def _follow(client: AdminClient, rollout_id: str, as_json: bool, interval: float) -> dict[str, Any]:
    """Poll until the rollout ends; live view unless ``--json``. Ctrl-C leaves it running."""
    from rich.console import Console
    from rich.live import Live

    rollout = _find(client, rollout_id, "")
    if rollout is None:
        fail(f"no rollout {rollout_id}")
    if as_json:
        while rollout["state"] not in _FINAL:
            time.sleep(interval)
            rollout = _find(client, rollout_id, "") or rollout
        return rollout
    console = Console()
    try:
        with Live(_view(rollout), console=console, refresh_per_second=4) as live:
            while rollout["state"] not in _FINAL:
                time.sleep(interval)
                rollout = _find(client, rollout_id, "") or rollout
                live.update(_view(rollout))
    except KeyboardInterrupt:
        console.print(f"stopped watching; {rollout_id} keeps running in the router")
        raise typer.Exit(0) from None
    for event in rollout["events"][-6:]:
        console.print(f"{event['ts']}  {event['event']}")
    return rollout


def _start(client: AdminClient, body: dict[str, Any]) -> dict[str, Any]:
    return dict(client.post("/admin/rollouts", body))


@app.command()
def restore(
    deployment: Annotated[str | None, typer.Argument(help="Deployment to bring back.")] = None,
    steps: Annotated[
        str, typer.Option("--steps", help="Shares in percent, rising.")
    ] = "10,25,50,100",
    hold: HoldOption = "15m",
    max_error_rate: MaxErrorOption = 0.02,
    max_p95_ms: MaxP95Option = None,
    min_requests: MinRequestsOption = 10,
    group: GroupOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the rollout live.")] = False,
    rollout_id: Annotated[str | None, typer.Option("--id", help="Watch this rollout.")] = None,
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Raise DEPLOYMENT's share step by step, rolling back by itself if a guard rail breaks.

    Without DEPLOYMENT, ``--watch`` follows the running restore.
    """
    try:
        share_steps = [float(s) for s in steps.split(",") if s.strip()]
    except ValueError:
        fail(f"--steps {steps!r}: expected comma-separated percentages like 10,25,50,100")
    try:
        with admin_client(router, token, timeout) as client:
            if deployment is None:
                if not watch:
                    fail("name a DEPLOYMENT to restore, or pass --watch to follow a running one")
                found = _find(client, rollout_id, "restore")
                if found is None:
                    fail("no restore is running")
                rollout = _follow(client, found["id"], as_json, 0.5)
            else:
                body: dict[str, Any] = {
                    "kind": "restore",
                    "deployment": deployment,
                    "steps": share_steps,
                    "hold_s": _seconds(hold, "--hold"),
                    "max_error_rate": max_error_rate,
                    "max_p95_ms": max_p95_ms,
                    "min_requests": min_requests,
                }
                if group is not None:
                    body["group"] = group
                rollout = _start(client, body)
                if not watch:
                    if as_json:
                        print_json(rollout)
                    else:
                        typer.echo(
                            f"restore {rollout['id']} started: {deployment} in {rollout['group']}, "
                            f"steps {steps}, hold {hold}; follow with: routeguard restore --watch"
                        )
                    return
                rollout = _follow(client, rollout["id"], as_json, 0.5)
    except AdminClientError as exc:
        exit_on_error(exc)
    _verdict(rollout, as_json)


@app.command()
def canary(
    deployment: Annotated[str, typer.Argument(help="Deployment to send a share of traffic to.")],
    traffic_pct: Annotated[
        float, typer.Option("--traffic-pct", min=0.1, max=99.0, help="Share of the group, %.")
    ] = 10.0,
    duration: Annotated[str, typer.Option("--duration", help="15m, 90s, 1h or seconds.")] = "15m",
    max_error_rate: MaxErrorOption = 0.02,
    max_p95_ms: MaxP95Option = None,
    min_requests: MinRequestsOption = 10,
    group: GroupOption = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the verdict.")] = True,
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Send DEPLOYMENT a share of live traffic for a while; pass or fail against guard rails."""
    body: dict[str, Any] = {
        "kind": "canary",
        "deployment": deployment,
        "traffic_pct": traffic_pct,
        "duration_s": _seconds(duration, "--duration"),
        "max_error_rate": max_error_rate,
        "max_p95_ms": max_p95_ms,
        "min_requests": min_requests,
    }
    if group is not None:
        body["group"] = group
    try:
        with admin_client(router, token, timeout) as client:
            rollout = _start(client, body)
            if not wait:
                if as_json:
                    print_json(rollout)
                else:
                    typer.echo(f"canary {rollout['id']} started ({traffic_pct:g}% for {duration})")
                return
            rollout = _follow(client, rollout["id"], as_json, 0.5)
    except AdminClientError as exc:
        exit_on_error(exc)
    _verdict(rollout, as_json)


@app.command()
def rollouts(
    abort: Annotated[str | None, typer.Option("--abort", help="Abort this rollout id.")] = None,
    router: RouterOption = "http://127.0.0.1:8080",
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """List the router's rollouts (running first), or abort one."""
    try:
        with admin_client(router, token, timeout) as client:
            if abort is not None:
                answer: Any = client.delete("/admin/rollouts", {"id": abort})
            else:
                answer = client.get("/admin/rollouts")
    except AdminClientError as exc:
        exit_on_error(exc)
    if as_json:
        print_json(answer)
        return
    items = [answer] if abort is not None else answer["rollouts"]
    for r in items:
        typer.echo(
            f"{r['id']}  {r['kind']:<7} {r['deployment']:<28} {r['state']:<11} "
            f"share {r['share_pct']}%  {'; '.join(r['reasons'])}"
        )


def _verdict(rollout: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(rollout)
    else:
        from rich.console import Console

        console = Console()
        console.print(_view(rollout))
        good = rollout["state"] in _GOOD
        word = {"completed": "RESTORED", "passed": "PASS", "failed": "FAIL"}.get(
            rollout["state"], rollout["state"].upper().replace("_", " ")
        )
        console.print(f"[{'green' if good else 'red'}]verdict: {word}[/]")
        for reason in rollout["reasons"]:
            console.print(f"  - {reason}")
    raise typer.Exit(0 if rollout["state"] in _GOOD else 1)
