"""``routeguard status`` and ``routeguard diagnose``: the runbook's assessment, as commands.

Both ask a running router (``--router``/``ROUTEGUARD_URL``) over its admin API and exit with the
incident class, so they can gate scripts: 0 OK, 1 P2, 2 P1, 3 P0, 4 when the router does not
answer at all (the runbook's first P0: "router completely unresponsive"), 5 when it refuses the
call (bad token, admin API disabled).
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from routeguard.cli.client import (
    DEFAULT_URL,
    EXIT_UNREACHABLE,
    AdminClientError,
    JsonOption,
    RouterOption,
    RouterUnreachable,
    TimeoutOption,
    TokenOption,
    admin_client,
    print_json,
)
from routeguard.cli.common import app

__all__ = ["CLASS_EXIT", "EXIT_REFUSED", "diagnose", "status"]

CLASS_EXIT = {"OK": 0, "P2": 1, "P1": 2, "P0": 3}
EXIT_REFUSED = 5
_COLOR = {"OK": "green", "P2": "yellow", "P1": "dark_orange", "P0": "bold red"}
_BREAKER_COLOR = {"closed": "green", "half_open": "yellow", "open": "red"}


def _fetch(path: str, router: str, token: str | None, timeout: float, as_json: bool) -> Any:
    try:
        with admin_client(router, token, timeout) as client:
            return client.get(path)
    except RouterUnreachable as exc:
        _unreachable(exc, as_json)
    except AdminClientError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(EXIT_REFUSED) from None


def _unreachable(exc: RouterUnreachable, as_json: bool) -> NoReturn:
    reason = f"router unresponsive: {exc.message}"
    if as_json:
        print_json({"class": "P0", "reachable": False, "reasons": [reason]})
    else:
        Console(stderr=False).print(f"[bold red]P0[/] {reason}")
    raise typer.Exit(EXIT_UNREACHABLE)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def _header(console: Console, doc: dict[str, Any]) -> None:
    cls = doc["class"]
    replica = doc.get("replica", {})
    console.print(
        f"[{_COLOR.get(cls, 'white')}]{cls}[/] since {doc.get('class_since') or '-'}   "
        f"replica {replica.get('id', '?')}  version {replica.get('version', '?')}  "
        f"config {replica.get('config_version', '?')}  in flight {doc.get('in_flight', 0)}"
    )
    for reason in doc.get("reasons", []):
        console.print(f"  • {escape(reason)}")
    for pending in doc.get("pending", []):
        console.print(f"  [dim]◦ {escape(pending)}[/]")


@app.command()
def status(
    router: RouterOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One screen of router health; exit 0/1/2/3 for OK/P2/P1/P0, 4 if unreachable."""
    doc = _fetch("/admin/status", router, token, timeout, as_json)
    if as_json:
        print_json(doc)
        raise typer.Exit(CLASS_EXIT.get(doc["class"], 3))
    console = Console(width=120)
    _header(console, doc)
    windows = Table(title="Traffic (upstream attempts / client answers)", title_justify="left")
    for col in ("window", "attempts", "errors", "error rate", "p50 ms", "p95 ms", "client 5xx"):
        windows.add_column(col, justify="right")
    for label, w in doc["windows"].items():
        windows.add_row(
            label,
            str(w["requests"]),
            str(w["errors"]),
            _pct(w["error_rate"]),
            _ms(w["p50_ms"]),
            _ms(w["p95_ms"]),
            _pct(w.get("client_error_rate")),
        )
    console.print(windows)
    providers = Table(title="Providers (5m)", title_justify="left")
    for col in ("provider", "attempts", "error rate", "errors by reason", "p95 ms", "breakers"):
        providers.add_column(col)
    for name, p in doc["providers"].items():
        reasons = ", ".join(f"{r} {n}" for r, n in p["errors_by_reason_5m"].items()) or "-"
        open_ = p["breakers_open"]
        providers.add_row(
            name,
            str(p["requests_5m"]),
            _pct(p["error_rate_5m"]),
            reasons,
            _ms(p["p95_ms"]),
            f"[red]{open_} open[/]/{p['deployments']}" if open_ else f"{p['deployments']} closed",
        )
    console.print(providers)
    _deployments(console, doc)
    incident = doc.get("incident")
    if incident:
        console.print(
            f"[bold]Incident {incident['id']}[/] ({incident['class']}) open since "
            f"{incident['opened_at']}: {escape(incident.get('summary') or '')}"
        )
    extra = [k for k in doc if k not in _CORE]
    if extra:
        console.print(f"[dim]Also reported: {', '.join(extra)} (see --json)[/]")
    raise typer.Exit(CLASS_EXIT.get(doc["class"], 3))


_CORE = frozenset(
    {"class", "reasons", "pending", "class_since", "generated_at", "replica", "windows",
     "providers", "groups", "in_flight", "incident"}
)  # fmt: skip


def _deployments(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title="Deployments (5m)", title_justify="left")
    for col in ("group", "deployment", "weight (file)", "share", "error rate", "p95 ms",
                "breaker", "in flight"):  # fmt: skip
        table.add_column(col)
    for group, g in doc["groups"].items():
        for d in g["deployments"]:
            weight = f"{d['weight']:g} ({d['file_weight']:g})"
            if d.get("drained"):
                weight += " [red]drained[/]"
            elif d.get("overridden"):
                weight += " [yellow]override[/]"
            breaker = d["breaker"]
            state = breaker["state"]
            since = f" since {breaker['since']}" if breaker.get("since") else ""
            limit = d.get("max_parallel_requests")
            table.add_row(
                group,
                d["name"],
                weight,
                _pct(d["share_5m"]),
                _pct(d["error_rate_5m"]),
                _ms(d["p95_ms"]),
                f"[{_BREAKER_COLOR.get(state, 'white')}]{state}[/]{since}",
                f"{d['in_flight']}/{limit}" if limit else str(d["in_flight"]),
            )
    console.print(table)


@app.command()
def diagnose(
    router: RouterOption = DEFAULT_URL,
    token: TokenOption = None,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The runbook's diagnostic block in one go, ending with likely causes; exits like status."""
    doc = _fetch("/admin/diagnose", router, token, timeout, as_json)
    if as_json:
        print_json(doc)
        raise typer.Exit(CLASS_EXIT.get(doc["class"], 3))
    console = Console(width=120)
    _header(console, doc)
    errors = Table(title="Errors by provider and reason (15m)", title_justify="left")
    for col in ("provider", "reason", "count"):
        errors.add_column(col)
    for row in doc["errors_by_provider_reason"]:
        errors.add_row(row["provider"], row["reason"], str(row["count"]))
    console.print(errors if doc["errors_by_provider_reason"] else "No upstream errors in 15m.")
    p95 = doc["p95_ms_by_component"]
    console.print(
        f"p95 by component (15m): upstream {_ms(p95['upstream'])} ms, total {_ms(p95['total'])} ms"
        + "".join(
            f"; {name} {_ms(s['p95_ms'])} ms" for name, s in doc["latency_by_provider"].items()
        )
    )
    changes = doc["breaker_changes_1h"]
    console.print(f"[bold]Breaker changes in the last hour:[/] {len(changes)}")
    for c in changes[-15:]:
        console.print(
            f"  {c['ts']} {c['deployment']}: {c['old']} -> {c['new']} ({escape(c['reason'])})"
        )
    console.print("[bold]Top error messages (1h):[/]" if doc["top_errors_1h"] else "")
    for e in doc["top_errors_1h"][:8]:
        console.print(f"  {e['count']:>5} x {e['provider']}/{e['reason']}: {escape(e['message'])}")
    memory = doc.get("memory") or {}
    if memory:
        console.print(
            f"Memory: RSS {memory['rss_mb']} MB ({memory['growth_pct']:+.0f}% over "
            f"{memory['observed_s']} s)"
        )
    for key in ("redis", "fleet"):
        if key in doc:
            console.print(f"[bold]{key}:[/] {escape(str(doc[key]))}")
    versions = doc.get("config_versions", {})
    if len(versions) > 1 or "fleet" in doc:
        console.print(
            "Config version per replica: " + ", ".join(f"{r} {v}" for r, v in versions.items())
        )
    causes = doc["likely_causes"]
    console.print("[bold]Likely causes:[/]" if causes else "[green]No likely cause found.[/]")
    for i, cause in enumerate(causes, 1):
        console.print(f"  {i}. [bold]{cause['scenario']}[/]: {cause['cause']}")
        console.print(f"     evidence: {escape(cause['evidence'])}")
        console.print(f"     next: {escape(cause['action'])}")
    raise typer.Exit(CLASS_EXIT.get(doc["class"], 3))
