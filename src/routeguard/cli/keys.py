"""Client-key commands: ``routeguard keys hash | list | usage | revoke``.

``hash`` works offline: it makes (or reads) a key and prints the ``sha256:`` hash that goes in
``clients.keys.<name>.key_hash``; the key itself is shown once and stored nowhere. The others
call a running router's admin API.
"""

from __future__ import annotations

import sys
from typing import Annotated

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
from routeguard.cli.common import app

__all__ = ["keys_app"]

keys_app = typer.Typer(help="Client API keys: make hashes, list usage and budgets, revoke.")
app.add_typer(keys_app, name="keys")

DEFAULT_ROUTER = "http://127.0.0.1:8080"


@keys_app.command("hash")
def hash_command(
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a new random key and print it with its hash.")
    ] = False,
) -> None:
    """Print the config hash of a key read from stdin (or of a new key with --generate)."""
    from routeguard.clients.keys import hash_key, key_id, new_key

    if generate:
        key = new_key()
        typer.echo(f"key:      {key}    (give this to the client; it is not stored anywhere)")
    else:
        key = sys.stdin.readline().strip()
        if not key:
            typer.secho("error: no key on stdin (or use --generate)", fg="red", err=True)
            raise typer.Exit(2)
    digest = hash_key(key)
    typer.echo(f"key_hash: {digest}")
    typer.echo(f"key_id:   {key_id(digest)}")


@keys_app.command("list")
def list_command(
    router: RouterOption = DEFAULT_ROUTER,
    token: TokenOption = None,
    timeout: TimeoutOption = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Every configured key with its limits, usage and budget."""
    try:
        with admin_client(router, token, timeout) as client:
            data = client.get("/admin/keys")
    except AdminClientError as exc:
        exit_on_error(exc)
    if as_json:
        print_json(data)
        return
    if not data["enabled"]:
        typer.echo("client keys are off: no clients: section (the router is open)")
        return
    typer.echo(f"{'KEY ID':<13} {'NAME':<20} {'STATE':<8} {'REQ/MIN':>8} {'SPENT':>10} BUDGET")
    for key in data["keys"]:
        budget = key["budget"]
        limit = (
            "-" if budget["budget_usd"] is None else f"${budget['budget_usd']:g}/{budget['period']}"
        )
        state = (
            "revoked" if key["revoked"] else "ANOMALY" if key["spend_rate"]["anomalous"] else "ok"
        )
        typer.echo(
            f"{key['key_id']:<13} {key['name']:<20} {state:<8} "
            f"{key['usage']['requests_last_minute']:>8} ${budget['spent_usd']:>9.4f} {limit}"
        )


@keys_app.command("usage")
def usage_command(
    key_id: Annotated[str, typer.Argument(help="Key id (or name) from `routeguard keys list`.")],
    router: RouterOption = DEFAULT_ROUTER,
    token: TokenOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """One key's usage, budget and spend rate, as JSON."""
    try:
        with admin_client(router, token, timeout) as client:
            print_json(client.get("/admin/keys/usage", {"key_id": key_id}))
    except AdminClientError as exc:
        exit_on_error(exc)


@keys_app.command("revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="Key id (or name) to refuse from now on.")],
    router: RouterOption = DEFAULT_ROUTER,
    token: TokenOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Refuse a key at once (audited). Remove it from clients: to make it permanent."""
    try:
        with admin_client(router, token, timeout) as client:
            data = client.post("/admin/keys/revoke", {"key_id": key_id})
    except AdminClientError as exc:
        exit_on_error(exc)
    typer.echo(f"revoked {data['revoked']} ({data['name']})")
