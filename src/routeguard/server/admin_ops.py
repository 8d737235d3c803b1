"""Operator actions over the admin API: drain, undrain, probe and rotate-key.

The runbook's section 2 mitigations (emergency weights, "curl each provider", scenario 2's key
fix) as calls a CLI or the console makes; shapes fixed by ADMIN_CONTRACT.md. Each mutation is
audited under the operator's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routeguard.errors import ConfigError
from routeguard.net.server import Request, Response
from routeguard.ops.drain import drain, undrain
from routeguard.resilience import BreakerState
from routeguard.routing.outcome import classify
from routeguard.server.admin_api import AdminError, Route, json_body, json_response

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["OperatorRoutes"]


class OperatorRoutes:
    """``/admin/drain``, ``/admin/undrain``, ``/admin/probe``, ``/admin/deployments/rotate-key``."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self.guard = app.admin_guard

    def table(self) -> dict[str, dict[str, Route]]:
        guard = self.guard
        return {
            "/admin/drain": {"POST": guard(self.drain)},
            "/admin/undrain": {"POST": guard(self.undrain)},
            "/admin/probe": {"POST": guard(self.probe)},
            "/admin/deployments/rotate-key": {"POST": guard(self.rotate_key)},
        }

    async def drain(self, request: Request, operator: str) -> Response:
        body = json_body(request)
        force = body.get("force", False) is True
        return json_response(
            200, drain(self.app, body.get("target"), force=force, operator=operator)
        )

    async def undrain(self, request: Request, operator: str) -> Response:
        body = json_body(request)
        return json_response(200, undrain(self.app, body.get("target"), operator=operator))

    async def probe(self, request: Request, operator: str) -> Response:
        body = json_body(request)
        names = self.app.prober.names()
        target = body.get("deployment")
        if target is not None:
            self._known(target)
            names = [target]
        elif body.get("all") is not True:
            raise AdminError(
                400, 'Body needs "deployment": NAME or "all": true.', "invalid_request_error"
            )
        results = await self.app.prober.probe_many(names)
        return json_response(200, {"results": [r.to_json() for r in results]})

    async def rotate_key(self, request: Request, operator: str) -> Response:
        """Scenario 2 without a restart: re-read the key now, reset the breaker, probe."""
        app = self.app
        name = json_body(request).get("deployment")
        self._known(name)
        assert isinstance(name, str)
        if app.config_path is None:
            raise AdminError(
                409,
                "This router was not started from a config file, so there is no key to re-read.",
                "invalid_request_error",
                "no_config_file",
            )
        try:
            version = app.reload(source=f"rotate-key:{operator}")
        except ConfigError as exc:
            app.audit(
                operator, "rotate_key", DEPLOYMENT=name, RESULT="rejected", REASON=exc.message
            )
            raise AdminError(400, exc.message, "invalid_request_error", "invalid_config") from None
        runtime = app.runtimes.deployments.get(name)
        if runtime is None:
            raise AdminError(
                404,
                f"{name} is no longer configured after the reload.",
                "invalid_request_error",
                "not_found",
            )
        breaker = runtime.breaker
        breaker.reset()
        result, error = await app.prober.probe(name)
        permit = breaker.try_acquire()
        if permit is not None:  # the probe's outcome feeds the breaker like any request's
            breaker.record(permit, classify(error), status=result.status or None)
        state = breaker.state
        app.audit(
            operator,
            "rotate_key",
            DEPLOYMENT=name,
            KEY_SOURCE="api_key_file" if app.config.deployments[name].api_key_file else "config",
            PROBE=result.status,
            BREAKER=state.name.lower(),
            CONFIG_VERSION=version,
        )
        return json_response(
            200,
            {
                "deployment": name,
                "config_version": version,
                "probe": result.to_json(),
                "breaker": state.name.lower(),
                "recovered": result.ok and state is BreakerState.CLOSED,
            },
        )

    def _known(self, name: object) -> None:
        if not isinstance(name, str) or name not in self.app.config.deployments:
            raise AdminError(
                404,
                f"Unknown deployment {name!r} "
                f"(deployments: {', '.join(self.app.config.deployments)}).",
                "invalid_request_error",
                "not_found",
            )
