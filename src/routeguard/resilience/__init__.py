"""Resilience primitives for the request path: circuit breakers, capacity limits, backoff.

Pure, synchronous where possible, O(1) per request, and driven by an injected clock, so the
router can consult them on every request and tests can drive them through time exactly.
"""

from routeguard.resilience.backoff import Backoff
from routeguard.resilience.breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    Outcome,
    Permit,
    PermitKind,
    TransitionHook,
)
from routeguard.resilience.clock import Clock, ManualClock, SlidingCounter, monotonic
from routeguard.resilience.limits import (
    ConcurrencyLimiter,
    InFlightLimit,
    RateLimiter,
    SaturatedError,
)

__all__ = [
    "Backoff",
    "BreakerPolicy",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "Clock",
    "ConcurrencyLimiter",
    "InFlightLimit",
    "ManualClock",
    "Outcome",
    "Permit",
    "PermitKind",
    "RateLimiter",
    "SaturatedError",
    "SlidingCounter",
    "TransitionHook",
    "monotonic",
]
