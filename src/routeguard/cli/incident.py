"""``routeguard incident open|note|resolve|report``: the runbook's documentation step.

The router keeps the incident while it runs (opened automatically on P1/P0, or by hand here);
``resolve`` makes the router write the DECISIONS.log line in the runbook's field order and the
report in its template, under ``incidents.reports_dir`` on the router's host. ``report`` fetches
a report (Markdown and chart) to read or to save locally.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from routeguard.cli.client import (
    DEFAULT_URL,
    AdminClientError,
    JsonOption,
    RouterOption,
    TimeoutOption,
    TokenOption,
    admin_client,
    exit_on_error,
    print_json,
)
from routeguard.cli.common import app

__all__ = ["incident_app"]

incident_app = typer.Typer(help="Open, note, resolve and report incidents.", no_args_is_help=True)
app.add_typer(incident_app, name="incident")


def _call(
    method: str,
    path: str,
    router: str,
    token: str | None,
    timeout: float,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> Any:
    try:
        with admin_client(router, token, timeout) as client:
            return client.request(method, path, body=body, params=params)
    except AdminClientError as exc:
        exit_on_error(exc)


def _show(incident: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(incident)
        return
    console = Console(width=120)
    state = "resolved" if incident.get("resolved_at") else "open"
    console.print(
        f"[bold]{incident['id']}[/] {incident['class']} ({state}), opened {incident['opened_at']}"
        f" by {incident.get('opened_by', '?')}"
    )
    if incident.get("mttr_minutes") is not None and incident.get("resolved_at"):
        console.print(f"MTTR {incident['mttr_minutes']}m")
    for event in incident.get("timeline", []):
        console.print(f"  {event['ts']}  {escape(event['event'])}")
    if incident.get("decision_line"):
        console.print(f"DECISIONS.log: {escape(incident['decision_line'])}")
    if incident.get("report_path"):
        console.print(f"Report: {incident['report_path']}")


@incident_app.command("open")
def open_(
    incident_id: Annotated[str | None, typer.Option("--id", help="Incident id.")] = None,
    cls: Annotated[
        str | None, typer.Option("--class", help="P0, P1 or P2 (default: current class).")
    ] = None,
    summary: Annotated[str, typer.Option(help="One line: what is wrong.")] = "",
    router: RouterOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Open an incident by hand (P1/P0 classes open one automatically)."""
    body: dict[str, Any] = {"summary": summary}
    if incident_id:
        body["id"] = incident_id
    if cls:
        body["class"] = cls
    _show(_call("POST", "/admin/incidents/open", router, token, timeout, body), as_json)


@incident_app.command()
def note(
    text: Annotated[str, typer.Argument(help="What happened or what you did.")],
    router: RouterOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Add a line to the open incident's timeline."""
    body = {"text": text}
    _show(_call("POST", "/admin/incidents/note", router, token, timeout, body), as_json)


@incident_app.command()
def resolve(
    cause: Annotated[str, typer.Option(help="Root cause (CAUSE= in DECISIONS.log).")],
    impact: Annotated[str, typer.Option(help="Impact description (IMPACT=).")],
    prevention: Annotated[str, typer.Option(help="Prevention measures for the report.")] = "",
    router: RouterOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Resolve the open incident: the runbook's DECISIONS.log line and report are written."""
    body = {"cause": cause, "impact": impact, "prevention": prevention}
    _show(_call("POST", "/admin/incidents/resolve", router, token, timeout, body), as_json)


@incident_app.command("list")
def list_(
    router: RouterOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The open incident and the recent ones."""
    data = _call("GET", "/admin/incidents", router, token, timeout)
    if as_json:
        print_json(data)
        return
    console = Console(width=120)
    if data["open"] is None and not data["recent"]:
        console.print("No incidents.")
    for incident in ([data["open"]] if data["open"] else []) + data["recent"]:
        state = "resolved" if incident.get("resolved_at") else "OPEN"
        mttr = incident.get("mttr_minutes")
        console.print(
            f"{incident['id']}  {incident['worst_class']}  {state}  opened {incident['opened_at']}"
            + (f"  MTTR {mttr}m" if mttr is not None and incident.get("resolved_at") else "")
        )


@incident_app.command()
def report(
    incident_id: Annotated[
        str | None, typer.Argument(help="Incident id (default: the open or the last one).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Save NAME.md and NAME.png in this directory.")
    ] = None,
    router: RouterOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Print (or save) an incident's report in the runbook's template, with its chart."""
    params = {"id": incident_id} if incident_id else None
    data = _call("GET", "/admin/incidents/report", router, token, timeout, params=params)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        name = data.get("name") or f"router_incident_{data['id']}"
        (out / f"{name}.md").write_text(data["markdown"], encoding="utf-8")
        if data.get("chart_png_base64"):
            (out / f"{name}.png").write_bytes(base64.b64decode(data["chart_png_base64"]))
        data["saved"] = str(out / f"{name}.md")
    if as_json:
        print_json(data)
    elif out is not None:
        typer.echo(f"saved {data['saved']} and its chart")
    else:
        typer.echo(data["markdown"])
