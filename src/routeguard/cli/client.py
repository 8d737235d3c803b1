"""The admin HTTP client every operator command shares, and the options that configure it.

Operator commands (status, diagnose, incident, probe, drain, restore...) talk to a running router
over its admin API, so they work the same against a laptop and a remote fleet. They all build
their client here, from ``--router``/``--token`` or ``ROUTEGUARD_URL``/``ROUTEGUARD_ADMIN_TOKEN``,
and see one exception type: :class:`AdminClientError` carries the HTTP status and the router's
OpenAI-shaped error message; :class:`RouterUnreachable` (status 0) means no answer at all, which
the runbook classifies as P0 ("router unresponsive").

Use::

    client = AdminClient("http://127.0.0.1:8080", token)
    status = client.get("/admin/status")
    client.post("/admin/incidents/note", {"text": "drained openai"})
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn

import httpx
import orjson
import typer

__all__ = [
    "DEFAULT_URL",
    "EXIT_UNREACHABLE",
    "AdminClient",
    "AdminClientError",
    "JsonOption",
    "RouterOption",
    "RouterUnreachable",
    "TimeoutOption",
    "TokenOption",
    "admin_client",
    "exit_on_error",
    "print_json",
]

DEFAULT_URL = "http://127.0.0.1:8080"

# Exit code for "the router did not answer": one past P0's 3, so scripts can tell them apart.
EXIT_UNREACHABLE = 4


class AdminClientError(Exception):
    """An admin call that did not succeed: ``status`` is the HTTP status (0 when unreachable)."""

    def __init__(
        self, status: int, message: str, error_type: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code


class RouterUnreachable(AdminClientError):
    """No HTTP answer at all (refused, timed out, reset): the runbook's "router unresponsive"."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"router at {url} is unreachable: {reason}", "unreachable")
        self.url = url


class AdminClient:
    """A small synchronous client for ``/admin/...``: JSON in, JSON out, typed errors."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 10.0):
        self.url = url.rstrip("/")
        headers = {"accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {})

    def put(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("PUT", path, body=body if body is not None else {})

    def delete(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, body=body)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one call; the decoded JSON answer, or an :class:`AdminClientError`."""
        content = orjson.dumps(dict(body)) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        try:
            response = self._http.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            raise RouterUnreachable(self.url, str(exc) or type(exc).__name__) from exc
        try:
            data = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            data = None
        if response.status_code >= 400:
            raise _error_from(response.status_code, data, response.text)
        if data is None and response.content:
            raise AdminClientError(response.status_code, "answer is not JSON", "invalid_response")
        return data


def _error_from(status: int, data: object, text: str) -> AdminClientError:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        return AdminClientError(
            status, str(err.get("message", "")), err.get("type"), err.get("code")
        )
    return AdminClientError(status, text.strip()[:300] or f"HTTP {status}")


RouterOption = Annotated[
    str,
    typer.Option("--router", envvar="ROUTEGUARD_URL", help="Router base URL (env ROUTEGUARD_URL)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ROUTEGUARD_ADMIN_TOKEN",
        help="Admin bearer token (env ROUTEGUARD_ADMIN_TOKEN).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the JSON answer, for scripts.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the router.")
]


def admin_client(router: str, token: str | None, timeout: float = 10.0) -> AdminClient:
    """The client a command builds from its ``--router``/``--token``/``--timeout`` options."""
    return AdminClient(router or DEFAULT_URL, token, timeout)


def exit_on_error(exc: AdminClientError) -> NoReturn:
    """Print the failure on stderr and exit: 4 when unreachable, 1 for a refused call."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(EXIT_UNREACHABLE if isinstance(exc, RouterUnreachable) else 1)


def print_json(data: object) -> None:
    """Indented, key-sorted JSON on stdout (``--json`` output)."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()
