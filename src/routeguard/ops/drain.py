"""Draining: weight 0 for a deployment (or every deployment of a provider) in every group.

The runbook's emergency weight patch, as a runtime override through
``app.set_weight_overrides`` (so a fleet syncs it like any weight change) rather than a ConfigMap
edit and a restart. Draining must never be the thing that takes a model group down: a drain that
would leave a group with no *healthy* deployment (positive weight and a closed breaker) is
refused unless forced. Undraining removes the override, so the file's weight applies again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from routeguard.ops.errors import OperatorActionError
from routeguard.resilience import BreakerState

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["DrainPlan", "drain", "resolve_target", "undrain"]

Weights = dict[str, dict[str, float]]


@dataclass
class DrainPlan:
    """What a drain changes: the deployments, the groups touched and the groups it would empty."""

    names: list[str]
    overrides: Weights = field(default_factory=dict)
    emptied: list[str] = field(default_factory=list)


def resolve_target(app: RouteGuardApp, target: object) -> list[str]:
    """Deployment names for ``target``: a deployment's name, or a provider's (all of its)."""
    if not isinstance(target, str) or not target:
        raise OperatorActionError(400, 'Body needs "target": a deployment or provider name.')
    deployments = app.config.deployments
    if target in deployments:
        return [target]
    names = [name for name, cfg in deployments.items() if cfg.provider == target]
    if not names:
        raise OperatorActionError(
            404,
            f"{target!r} is neither a deployment nor a provider of this router "
            f"(deployments: {', '.join(deployments)}).",
            "not_found",
        )
    return names


def _healthy(app: RouteGuardApp, name: str) -> bool:
    runtime = app.runtimes.deployments.get(name)
    return runtime is not None and runtime.breaker.state is BreakerState.CLOSED


def plan_drain(app: RouteGuardApp, names: list[str]) -> DrainPlan:
    plan = DrainPlan(names)
    for group, members in app.effective_weights().items():
        hit = [name for name in names if name in members]
        if not hit:
            continue
        new = {**members, **dict.fromkeys(hit, 0.0)}
        plan.overrides[group] = new
        if not any(w > 0 and _healthy(app, n) for n, w in new.items()):
            plan.emptied.append(group)
    return plan


def drain(app: RouteGuardApp, target: object, *, force: bool, operator: str) -> dict[str, object]:
    """Drain ``target``; refused (409) when a group would be left with no healthy deployment."""
    names = resolve_target(app, target)
    plan = plan_drain(app, names)
    if plan.emptied and not force:
        raise OperatorActionError(
            409,
            f"Draining {target} would leave no healthy deployment (positive weight, breaker "
            f'closed) in {", ".join(plan.emptied)}; send "force": true to drain anyway.',
            "last_healthy_deployment",
        )
    if plan.overrides:
        app.set_weight_overrides(app.validate_weights(plan.overrides, force=True))
    app.audit(
        operator,
        "drain",
        TARGET=str(target),
        DEPLOYMENTS=",".join(names),
        GROUPS=",".join(plan.overrides) or "none",
        FORCE=str(force),
    )
    return {"drained": names, "groups": list(plan.overrides), "weights": app.effective_weights()}


def undrain(app: RouteGuardApp, target: object, *, operator: str) -> dict[str, object]:
    """Remove ``target``'s overrides so the file's weights apply again."""
    names = resolve_target(app, target)
    file_weights = app.config.weights
    overrides: Weights = {}
    touched = []
    for group, members in app.weight_overrides.items():
        kept = {n: w for n, w in members.items() if n not in names}
        if len(kept) != len(members):
            touched.append(group)
            kept = {**{n: w for n, w in file_weights.get(group, {}).items() if n in names}, **kept}
        if kept and kept != file_weights.get(group):
            overrides[group] = kept
    app.set_weight_overrides(overrides, replace=True)
    app.audit(
        operator,
        "undrain",
        TARGET=str(target),
        DEPLOYMENTS=",".join(names),
        GROUPS=",".join(touched) or "none",
    )
    return {"undrained": names, "groups": touched, "weights": app.effective_weights()}
