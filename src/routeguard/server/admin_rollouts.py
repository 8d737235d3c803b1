"""``/admin/rollouts``: start, watch and abort the router's restores and canaries.

The body is validated here, once, into a :class:`~routeguard.ops.rollouts.RolloutSpec`; the
rollout itself runs in :mod:`routeguard.ops.rollouts`. Durations may be seconds or text
("15m", "90s", "1h"), as the CLI passes what the operator typed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from routeguard.errors import InvalidRequestError
from routeguard.net.server import Request, Response
from routeguard.ops.durations import parse_duration
from routeguard.ops.rollouts import GuardRails, RolloutSpec
from routeguard.resilience import BreakerState
from routeguard.server.admin_api import AdminError, Route, json_body, json_response

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["RolloutRoutes", "parse_rollout"]


class RolloutRoutes:
    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self.guard = app.admin_guard

    def table(self) -> dict[str, dict[str, Route]]:
        guard = self.guard
        return {
            "/admin/rollouts": {
                "GET": guard(self.list),
                "POST": guard(self.start),
                "DELETE": guard(self.abort),
            }
        }

    async def list(self, request: Request, operator: str) -> Response:
        return json_response(200, {"rollouts": self.app.rollouts.listing()})

    async def start(self, request: Request, operator: str) -> Response:
        spec = parse_rollout(self.app, json_body(request))
        running = self.app.rollouts.running_in(spec.group)
        if running is not None:
            raise AdminError(
                409,
                f"Rollout {running.id} ({running.spec.kind} of {running.spec.deployment}) is "
                f"already running in {spec.group}; abort it first (DELETE /admin/rollouts).",
                "invalid_request_error",
                "rollout_running",
            )
        breaker = self.app.runtimes.deployments[spec.deployment].breaker
        if breaker.state is not BreakerState.CLOSED:
            raise AdminError(
                409,
                f"{spec.deployment}'s circuit breaker is not closed: it would get no traffic to "
                "judge. "
                "Wait for it to recover (routeguard probe) or reset it first.",
                "invalid_request_error",
                "breaker_open",
            )
        rollout = self.app.rollouts.start(spec, operator)
        return json_response(201, rollout.to_json())

    async def abort(self, request: Request, operator: str) -> Response:
        rollout_id = json_body(request).get("id")
        if not isinstance(rollout_id, str):
            raise InvalidRequestError('Body needs "id": the rollout to abort.')
        rollout = await self.app.rollouts.abort(rollout_id, operator)
        if rollout is None:
            raise AdminError(
                404, f"No rollout {rollout_id!r}.", "invalid_request_error", "not_found"
            )
        return json_response(200, rollout.to_json())


def _number(
    body: dict[str, Any], key: str, default: float | None, low: float, high: float
) -> float | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequestError(f"{key}: must be a number.", param=key)
    if not low <= value <= high:
        raise InvalidRequestError(f"{key}: must be between {low:g} and {high:g}.", param=key)
    return float(value)


def _duration(body: dict[str, Any], key: str, default: float) -> float:
    try:
        seconds = parse_duration(body.get(key, default))
    except ValueError as exc:
        raise InvalidRequestError(f"{key}: {exc}", param=key) from None
    if seconds <= 0:
        raise InvalidRequestError(f"{key}: must be longer than 0 s.", param=key)
    return seconds


def parse_rollout(app: RouteGuardApp, body: dict[str, Any]) -> RolloutSpec:
    """The rollout the body asks for, or an OpenAI-shaped 400/404 naming the bad field."""
    kind = body.get("kind")
    if kind not in ("restore", "canary"):
        raise InvalidRequestError('kind: must be "restore" or "canary".', param="kind")
    deployment = body.get("deployment")
    if not isinstance(deployment, str) or deployment not in app.config.deployments:
        raise AdminError(
            404,
            f"deployment: unknown deployment {deployment!r}.",
            "invalid_request_error",
            "not_found",
        )
    groups = [g for g, members in app.effective_weights().items() if deployment in members]
    group = body.get("group")
    if group is None:
        if len(groups) != 1:
            raise InvalidRequestError(
                f"group: {deployment} is in {len(groups)} model groups "
                f"({', '.join(groups) or 'none'}); name one.",
                param="group",
            )
        group = groups[0]
    elif group not in groups:
        raise InvalidRequestError(
            f"group: {deployment} is not a member of {group!r}.", param="group"
        )
    steps = body.get("steps", [10, 25, 50, 100])
    if (
        not isinstance(steps, list)
        or not steps
        or any(
            isinstance(s, bool) or not isinstance(s, int | float) or not 0 < s <= 100 for s in steps
        )
        or steps != sorted(steps)
    ):
        raise InvalidRequestError("steps: must be rising percentages in (0, 100].", param="steps")
    if (
        kind == "restore"
        and groups
        and len(app.effective_weights()[group]) == 1
        and steps[-1] < 100
    ):
        raise InvalidRequestError(
            "steps: a deployment alone in its group can only go to 100.", param="steps"
        )
    rails = GuardRails(
        max_error_rate=_number(body, "max_error_rate", 0.02, 0.0, 1.0) or 0.0,
        max_p95_ms=_number(body, "max_p95_ms", None, 0.0, 3_600_000.0),
        min_requests=int(_number(body, "min_requests", 10, 0, 1e9) or 0),
    )
    traffic = _number(body, "traffic_pct", 10.0, 0.0, 99.0) or 0.0
    if kind == "canary" and traffic <= 0:
        raise InvalidRequestError(
            "traffic_pct: must be above 0 and below 100.", param="traffic_pct"
        )
    return RolloutSpec(
        kind=kind,
        deployment=deployment,
        group=str(group),
        steps=tuple(float(s) for s in steps),
        hold_s=_duration(body, "hold_s", 900.0),
        traffic_pct=traffic,
        duration_s=_duration(body, "duration_s", 900.0),
        rails=rails,
    )
