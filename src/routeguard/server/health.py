"""Health, readiness and metrics: cheap, unauthenticated, and never calling a provider.

``/health`` answers 200 while the router can route at all (so the runbook's ``curl -f`` fails
exactly when it cannot), with a summary per model group. ``/health/ready`` is what a load
balancer asks: 503 while starting, while draining for shutdown, or when nothing is routable.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from routeguard.net.server import Request, Response
from routeguard.observability.metrics import BREAKER_STATE_NAMES
from routeguard.resilience import BreakerState

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["HealthRoutes"]


class HealthRoutes:
    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app

    def summary(self) -> tuple[bool, dict[str, Any]]:
        """Whether any model group can route now, and the per-group picture."""
        groups: dict[str, Any] = {}
        any_routable = False
        for name, group in self.app.router.groups.items():
            breakers = {}
            routable = []
            for member, weight in zip(group.members, group.weights, strict=True):
                state = member.runtime.breaker.state
                breakers[member.name] = BREAKER_STATE_NAMES[state]
                if weight > 0 and state is not BreakerState.OPEN:
                    routable.append(member.name)
            any_routable = any_routable or bool(routable)
            groups[name] = {"routable": routable, "breakers": breakers}
        return any_routable, groups

    async def health(self, request: Request) -> Response:
        app = self.app
        routable, groups = self.summary()
        body = {
            "status": "ok" if routable else "unavailable",
            "version": app.version,
            "uptime_s": round(time.time() - app.started_at, 3),
            "config_version": app.config_version,
            "draining": app.draining,
            "model_groups": groups,
        }
        if app.fleet is not None:  # degraded Redis never fails health: routing is local
            body["redis"] = app.fleet.health()
        return Response(200 if routable else 503, orjson.dumps(body))

    async def live(self, request: Request) -> Response:
        """Liveness: the process answers, nothing more. ``/health`` is 503 when every breaker is
        open, and a liveness probe on it would restart every replica during a total provider
        outage, wiping what their breakers know exactly when it matters."""
        return Response(200, b'{"status":"alive"}')

    async def ready(self, request: Request) -> Response:
        app = self.app
        reason = None
        if not app.ready:
            reason = "starting"
        elif app.draining:
            reason = "draining"
        elif not self.summary()[0]:
            reason = "no model group has a routable deployment"
        if reason is not None:
            return Response(503, orjson.dumps({"status": "not_ready", "reason": reason}))
        return Response(200, b'{"status":"ready"}')

    async def metrics(self, request: Request) -> Response:
        app = self.app
        app.reporter.refresh(app.router)
        body, content_type = app.metrics.render()
        return Response(200, body, content_type=content_type)
