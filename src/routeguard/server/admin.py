"""The admin API: the runbook's manual actions as authenticated HTTP calls.

Every call needs ``Authorization: Bearer <token>`` with a token from ``admin.tokens``; tokens are
compared in constant time, and the operator's *name* (never the token) is what logs and the
decisions log record. With no token configured, everything here answers 403.

Weights: the file's ``weights`` are the baseline; ``PUT /admin/weights`` sets runtime overrides
per model group on top of them. The effective weight of a deployment is its override if its group
has one, else the file's. Overrides last until ``DELETE /admin/weights`` clears them, or until a
reload changes that group's weights in the file (the newer intent wins). ``GET /admin/weights``
shows all three: file, overrides and effective.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from routeguard.errors import ConfigError, InvalidRequestError
from routeguard.net.server import Request, Response
from routeguard.observability.metrics import BREAKER_STATE_NAMES
from routeguard.server.admin_api import (
    AdminError,
    Route,
    json_body,
    json_response,
)
from routeguard.server.fleet_admin import announce

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["AdminError", "AdminRoutes"]

log = logging.getLogger("routeguard.admin")


class AdminRoutes:
    """``/admin/...`` routes, each wrapped in authentication."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self.guard = app.admin_guard

    def table(self) -> dict[str, dict[str, Route]]:
        guard = self.guard
        return {
            "/admin/circuit-breaker/reset": {"POST": guard(self.reset_breakers)},
            "/admin/deployments": {"GET": guard(self.deployments)},
            "/admin/weights": {
                "GET": guard(self.get_weights),
                "PUT": guard(self.put_weights),
                "DELETE": guard(self.clear_weights),
            },
            "/admin/config": {"GET": guard(self.get_config)},
            "/admin/config/reload": {"POST": guard(self.reload)},
        }

    # -- breakers ----------------------------------------------------------------------------
    async def reset_breakers(self, request: Request, operator: str) -> Response:
        body = json_body(request)
        target = body.get("deployment")
        runtimes = self.app.runtimes.deployments
        if target is not None:
            if not isinstance(target, str) or target not in runtimes:
                raise AdminError(404, f"Unknown deployment {target!r}.", "invalid_request_error")
            names = [target]
        else:
            names = list(runtimes)
        for name in names:
            runtimes[name].breaker.reset()
        self.app.audit(operator, "circuit_breaker_reset", DEPLOYMENT=target or "all")
        fleet = await announce(
            self.app,
            "circuit_breaker_reset",
            operator,
            [{"DEPLOYMENT": target or "all"}],
            deployment=target,
        )
        return json_response(200, {"reset": names, **fleet})

    async def deployments(self, request: Request, operator: str) -> Response:
        app = self.app
        effective = app.effective_weights()
        out = []
        for name, runtime in app.runtimes.deployments.items():
            snap = runtime.breaker.snapshot()
            retry_at = runtime.breaker.retry_at()
            now = app.clock()
            config = app.config.deployments[name]
            out.append(
                {
                    "deployment": name,
                    "provider": runtime.provider,
                    "model": config.model,
                    "breaker": BREAKER_STATE_NAMES[snap.state],
                    "retry_in_s": None if retry_at is None else round(max(0.0, retry_at - now), 3),
                    "recent_requests": snap.requests,
                    "recent_failures": snap.failures,
                    "recent_error_rate": round(snap.error_rate, 4),
                    "in_flight": runtime.limiter.in_flight,
                    "queued": runtime.limiter.queued,
                    "latency_ms": _ms(runtime.latency.latency_s),
                    "ttft_ms": _ms(runtime.latency.ttft_s),
                    "weights": {
                        group: members[name]
                        for group, members in effective.items()
                        if name in members
                    },
                }
            )
        return json_response(200, {"deployments": out})

    # -- weights -----------------------------------------------------------------------------
    async def get_weights(self, request: Request, operator: str) -> Response:
        app = self.app
        return json_response(
            200,
            {
                "weights": app.effective_weights(),
                "file": app.config.weights,
                "overrides": app.weight_overrides,
            },
        )

    async def put_weights(self, request: Request, operator: str) -> Response:
        body = json_body(request)
        force = body.pop("force", False) is True
        update = body.get("weights", body)
        if not isinstance(update, dict) or not update:
            raise InvalidRequestError(
                "Body must map model groups to {deployment: weight}, as the runbook's weights:."
            )
        merged = self.app.validate_weights(update, force=force)
        self.app.set_weight_overrides(merged)
        lines = []
        for group, members in merged.items():
            shares = ",".join(f"{name}={weight:g}" for name, weight in members.items())
            lines.append({"GROUP": group, "WEIGHTS": shares, "FORCE": str(force)})
            self.app.audit(operator, "set_weights", **lines[-1])
        fleet = await announce(self.app, "set_weights", operator, lines)
        return json_response(200, {"weights": self.app.effective_weights(), **fleet})

    async def clear_weights(self, request: Request, operator: str) -> Response:
        groups = sorted(self.app.weight_overrides)
        self.app.set_weight_overrides({}, replace=True)
        line = {"GROUPS": ",".join(groups) or "none"}
        self.app.audit(operator, "clear_weight_overrides", **line)
        fleet = await announce(self.app, "clear_weight_overrides", operator, [line])
        body = {"weights": self.app.effective_weights(), "cleared": groups, **fleet}
        return json_response(200, body)

    # -- config ------------------------------------------------------------------------------
    async def get_config(self, request: Request, operator: str) -> Response:
        app = self.app
        config = app.config.model_dump(mode="json")  # SecretStr dumps as "**********"
        return json_response(
            200,
            {
                "config_version": app.config_version,
                "config": config,
                "effective_weights": app.effective_weights(),
            },
        )

    async def reload(self, request: Request, operator: str) -> Response:
        try:
            version = self.app.reload(source=f"admin:{operator}")
        except ConfigError as exc:
            self.app.audit(operator, "config_reload", RESULT="rejected", REASON=exc.message)
            raise AdminError(400, exc.message, "invalid_request_error", "invalid_config") from None
        self.app.audit(operator, "config_reload", RESULT="applied", VERSION=version)
        fleet = await announce(self.app, "config_reload", operator, [{"RESULT": "applied"}])
        return json_response(200, {"status": "reloaded", "config_version": version, **fleet})


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
