"""Per-deployment runtime state: breaker, capacity, rate limits and recent latency.

Configuration objects are rebuilt on every reload, but what the router has learned about a
deployment (its breaker, its in-flight count, its latency) must survive a reload, so it lives
here, keyed by deployment name, in a :class:`RuntimeRegistry` owned by the app. Reads on the
request path are local attribute reads; sharing across replicas (Redis) syncs into these same
objects in the background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from routeguard.config.schema import Config, DeploymentConfig, RoutingConfig
from routeguard.resilience import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Clock,
    ConcurrencyLimiter,
    RateLimiter,
    monotonic,
)

__all__ = ["DeploymentRuntime", "LatencyStats", "RuntimeRegistry", "TransitionListener"]

TransitionListener = Callable[[str, BreakerState, BreakerState, str], None]

_EWMA_ALPHA = 0.2


@dataclass(slots=True)
class LatencyStats:
    """Exponentially weighted recent latency and time to first token, for the latency strategy.

    ``None`` until the first sample: an unmeasured deployment looks fastest, so it gets tried.
    """

    latency_s: float | None = None
    ttft_s: float | None = None

    def observe(self, latency_s: float, ttft_s: float | None = None) -> None:
        self.latency_s = _ewma(self.latency_s, latency_s)
        if ttft_s is not None:
            self.ttft_s = _ewma(self.ttft_s, ttft_s)

    @property
    def score_s(self) -> float:
        """What "fast" means for ranking: time to first token where known, else latency."""
        value = self.ttft_s if self.ttft_s is not None else self.latency_s
        return 0.0 if value is None else value


def _ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + _EWMA_ALPHA * (sample - old)


@dataclass(slots=True)
class DeploymentRuntime:
    """Everything the router knows about one deployment right now."""

    name: str
    provider: str
    breaker: CircuitBreaker
    limiter: ConcurrencyLimiter
    rate: RateLimiter | None
    latency: LatencyStats = field(default_factory=LatencyStats)

    def usable(self) -> bool:
        """Could a request go here now without waiting: breaker admits, slot free, under rpm/tpm."""
        if not self.breaker.available():
            return False
        if self.rate is not None and self.rate.retry_after() is not None:
            return False
        return not self.limiter.saturated


def breaker_policy(config: DeploymentConfig, routing: RoutingConfig) -> BreakerPolicy:
    return BreakerPolicy(
        error_rate=config.circuit_breaker_error_rate or routing.circuit_breaker_error_rate,
        window_s=routing.circuit_breaker_window_s,
        min_requests=routing.circuit_breaker_min_requests,
        cooldown_s=config.cooldown_s or routing.cooldown_s,
        half_open_probes=routing.half_open_probes,
        failures_to_open=routing.circuit_breaker_consecutive_failures,
        rate_limit_cooldown_s=routing.rate_limit_cooldown_s,
    )


class RuntimeRegistry:
    """Runtime state for every configured deployment, surviving config reloads."""

    def __init__(self, clock: Clock = monotonic, on_transition: TransitionListener | None = None):
        self.clock = clock
        self.on_transition = on_transition
        self.deployments: dict[str, DeploymentRuntime] = {}

    def _transition(self, name: str, old: BreakerState, new: BreakerState, reason: str) -> None:
        if self.on_transition is not None:
            self.on_transition(name, old, new, reason)

    def sync(self, config: Config) -> None:
        """Create state for new deployments, update policies of kept ones, drop removed ones."""
        for name, deployment in config.deployments.items():
            policy = breaker_policy(deployment, config.routing)
            max_queue = deployment.max_queue
            if max_queue is None:
                max_queue = deployment.max_parallel_requests or 0
            runtime = self.deployments.get(name)
            if runtime is None or runtime.provider != deployment.provider:
                self.deployments[name] = DeploymentRuntime(
                    name=name,
                    provider=deployment.provider,
                    breaker=CircuitBreaker(name, policy, self.clock, self._transition),
                    limiter=ConcurrencyLimiter(
                        deployment.max_parallel_requests, max_queue, deployment.queue_timeout_s
                    ),
                    rate=_rate_limiter(deployment, self.clock),
                )
                continue
            runtime.breaker.policy = policy
            runtime.limiter.resize(
                deployment.max_parallel_requests, max_queue, deployment.queue_timeout_s
            )
            if runtime.rate is not None and (deployment.rpm or deployment.tpm):
                runtime.rate.configure(deployment.rpm, deployment.tpm)  # keeps the minute's counts
            else:
                runtime.rate = _rate_limiter(deployment, self.clock)
        for name in list(self.deployments):
            if name not in config.deployments:
                del self.deployments[name]

    def __getitem__(self, name: str) -> DeploymentRuntime:
        return self.deployments[name]


def _rate_limiter(config: DeploymentConfig, clock: Clock) -> RateLimiter | None:
    if config.rpm is None and config.tpm is None:
        return None
    return RateLimiter(config.rpm, config.tpm, clock)
