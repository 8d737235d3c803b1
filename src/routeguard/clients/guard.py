"""The client-key guard: authenticate, check limits and budget, account for what was used.

The request path pays for one SHA-256 of the presented key, one dictionary lookup, a
constant-time comparison of two hashes, and a few integer comparisons: no pydantic, no Redis,
no log formatting. What a key used is recorded when the answer is complete (a stream: when it
ends), from the tokens and prices the router already accounts per attempt.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from routeguard.clients.errors import (
    BudgetExceededError,
    ClientKeyError,
    KeyRateLimitError,
    ModelNotAllowedError,
)
from routeguard.clients.keys import hash_key, key_id, presented_key, read_hash
from routeguard.clients.schema import AnomalyConfig, BudgetPeriod, ClientKeyConfig, ClientsConfig
from routeguard.clients.usage import LocalUsage, RateWindow, SpendRate, UsageCounters, period_bounds
from routeguard.observability.accumulators import AccumulatorCollector, CounterFamily
from routeguard.resilience import Clock, monotonic
from routeguard.resilience.limits import FleetShare

__all__ = ["OPEN_TICKET", "ClientGuard", "KeyState", "Ticket", "Used"]

log = logging.getLogger("routeguard.clients")

REFUSAL_REASONS = ("rpm", "tpm", "parallel", "budget", "model", "anomaly", "revoked")
_ANOMALY_CHECK_S = 10.0


class Used(Protocol):
    """What a finished request used: the router's ``Trace`` has these."""

    tokens: int
    cost_usd: float


@dataclass(slots=True, eq=False)
class KeyState:
    """One key's configuration and live counters (kept across config reloads)."""

    name: str
    key_id: str
    key_hash: str
    config: ClientKeyConfig
    allowed: frozenset[str] | None
    requests: RateWindow = field(default_factory=RateWindow)
    tokens: RateWindow = field(default_factory=RateWindow)
    spend_rate: SpendRate | None = None
    fleet: FleetShare | None = None
    """The key's share of fleet-wide rpm/tpm (``redis:`` configured), else None."""
    in_flight: int = 0
    total_requests: int = 0
    total_tokens: int = 0
    total_spend_usd: float = 0.0
    anomalous: bool = False
    anomaly_checked_at: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)


class Ticket:
    """One admitted request of one key; ``finish`` exactly once, when the answer is complete."""

    __slots__ = ("_guard", "_state")

    def __init__(self, guard: ClientGuard | None, state: KeyState | None) -> None:
        self._guard = guard
        self._state = state

    @property
    def key_id(self) -> str | None:
        return None if self._state is None else self._state.key_id

    def allow_model(self, group: str) -> None:
        state = self._state
        if state is None or state.allowed is None or group in state.allowed:
            return
        assert self._guard is not None
        self._guard.count_refusal(state, "model")
        raise ModelNotAllowedError(f"This API key may not use model '{group}'.", param="model")

    def finish(self, used: Used) -> None:
        state, guard = self._state, self._guard
        if state is None or guard is None:
            return
        self._state = None  # idempotent: a stream's cleanup and an error path may both call
        guard.record(state, used.tokens, used.cost_usd)


OPEN_TICKET = Ticket(None, None)
"""The ticket of every request when no client keys are configured."""


class ClientGuard:
    """Client keys from ``clients:``; :meth:`admit` is the one call on the request path."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        counters: UsageCounters | None = None,
        clock: Clock = monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.counters: UsageCounters = counters or LocalUsage()
        self.clock = clock
        self.wall = wall
        self.enabled = False
        self.keys: dict[str, KeyState] = {}  # by key id
        self._by_hash: dict[str, KeyState] = {}
        self.revoked: set[str] = set()
        self.anomaly = AnomalyConfig()
        self._metrics = _KeyMetrics(registry)
        self._periods: dict[str, tuple[float, float]] = {}

    def _period(self, period: BudgetPeriod, wall: float) -> tuple[float, float]:
        """The budget period containing ``wall``, computed once per period, not per request."""
        bounds = self._periods.get(period)
        if bounds is None or not bounds[0] <= wall < bounds[1]:
            bounds = self._periods[period] = period_bounds(period, wall)
        return bounds

    def period_start(self, period: BudgetPeriod, wall: float) -> float:
        return self._period(period, wall)[0]

    def use_counters(self, counters: UsageCounters) -> None:
        """Count from now on with ``counters`` (a fleet's, once it has started)."""
        self.counters = counters
        for state in self.keys.values():
            state.fleet = counters.share(state.key_id)

    # -- configuration -----------------------------------------------------------------------
    def configure(self, config: ClientsConfig | None) -> None:
        """Apply ``clients:``; keys that stay keep their counters. Raises OSError/ValueError
        for an unreadable or malformed ``key_hash_file``."""
        if config is None or not config.keys:
            self.enabled, self.keys, self._by_hash = False, {}, {}
            return
        self.anomaly = config.anomaly
        keys: dict[str, KeyState] = {}
        for name, key in config.keys.items():
            digest = key.key_hash or read_hash(str(key.key_hash_file))
            if not digest.startswith("sha256:") or len(digest) != 71:
                raise ValueError(f"clients.keys.{name}.key_hash_file: not a sha256: hash")
            kid = key_id(digest)
            state = self.keys.get(kid) or KeyState(name, kid, digest, key, None)
            state.name, state.config = name, key
            state.allowed = None if key.models is None else frozenset(key.models)
            state.spend_rate = state.spend_rate or SpendRate(
                self.anomaly.window_s, self.anomaly.baseline_s
            )
            state.metrics = self._metrics.handles(kid)
            state.fleet = self.counters.share(kid)
            keys[kid] = state
        self.keys = keys
        self._by_hash = {state.key_hash: state for state in keys.values()}
        self.enabled = True

    def hash_files(self) -> list[Path]:
        """The ``key_hash_file`` paths, watched with the config file (a rotated Secret)."""
        return [
            Path(state.config.key_hash_file)
            for state in self.keys.values()
            if state.config.key_hash_file is not None
        ]

    # -- the request path --------------------------------------------------------------------
    def admit(self, headers: dict[str, str]) -> Ticket:
        """Authenticate and check the key's limits; the ticket must be finished."""
        if not self.enabled:
            return OPEN_TICKET
        state = self.identify(headers)
        assert state is not None
        self._check_limits(state)
        state.requests.add(self.clock(), 1)
        fleet = state.fleet
        if fleet is not None:
            fleet.granted -= 1
            if fleet.granted <= 0 and fleet.on_empty is not None:
                fleet.on_empty()
        state.in_flight += 1
        state.total_requests += 1
        state.metrics["requests"].inc()
        return Ticket(self, state)

    def identify(self, headers: dict[str, str]) -> KeyState | None:
        """The key a request carries (None when keys are off); ClientKeyError if none is valid."""
        if not self.enabled:
            return None
        presented = presented_key(headers)
        if presented is None:
            self._metrics.auth_failures.inc()
            raise ClientKeyError(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'."
            )
        digest = hash_key(presented)
        state = self._by_hash.get(digest)
        if state is None or not hmac.compare_digest(state.key_hash.encode(), digest.encode()):
            self._metrics.auth_failures.inc()
            raise ClientKeyError("Incorrect API key provided.")
        if state.key_id in self.revoked:
            self.count_refusal(state, "revoked")
            error = ClientKeyError(f"API key {state.key_id} has been revoked.")
            error.code = "key_revoked"
            raise error
        return state

    def _check_limits(self, state: KeyState) -> None:
        config, now = state.config, self.clock()
        if state.anomalous and now - state.anomaly_checked_at >= _ANOMALY_CHECK_S:
            # A throttled key spends nothing, so nothing else would ever re-check it.
            state.anomaly_checked_at = now
            self._check_anomaly(state, now)
        if state.anomalous and self.anomaly.throttle:
            self.count_refusal(state, "anomaly")
            raise KeyRateLimitError(
                "This API key is throttled: its spend rate is far above its usual rate.", 60.0
            )
        fleet = state.fleet
        if fleet is not None and fleet.active and (config.rpm is not None or config.tpm):
            self._check_fleet(state, fleet, now)
        if config.rpm is not None and state.requests.used(now) >= config.rpm:
            self.count_refusal(state, "rpm")
            raise KeyRateLimitError(
                f"Rate limit reached for this API key: {config.rpm} requests per minute.",
                state.requests.retry_after(now),
            )
        if config.tpm is not None and state.tokens.used(now) >= config.tpm:
            self.count_refusal(state, "tpm")
            raise KeyRateLimitError(
                f"Rate limit reached for this API key: {config.tpm} tokens per minute.",
                state.tokens.retry_after(now),
            )
        if config.max_parallel is not None and state.in_flight >= config.max_parallel:
            self.count_refusal(state, "parallel")
            raise KeyRateLimitError(
                f"This API key already has {config.max_parallel} requests in progress.", 1.0
            )
        if config.budget_usd is not None:
            wall = self.wall()
            start, end = self._period(config.budget_period, wall)
            if self.counters.spent(state.key_id, start) >= config.budget_usd:
                self.count_refusal(state, "budget")
                raise BudgetExceededError(
                    f"This API key has used its budget of ${config.budget_usd:g} per "
                    f"{config.budget_period}; it renews at the start of the next "
                    f"{config.budget_period} (UTC).",
                    end - wall,
                )

    def _check_fleet(self, state: KeyState, fleet: FleetShare, now: float) -> None:
        """The fleet-wide minute: spend this process's grant, or wait for the next minute."""
        config = state.config
        expired = now >= fleet.expires
        if expired and fleet.on_empty is not None:
            fleet.on_empty()
        if config.rpm is not None and (expired or fleet.granted <= 0):
            self.count_refusal(state, "rpm")
            raise KeyRateLimitError(
                f"Rate limit reached for this API key: {config.rpm} requests per minute "
                "across the fleet.",
                fleet.retry_s,
            )
        if config.tpm is not None and fleet.tokens_blocked and not expired:
            self.count_refusal(state, "tpm")
            raise KeyRateLimitError(
                f"Rate limit reached for this API key: {config.tpm} tokens per minute "
                "across the fleet.",
                fleet.retry_s,
            )

    def count_refusal(self, state: KeyState, reason: str) -> None:
        state.metrics["refused"][reason].inc()

    # -- accounting --------------------------------------------------------------------------
    def record(self, state: KeyState, tokens: int, cost_usd: float) -> None:
        state.in_flight -= 1
        now = self.clock()
        if tokens:
            state.tokens.add(now, tokens)
            if state.fleet is not None:
                state.fleet.unsent_tokens += tokens
            state.total_tokens += tokens
            state.metrics["tokens"].inc(tokens)
        if cost_usd > 0:
            state.total_spend_usd += cost_usd
            state.metrics["spend"].inc(cost_usd)
            start, _ = self._period(state.config.budget_period, self.wall())
            self.counters.add(state.key_id, start, cost_usd)
            if state.spend_rate is not None:
                state.spend_rate.add(now, cost_usd)
        if now - state.anomaly_checked_at >= _ANOMALY_CHECK_S or state.anomalous:
            state.anomaly_checked_at = now
            self._check_anomaly(state, now)

    def _check_anomaly(self, state: KeyState, now: float) -> None:
        if state.spend_rate is None:
            return
        anomaly = self.anomaly
        recent, rate, baseline = state.spend_rate.rates(now)
        anomalous = recent >= anomaly.min_spend_usd and rate > anomaly.factor * baseline
        if anomalous != state.anomalous:
            state.anomalous = anomalous
            state.metrics["anomaly"].set(1 if anomalous else 0)
            if anomalous:
                log.warning(
                    "client key spend rate anomalous",
                    extra={
                        "key_id": state.key_id,
                        "key_name": state.name,
                        "spend_rate_usd_per_h": round(rate * 3600, 4),
                        "baseline_usd_per_h": round(baseline * 3600, 4),
                        "throttled": anomaly.throttle,
                    },
                )
            else:
                log.info("client key spend rate back to normal", extra={"key_id": state.key_id})

    # -- operators ---------------------------------------------------------------------------
    def find(self, ident: str) -> KeyState | None:
        """A key by key id or by its name in the config."""
        state = self.keys.get(ident)
        if state is not None:
            return state
        return next((s for s in self.keys.values() if s.name == ident), None)

    def revoke(self, state: KeyState) -> None:
        self.revoked.add(state.key_id)

    def usage(self, state: KeyState) -> dict[str, object]:
        config, now, wall = state.config, self.clock(), self.wall()
        start, end = period_bounds(config.budget_period, wall)
        spent = self.counters.spent(state.key_id, start)
        recent, rate, baseline = (
            state.spend_rate.rates(now) if state.spend_rate is not None else (0.0, 0.0, 0.0)
        )
        return {
            "key_id": state.key_id,
            "name": state.name,
            "metadata": dict(config.metadata),
            "models": config.models,
            "revoked": state.key_id in self.revoked,
            "limits": {
                "rpm": config.rpm,
                "tpm": config.tpm,
                "max_parallel": config.max_parallel,
            },
            "usage": {
                "requests_last_minute": state.requests.used(now),
                "tokens_last_minute": state.tokens.used(now),
                "in_flight": state.in_flight,
                "requests_total": state.total_requests,
                "tokens_total": state.total_tokens,
                "spend_usd_total": round(state.total_spend_usd, 6),
            },
            "budget": {
                "budget_usd": config.budget_usd,
                "period": config.budget_period,
                "period_start": _iso(start),
                "period_end": _iso(end),
                "spent_usd": round(spent, 6),
                "remaining_usd": None
                if config.budget_usd is None
                else round(max(0.0, config.budget_usd - spent), 6),
            },
            "spend_rate": {
                "anomalous": state.anomalous,
                "window_spend_usd": round(recent, 6),
                "rate_usd_per_h": round(rate * 3600, 6),
                "baseline_usd_per_h": round(baseline * 3600, 6),
            },
        }

    def status_section(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "keys": len(self.keys),
            "revoked": sorted(self.revoked & set(self.keys)),
            "anomalous": sorted(s.key_id for s in self.keys.values() if s.anomalous),
        }


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class _KeyMetrics:
    """Per-key series, labelled by key id only (bounded by the configured keys).

    The counters are the lock-free accumulators the request path uses elsewhere: a request
    of a keyed client pays a few attribute increments, not prometheus-client's mutexes.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = CounterFamily(
            "routeguard_client_key_requests_total",
            "Requests admitted per client key id.",
            ["key_id"],
        )
        self.tokens = CounterFamily(
            "routeguard_client_key_tokens_total",
            "Tokens (prompt + completion) used per client key id.",
            ["key_id"],
        )
        self.spend = CounterFamily(
            "routeguard_client_key_spend_usd_total",
            "Spend in USD per client key id, at the deployments' configured prices.",
            ["key_id"],
        )
        self.refused = CounterFamily(
            "routeguard_client_key_refused_total",
            "Requests refused per client key id, by reason: " + ", ".join(REFUSAL_REASONS) + ".",
            ["key_id", "reason"],
        )
        AccumulatorCollector(registry, [self.requests, self.tokens, self.spend, self.refused])
        self.anomaly = Gauge(
            "routeguard_client_key_spend_anomaly",
            "1 while a client key's spend rate is over anomaly.factor times its baseline.",
            ["key_id"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "routeguard_client_auth_failures_total",
            "Requests with a missing or unknown client key (unknown keys make no series).",
            registry=registry,
        )

    def handles(self, kid: str) -> dict[str, Any]:
        return {
            "requests": self.requests.labels(kid),
            "tokens": self.tokens.labels(kid),
            "spend": self.spend.labels(kid),
            "refused": {reason: self.refused.labels(kid, reason) for reason in REFUSAL_REASONS},
            "anomaly": self.anomaly.labels(kid),
        }
