"""Admin endpoints for client keys: list them with usage and budgets, revoke one live.

``GET /admin/keys`` lists every configured key (by key id and name, never the hash);
``GET /admin/keys/usage?key_id=ID`` shows one; ``POST /admin/keys/revoke {"key_id"}`` refuses
the key from the next request on (audited); ``POST /admin/keys/unrevoke`` undoes it. Without
``redis:`` a revocation lasts until the process restarts (remove the key from ``clients:`` to make
it final); with it, every replica applies it and Redis keeps it (see fleet/client_keys.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from routeguard.clients.guard import KeyState
from routeguard.net.server import Request, Response
from routeguard.server.admin_api import AdminError, Route, json_body, json_response
from routeguard.server.fleet_admin import announce

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["KeyAdminRoutes"]


class KeyAdminRoutes:
    """``/admin/keys...``, behind the shared admin bearer-token guard."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self.guard = app.admin_guard

    def table(self) -> dict[str, dict[str, Route]]:
        guard = self.guard
        return {
            "/admin/keys": {"GET": guard(self.list_keys)},
            "/admin/keys/usage": {"GET": guard(self.usage)},
            "/admin/keys/revoke": {"POST": guard(self.revoke)},
            "/admin/keys/unrevoke": {"POST": guard(self.unrevoke)},
        }

    async def list_keys(self, request: Request, operator: str) -> Response:
        clients = self.app.clients
        keys = [clients.usage(state) for state in clients.keys.values()]
        return json_response(200, {"enabled": clients.enabled, "keys": keys})

    async def usage(self, request: Request, operator: str) -> Response:
        values = parse_qs(request.query).get("key_id") or parse_qs(request.query).get("name")
        if not values:
            raise AdminError(400, "Give ?key_id=ID (or ?name=NAME).", "invalid_request_error")
        return json_response(200, self.app.clients.usage(self._find(values[0])))

    async def revoke(self, request: Request, operator: str) -> Response:
        state = self._find(self._ident(request))
        self.app.clients.revoke(state)
        return json_response(200, await self._audit(operator, "revoke_client_key", state))

    async def unrevoke(self, request: Request, operator: str) -> Response:
        state = self._find(self._ident(request))
        self.app.clients.revoked.discard(state.key_id)
        return json_response(200, await self._audit(operator, "unrevoke_client_key", state))

    async def _audit(self, operator: str, action: str, state: KeyState) -> dict[str, object]:
        """Audit here, then tell the fleet (which persists it and audits once per replica)."""
        fields = {"KEY_ID": state.key_id, "NAME": state.name}
        self.app.audit(operator, action, **fields)
        verb = action.removesuffix("_client_key") + "d"
        answer: dict[str, object] = {verb: state.key_id, "name": state.name}
        answer.update(await announce(self.app, action, operator, [fields], key_id=state.key_id))
        return answer

    @staticmethod
    def _ident(request: Request) -> str:
        body = json_body(request)
        ident = body.get("key_id", body.get("name"))
        if not isinstance(ident, str) or not ident:
            raise AdminError(
                400, 'Body must be {"key_id": "..."} (or {"name": "..."}).', "invalid_request_error"
            )
        return ident

    def _find(self, ident: str) -> KeyState:
        state = self.app.clients.find(ident)
        if state is None:
            raise AdminError(404, f"No client key {ident!r}.", "invalid_request_error", "not_found")
        return state
