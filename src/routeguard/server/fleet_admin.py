"""``GET /admin/fleet`` and the fleet half of every admin mutation (``acknowledged_by``).

Mutations are applied locally first, exactly as without a fleet, then announced: the answer
waits up to a second for the other live replicas to apply the action and says how many did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routeguard.net.server import Request, Response
from routeguard.server.admin_api import Route, json_response

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["FleetAdminRoutes", "announce"]


async def announce(
    app: RouteGuardApp,
    action: str,
    operator: str,
    audit: list[dict[str, str]],
    *,
    deployment: str | None = None,
    key_id: str | None = None,
) -> dict[str, int]:
    """Broadcast an applied admin action; ``{"acknowledged_by": n}``, or ``{}`` with no fleet."""
    if app.fleet is None:
        return {}
    acked = await app.fleet.broadcast(action, operator, audit, deployment=deployment, key_id=key_id)
    return {"acknowledged_by": acked}


class FleetAdminRoutes:
    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self.guard = app.admin_guard

    def table(self) -> dict[str, dict[str, Route]]:
        return {"/admin/fleet": {"GET": self.guard(self.fleet)}}

    async def fleet(self, request: Request, operator: str) -> Response:
        fleet = self.app.fleet
        if fleet is None:
            return json_response(200, {"members": [], "redis": None, "configured": False})
        section = fleet.status_section()
        return json_response(
            200,
            {
                "configured": True,
                "id": section["id"],
                "members": section["members"],
                "redis": section["redis"],
                "sync_lag_s": section["sync_lag_s"],
            },
        )
