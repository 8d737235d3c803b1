"""The reporter: turns what the router and the edge do into metrics and log lines.

It implements the router's hooks and the breaker transition listener, so routing never imports
Prometheus or logging. Gauges that describe current state (breaker state, in-flight, queue
depth, effective weight) are read from the runtime registry when ``/metrics`` is scraped rather
than updated on every request, which keeps the request path to a few counter increments.
"""

from __future__ import annotations

import logging

from routeguard.observability.access import AccessLog
from routeguard.observability.logs import log_breaker_transition
from routeguard.observability.metrics import BREAKER_STATE_NAMES, RouterMetrics
from routeguard.observability.recent import BreakerHistory, RecentErrors
from routeguard.observability.windows import TrafficWindows
from routeguard.resilience import BreakerState
from routeguard.routing.router import AttemptRecord, Router, Trace
from routeguard.routing.runtime import RuntimeRegistry

__all__ = ["Reporter"]

breaker_log = logging.getLogger("routeguard.breaker")


class Reporter:
    """Metrics and logs for one app; pass it to the router as hooks."""

    def __init__(
        self,
        metrics: RouterMetrics,
        runtimes: RuntimeRegistry,
        access: AccessLog,
        windows: TrafficWindows,
    ):
        self.metrics = metrics
        self.runtimes = runtimes
        self.access = access
        self.windows = windows
        # For diagnosis (GET /admin/diagnose): fed on the error and transition paths only.
        self.recent_errors = RecentErrors(windows.clock)
        self.breaker_history = BreakerHistory(windows.clock)
        self.known_groups: frozenset[str] = frozenset()

    def set_groups(self, names: set[str]) -> None:
        """The configured model groups: only these become label values (bounded series)."""
        self.known_groups = frozenset(names)

    # -- router hooks ------------------------------------------------------------------------
    def attempt_finished(self, record: AttemptRecord) -> None:
        deployment = record.deployment
        handle = self.metrics.deployment(record.group, deployment.name, deployment.provider_name)
        handle.attempt()
        error = record.error
        reason = None if error is None else getattr(error, "reason", "other")
        self.windows.attempt(deployment.name, deployment.provider_name, reason, record.upstream_s)
        if reason is not None:
            handle.error(reason)
            self.recent_errors.add(deployment.name, deployment.provider_name, reason, error)
        elif record.usage is not None:
            usage = record.usage
            cost = (
                usage.prompt_tokens * deployment.input_cost_per_token
                + usage.completion_tokens * deployment.output_cost_per_token
            )
            handle.tokens(usage.prompt_tokens, usage.completion_tokens, cost)
        group = self.metrics.group(record.group)
        group.latency("upstream", record.upstream_s)
        if record.ttft_s is not None:
            group.latency("ttft", record.ttft_s)

    def retried(self, group: str) -> None:
        self.metrics.group(group).retry()

    def fell_back(self, group: str, to_group: str) -> None:
        self.metrics.group(group).fallback(to_group)

    # -- breaker transitions -----------------------------------------------------------------
    def breaker_transition(
        self, deployment: str, old: BreakerState, new: BreakerState, reason: str
    ) -> None:
        runtime = self.runtimes.deployments.get(deployment)
        provider = runtime.provider if runtime is not None else "unknown"
        self.metrics.breaker_transition(deployment, provider, int(new))
        self.breaker_history.add(deployment, provider, _state_name(old), _state_name(new), reason)
        log_breaker_transition(
            breaker_log,
            deployment=deployment,
            provider=provider,
            old=int(old),
            new=int(new),
            reason=reason,
        )

    # -- client requests ---------------------------------------------------------------------
    def client_request(
        self,
        group: str | None,
        status: int,
        trace: Trace,
        total_s: float,
        *,
        request_id: str,
        ttft_s: float | None = None,
    ) -> None:
        """One client request answered (a stream: once it ended)."""
        known = group if group in self.known_groups else None
        handle = self.metrics.group(known)
        handle.client(status)
        self.metrics.api_request(trace.api, status)
        handle.latency("total", total_s)
        self.windows.client(known, status, total_s)
        if trace.attempts:
            handle.latency("overhead", max(0.0, total_s - trace.upstream_s))
        self.access.request(
            request_id=request_id,
            api=trace.api,
            model_group=group or "unknown",
            deployment=trace.deployment,
            attempts=trace.attempts,
            status=status,
            latency_ms=total_s * 1000,
            upstream_ms=trace.upstream_s * 1000,
            key_id=trace.key_id,
            ttft_ms=None if ttft_s is None else ttft_s * 1000,
        )

    # -- scrape time -------------------------------------------------------------------------
    def refresh(self, router: Router) -> None:
        """Set the state gauges from the live runtime state, just before a scrape."""
        for runtime in self.runtimes.deployments.values():
            state = runtime.breaker.state  # reading it lets an elapsed cooldown half-open
            self.metrics.breaker_state(runtime.name, runtime.provider, int(state))
            self.metrics.in_flight.labels(runtime.name).set(runtime.limiter.in_flight)
            self.metrics.queue_depth.labels(runtime.name).set(runtime.limiter.queued)
        for group in router.groups.values():
            for member, weight in zip(group.members, group.weights, strict=True):
                self.metrics.deployment(group.name, member.name, member.provider_name)
                self.metrics.effective_weight(group.name, member.name, weight)


def _state_name(state: BreakerState) -> str:
    return BREAKER_STATE_NAMES[int(state)]
