"""Rollouts run by the router: gradual restore and canary, under guard rails, with rollback.

The runbook's section 4 by hand is "set 10 %, watch dashboards for 15 minutes, set 25 %...".
Here the router does it: a rollout raises one deployment's share of its model group step by step
(``restore``) or holds one share for a while (``canary``), judges the deployment against guard
rails over each hold from its own traffic windows, and rolls back by itself when a rail is
crossed. It runs as a task inside the router, so it survives the operator's CLI going away.

Shares, not weights: a step of 25 means the deployment gets 25 % of the group's traffic, whatever
the other members weigh; the weight that gives it is ``share * others / (1 - share)``. A restore's
last step of 100 means "restored": the deployment's file weight applies again (its override goes).

Guard rails, judged over the time since the step began (the windows' 10 s buckets may add up to
10 s of traffic from before it): the deployment's breaker opening during the step; with at least
``min_requests`` attempts, its error rate above ``max_error_rate`` or its p95 above
``max_p95_ms``. The peers' figures over the same window are recorded beside the deployment's so a
verdict shows canary and baseline side by side. Every change of weight goes through
``app.set_weight_overrides`` (so a fleet syncs it) and every decision is audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from routeguard.observability.windows import WindowStats
from routeguard.ops.lease import Lease, lease_for

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = [
    "Figures",
    "GuardRails",
    "Rollout",
    "RolloutManager",
    "RolloutSpec",
    "weight_for_share",
]

log = logging.getLogger("routeguard.rollouts")

Kind = Literal["restore", "canary"]
FINAL_STATES = frozenset({"completed", "rolled_back", "aborted", "passed", "failed"})
_KEEP_FINISHED = 20
_LEASE_TTL_S = 15.0


class TargetGoneError(Exception):
    """The rollout's deployment or group left the configuration: nothing left to roll out."""


def weight_for_share(share: float, others: float) -> float:
    """The weight that gives a member ``share`` (0..1) of a group whose others weigh ``others``."""
    if share <= 0:
        return 0.0
    if others <= 0:
        return 1.0  # alone in the group: any positive weight is all of it
    if share >= 1:
        raise ValueError("a share of 1 leaves the others nothing: set their weights to 0")
    return round(share * others / (1 - share), 6)


@dataclass(frozen=True, slots=True)
class GuardRails:
    max_error_rate: float = 0.02
    max_p95_ms: float | None = None
    min_requests: int = 10
    """Below this many attempts in the window the deployment is not judged on rates."""

    def to_json(self) -> dict[str, object]:
        return {
            "max_error_rate": self.max_error_rate,
            "max_p95_ms": self.max_p95_ms,
            "min_requests": self.min_requests,
        }


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    kind: Kind
    deployment: str
    group: str
    steps: tuple[float, ...] = (10.0, 25.0, 50.0, 100.0)
    hold_s: float = 900.0
    traffic_pct: float = 10.0
    duration_s: float = 900.0
    rails: GuardRails = field(default_factory=GuardRails)


@dataclass(frozen=True, slots=True)
class Figures:
    """The runbook's PromQL figures for one side (canary or baseline) over a window."""

    requests: int
    errors: int
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def combine(cls, stats: list[WindowStats]) -> Figures:
        """Several deployments as one: counts add up, p95 is request-weighted (an estimate)."""
        requests = sum(s.requests for s in stats)
        weighted = [(s.p95_ms, s.requests) for s in stats if s.p95_ms is not None and s.requests]
        total = sum(n for _, n in weighted)
        p95 = round(sum(p * n for p, n in weighted) / total, 3) if total else None
        return cls(requests, sum(s.errors for s in stats), p95)

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p95_ms": self.p95_ms,
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class Rollout:
    """One rollout's state, as ``GET /admin/rollouts`` shows it."""

    id: str
    spec: RolloutSpec
    operator: str
    state: str = "running"
    step: int = -1
    share_pct: float | None = None
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    events: list[dict[str, str]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    canary: Figures | None = None
    baseline: Figures | None = None
    lease_held: bool | None = None

    def event(self, text: str) -> None:
        self.events.append({"ts": _iso(time.time()), "event": text})
        log.info("rollout %s: %s", self.id, text)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def to_json(self) -> dict[str, object]:
        spec = self.spec
        return {
            "id": self.id,
            "kind": spec.kind,
            "deployment": spec.deployment,
            "group": spec.group,
            "operator": self.operator,
            "state": self.state,
            "step": self.step,
            "steps": list(spec.steps) if spec.kind == "restore" else [spec.traffic_pct],
            "share_pct": self.share_pct,
            "hold_s": spec.hold_s if spec.kind == "restore" else spec.duration_s,
            "traffic_pct": spec.traffic_pct if spec.kind == "canary" else None,
            "duration_s": spec.duration_s if spec.kind == "canary" else None,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "guard_rails": spec.rails.to_json(),
            "figures": {
                "canary": None if self.canary is None else self.canary.to_json(),
                "baseline": None if self.baseline is None else self.baseline.to_json(),
            },
            "started_at": _iso(self.started_at),
            "finished_at": None if self.finished_at is None else _iso(self.finished_at),
            "events": list(self.events),
            "lease_held": self.lease_held,
        }


class RolloutManager:
    """Starts, drives, aborts and remembers the rollouts of one app."""

    def __init__(self, app: RouteGuardApp, *, tick_s: float = 0.25) -> None:
        self.app = app
        self.tick_s = tick_s
        self.rollouts: dict[str, Rollout] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._previous: dict[str, dict[str, float] | None] = {}  # a canary's group before it

    @property
    def lease(self) -> Lease:
        return lease_for(getattr(self.app, "fleet", None))

    # -- API ---------------------------------------------------------------------------------
    def running_in(self, group: str) -> Rollout | None:
        return next(
            (r for r in self.rollouts.values() if not r.done and r.spec.group == group), None
        )

    def start(self, spec: RolloutSpec, operator: str) -> Rollout:
        rollout = Rollout(f"ro-{secrets.token_hex(4)}", spec, operator)
        self.rollouts[rollout.id] = rollout
        self._forget_old()
        rails = spec.rails
        what = (
            f"steps {','.join(f'{s:g}' for s in spec.steps)}% hold {spec.hold_s:g}s"
            if spec.kind == "restore"
            else f"{spec.traffic_pct:g}% for {spec.duration_s:g}s"
        )
        rollout.event(f"{spec.kind} of {spec.deployment} in {spec.group} started: {what}")
        self.app.audit(
            operator,
            f"{spec.kind}_start",
            ROLLOUT=rollout.id,
            DEPLOYMENT=spec.deployment,
            GROUP=spec.group,
            PLAN=what,
            MAX_ERROR_RATE=rails.max_error_rate,
            MAX_P95_MS=rails.max_p95_ms if rails.max_p95_ms is not None else "none",
        )
        self._tasks[rollout.id] = asyncio.create_task(self._drive(rollout))
        return rollout

    async def abort(self, rollout_id: str, operator: str) -> Rollout | None:
        rollout = self.rollouts.get(rollout_id)
        if rollout is None:
            return None
        task = self._tasks.pop(rollout_id, None)
        if task is not None and not rollout.done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if rollout.spec.kind == "canary":
                self._restore_previous(rollout)
            self._finish(rollout, "aborted", [f"aborted by {operator}"])
            self.app.audit(
                operator,
                f"{rollout.spec.kind}_abort",
                ROLLOUT=rollout.id,
                DEPLOYMENT=rollout.spec.deployment,
                SHARE_PCT=rollout.share_pct if rollout.share_pct is not None else "none",
            )
        return rollout

    def listing(self) -> list[dict[str, object]]:
        return [r.to_json() for r in reversed(self.rollouts.values())]

    def status_section(self) -> object:
        """``GET /admin/status``'s ``rollouts``: what runs now, and the last few finished."""
        active = [r.to_json() for r in self.rollouts.values() if not r.done]
        recent = [r.to_json() for r in reversed(self.rollouts.values()) if r.done][:5]
        return {"active": active, "recent": recent}

    async def close(self) -> None:
        for rollout_id, task in list(self._tasks.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            rollout = self.rollouts[rollout_id]
            if not rollout.done:
                self._finish(rollout, "aborted", ["router shut down"])
        self._tasks.clear()

    # -- driving -----------------------------------------------------------------------------
    async def _drive(self, rollout: Rollout) -> None:
        lease_name = f"rollout:{rollout.spec.group}"
        try:
            if rollout.spec.kind == "restore":
                await self._restore(rollout, lease_name)
            else:
                await self._canary(rollout, lease_name)
        except asyncio.CancelledError:
            raise
        except TargetGoneError as exc:
            rollout.event(f"aborted: {exc}")
            self._finish(rollout, "aborted", [str(exc)])
        except Exception as exc:
            log.exception("rollout %s crashed", rollout.id)
            self._finish(rollout, "aborted", [f"internal error: {type(exc).__name__}: {exc}"])
        finally:
            self._tasks.pop(rollout.id, None)
            await self.lease.release(lease_name)

    async def _restore(self, rollout: Rollout, lease_name: str) -> None:
        spec = rollout.spec
        last_good = 0.0
        for index, step in enumerate(spec.steps):
            await self._wait_for_lease(rollout, lease_name)
            rollout.step = index
            self._apply_share(rollout, step)
            rollout.event(f"step {index + 1}/{len(spec.steps)}: {step:g}% of {spec.group}")
            self.app.audit(
                rollout.operator,
                "restore_step",
                ROLLOUT=rollout.id,
                DEPLOYMENT=spec.deployment,
                SHARE_PCT=step,
            )
            reasons = await self._hold(rollout, spec.hold_s, lease_name)
            if reasons:
                self._apply_share(rollout, last_good)
                rollout.event(f"rolled back to {last_good:g}%: {'; '.join(reasons)}")
                self.app.audit(
                    rollout.operator,
                    "restore_rollback",
                    ROLLOUT=rollout.id,
                    DEPLOYMENT=spec.deployment,
                    FAILED_AT_PCT=step,
                    BACK_TO_PCT=last_good,
                    REASON="; ".join(reasons),
                )
                self._finish(rollout, "rolled_back", reasons)
                return
            last_good = step
        rollout.event("restored: every step held within the guard rails")
        self.app.audit(
            rollout.operator, "restore_complete", ROLLOUT=rollout.id, DEPLOYMENT=spec.deployment
        )
        self._finish(rollout, "completed", [])

    async def _canary(self, rollout: Rollout, lease_name: str) -> None:
        spec = rollout.spec
        await self._wait_for_lease(rollout, lease_name)
        rollout.step = 0
        self._previous[rollout.id] = self.app.weight_overrides.get(spec.group)
        self._apply_share(rollout, spec.traffic_pct)
        reasons = await self._hold(rollout, spec.duration_s, lease_name)
        self._restore_previous(rollout)
        verdict = "failed" if reasons else "passed"
        rollout.event(f"canary {verdict}" + (f": {'; '.join(reasons)}" if reasons else ""))
        canary, baseline = rollout.canary, rollout.baseline
        self.app.audit(
            rollout.operator,
            "canary_verdict",
            ROLLOUT=rollout.id,
            DEPLOYMENT=spec.deployment,
            VERDICT=verdict,
            CANARY_ERROR_RATE=round(canary.error_rate, 4) if canary else "none",
            BASELINE_ERROR_RATE=round(baseline.error_rate, 4) if baseline else "none",
            REASON="; ".join(reasons) or "within guard rails",
        )
        self._finish(rollout, verdict, reasons)

    async def _hold(self, rollout: Rollout, seconds: float, lease_name: str) -> list[str]:
        """Wait ``seconds`` of held lease time, judging every tick; the breaches, if any."""
        clock = self.app.clock
        started = clock()
        held = 0.0
        while held < seconds:
            before = clock()
            await asyncio.sleep(min(self.tick_s, seconds - held))
            if not await self._leased(rollout, lease_name):
                continue  # time without the lease does not count as holding
            held += clock() - before
            reasons = self._judge(rollout, started, final=False)
            if reasons:
                return reasons
        return self._judge(rollout, started, final=True)

    async def _leased(self, rollout: Rollout, lease_name: str) -> bool:
        """Hold (or renew) the group's rollout lease; note when it is won and lost."""
        held = await self.lease.acquire(lease_name, _LEASE_TTL_S)
        if held != rollout.lease_held:
            rollout.lease_held = held
            rollout.event(
                "holding the rollout lease" if held else "rollout lease not held: waiting"
            )
        return held

    async def _wait_for_lease(self, rollout: Rollout, lease_name: str) -> None:
        """Change no weight before this replica holds the lease."""
        while True:  # polling: a lease frees up in Redis, with no local event to wait on
            if await self._leased(rollout, lease_name):
                return
            await asyncio.sleep(self.tick_s)

    def _judge(self, rollout: Rollout, step_started: float, *, final: bool) -> list[str]:
        app, spec, rails = self.app, rollout.spec, rollout.spec.rails
        # Windows count whole buckets: reach back to the start of the step's first bucket.
        bucket_s = app.windows.bucket_s
        window = app.clock() - (step_started // bucket_s) * bucket_s + 1e-3
        mine = app.windows.stats(window, deployment=spec.deployment)
        peers = [
            app.windows.stats(window, deployment=name)
            for name in app.effective_weights().get(spec.group, {})
            if name != spec.deployment
        ]
        rollout.canary = Figures.combine([mine])
        rollout.baseline = Figures.combine(peers)
        reasons = []
        runtime = app.runtimes.deployments.get(spec.deployment)
        if runtime is not None:
            snapshot = runtime.breaker.snapshot()
            if snapshot.opened_at is not None and snapshot.opened_at >= step_started:
                reasons.append("circuit breaker opened during the step")
            elif final and snapshot.opened_at is not None:
                reasons.append(f"circuit breaker is {snapshot.state.name.lower()}, not closed")
        if mine.requests >= rails.min_requests:
            base = rollout.baseline
            if mine.error_rate > rails.max_error_rate:
                reasons.append(
                    f"error rate {mine.error_rate:.1%} over {mine.requests} attempts above "
                    f"{rails.max_error_rate:.1%} (peers {base.error_rate:.1%})"
                )
            if rails.max_p95_ms is not None and (mine.p95_ms or 0) > rails.max_p95_ms:
                peer_p95 = "n/a" if base.p95_ms is None else f"{base.p95_ms:.0f} ms"
                reasons.append(
                    f"p95 {mine.p95_ms:.0f} ms above {rails.max_p95_ms:.0f} ms (peers {peer_p95})"
                )
        elif final:
            rollout.event(
                f"only {mine.requests} attempts in the hold (< {rails.min_requests}): "
                "rates not judged"
            )
        return reasons

    # -- weights -----------------------------------------------------------------------------
    def _apply_share(self, rollout: Rollout, pct: float) -> None:
        app, spec = self.app, rollout.spec
        members = app.effective_weights().get(spec.group, {})
        if spec.deployment not in members:
            raise TargetGoneError(
                f"{spec.deployment} is no longer in {spec.group} (config reloaded)"
            )
        others = [w for name, w in members.items() if name != spec.deployment]
        if pct >= 100:
            file_weight = app.config.weights.get(spec.group, {}).get(spec.deployment, 0.0)
            weight = file_weight if file_weight > 0 else max(others, default=1.0) or 1.0
        else:
            weight = weight_for_share(pct / 100, sum(others))
        merged = app.validate_weights({spec.group: {spec.deployment: weight}}, force=True)
        app.set_weight_overrides(merged)
        rollout.share_pct = pct

    def _restore_previous(self, rollout: Rollout) -> None:
        """Put a canary's group back as it was before the canary."""
        group = rollout.spec.group
        previous = self._previous.pop(rollout.id, None)
        overrides = dict(self.app.weight_overrides)
        if previous is None:
            overrides.pop(group, None)
        else:
            overrides[group] = previous
        self.app.set_weight_overrides(overrides, replace=True)
        rollout.share_pct = None

    def _finish(self, rollout: Rollout, state: str, reasons: list[str]) -> None:
        rollout.state = state
        rollout.reasons = reasons
        rollout.finished_at = time.time()
        if rollout.spec.kind == "canary" or state == "rolled_back":
            rollout.verdict = "fail" if reasons else "pass"
        elif state == "completed":
            rollout.verdict = "pass"

    def _forget_old(self) -> None:
        finished = [r.id for r in self.rollouts.values() if r.done]
        for rollout_id in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del self.rollouts[rollout_id]
