"""A breaker knows since when it is in its state (``GET /admin/status`` shows it)."""

from __future__ import annotations

from routeguard.resilience import BreakerPolicy, BreakerState, CircuitBreaker, ManualClock
from routeguard.resilience.breaker import Outcome


def test_changed_at_follows_every_transition_and_dates_half_open_at_cooldown_end():
    clock = ManualClock(100.0)
    breaker = CircuitBreaker("a", BreakerPolicy(min_requests=1, cooldown_s=30), clock)
    assert breaker.snapshot().changed_at is None  # closed since it was created
    clock.advance(5)
    permit = breaker.try_acquire()
    assert permit is not None
    breaker.record(permit, Outcome.FAILURE)
    assert breaker.snapshot().state is BreakerState.OPEN
    assert breaker.snapshot().changed_at == 105.0
    clock.advance(100)  # nobody looks until long after the cooldown ended at 135
    snap = breaker.snapshot()
    assert snap.state is BreakerState.HALF_OPEN
    assert snap.changed_at == 135.0
    probe = breaker.try_acquire()
    assert probe is not None
    breaker.record(probe, Outcome.SUCCESS)
    assert breaker.snapshot().state is BreakerState.CLOSED
    assert breaker.snapshot().changed_at == 205.0
