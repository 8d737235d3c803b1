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

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from routeguard.errors import ConfigError, InvalidRequestError, RouteGuardError
from routeguard.net.server import Handler as Route
from routeguard.net.server import Request, Response, StreamingResponse
from routeguard.observability.metrics import BREAKER_STATE_NAMES

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["AdminRoutes"]

log = logging.getLogger("routeguard.admin")

AdminHandler = Callable[[Request, str], Awaitable[Response]]


class AdminError(RouteGuardError):
    def __init__(self, status: int, message: str, error_type: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.code = code


def _json(status: int, body: object) -> Response:
    return Response(status, orjson.dumps(body))


def _body(request: Request) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("Request body must be a JSON object.")
    return data


class AdminRoutes:
    """``/admin/...`` routes, each wrapped in authentication."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app

    def table(self) -> dict[str, dict[str, Route]]:
        guard = self._authenticated
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

    def _authenticated(self, handler: AdminHandler) -> Route:
        async def route(request: Request) -> Response | StreamingResponse:
            operator = self._operator(request)
            return await handler(request, operator)

        return route

    def _operator(self, request: Request) -> str:
        tokens = self.app.config.admin.tokens
        if not tokens:
            raise AdminError(
                403, "The admin API is disabled: no admin.tokens configured.", "permission_error"
            )
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        matched = None
        candidate = presented.strip().encode()
        for name, secret in tokens.items():
            # Compare against every token, always, so timing says nothing about which matched.
            if hmac.compare_digest(candidate, secret.get_secret_value().encode()):
                matched = name
        if scheme.lower() != "bearer" or not presented or matched is None:
            log.warning("admin authentication failed", extra={"path": request.path})
            raise AdminError(
                401,
                "Missing or invalid admin bearer token.",
                "authentication_error",
                "invalid_token",
            )
        return matched

    # -- breakers ----------------------------------------------------------------------------
    async def reset_breakers(self, request: Request, operator: str) -> Response:
        body = _body(request)
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
        return _json(200, {"reset": names})

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
        return _json(200, {"deployments": out})

    # -- weights -----------------------------------------------------------------------------
    async def get_weights(self, request: Request, operator: str) -> Response:
        app = self.app
        return _json(
            200,
            {
                "weights": app.effective_weights(),
                "file": app.config.weights,
                "overrides": app.weight_overrides,
            },
        )

    async def put_weights(self, request: Request, operator: str) -> Response:
        body = _body(request)
        force = body.pop("force", False) is True
        update = body.get("weights", body)
        if not isinstance(update, dict) or not update:
            raise InvalidRequestError(
                "Body must map model groups to {deployment: weight}, as the runbook's weights:."
            )
        merged = self.app.validate_weights(update, force=force)
        self.app.set_weight_overrides(merged)
        for group, members in merged.items():
            shares = ",".join(f"{name}={weight:g}" for name, weight in members.items())
            self.app.audit(operator, "set_weights", GROUP=group, WEIGHTS=shares, FORCE=str(force))
        return _json(200, {"weights": self.app.effective_weights()})

    async def clear_weights(self, request: Request, operator: str) -> Response:
        groups = sorted(self.app.weight_overrides)
        self.app.set_weight_overrides({}, replace=True)
        self.app.audit(operator, "clear_weight_overrides", GROUPS=",".join(groups) or "none")
        return _json(200, {"weights": self.app.effective_weights(), "cleared": groups})

    # -- config ------------------------------------------------------------------------------
    async def get_config(self, request: Request, operator: str) -> Response:
        app = self.app
        config = app.config.model_dump(mode="json")  # SecretStr dumps as "**********"
        return _json(
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
        return _json(200, {"status": "reloaded", "config_version": version})


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
