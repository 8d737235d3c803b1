"""The circuit breaker: one per deployment, deciding whether it may be sent traffic.

A deployment that is failing should stop receiving requests quickly, so clients get an answer
from a healthy deployment instead of waiting on a broken one; and it should get traffic back
cautiously, so a deployment that is still broken is not flooded the moment its cooldown ends.

States
======

::

               error rate over threshold,
               auth failure, or refusal run
    CLOSED ──────────────────────────────────▶ OPEN
      ▲                                        │  ▲
      │ probe succeeded        cooldown elapsed│  │ probe failed
      │                                        ▼  │ (a full new cooldown)
      └────────────────────────────────────── HALF_OPEN

``CLOSED`` (metric value 0)
    Traffic flows. Outcomes are counted over a sliding window (``window_s``, default 30 s). The
    breaker opens when, on a failure, the window holds at least ``min_requests`` counted
    requests (default 10) and failures / requests is at least ``error_rate`` (default 0.25).
    Two kinds of failure open it at once, whatever the window says:

    * an authentication failure (401 or 403): the key is wrong or was rotated, and every further
      request would fail the same way;
    * ``refusals_to_open`` (default 3) connection refusals in a row, with no success between:
      nothing is listening, and waiting for ten samples would only add latency;
    * ``failures_to_open`` (default 20) failures of any kind in a row, with no success between:
      the deployment has answered nothing right in that many tries. Under load the window is
      full of the successes from before the outage (thousands at a few hundred requests per
      second), so the error rate alone would keep sending traffic to a dead or hung deployment
      for seconds; measured in ``bench/run.py``'s failover case, that cost 75-99 % of the
      throughput while it lasted.

``OPEN`` (metric value 2)
    No traffic for ``cooldown_s`` (default 60 s). A request that was admitted before the breaker
    opened may still finish while it is open; whatever it reports is ignored, so late failures
    neither restart, shorten nor extend the cooldown.

``HALF_OPEN`` (metric value 1)
    Entered lazily, the first time anyone looks after the cooldown has elapsed. At most
    ``half_open_probes`` requests (default 1) are let through at a time, as probes. The first
    probe to succeed closes the breaker with an empty window; a probe that fails opens it again
    for a full cooldown. A probe that ends in a client error or a 429 says nothing about health:
    it only frees its probe slot for another.

What counts
===========

================================  ==============================================================
Outcome                           effect
================================  ==============================================================
``SUCCESS``                       a request in the window; ends a refusal run
``FAILURE``                       a failed request in the window: 5xx, 529 overloaded, timeouts,
                                  connection errors, malformed upstream bodies
``CONNECTION_REFUSED``            a ``FAILURE`` that also extends the refusal run
``AUTH_FAILURE``                  opens at once
``RATE_LIMITED``                  a 429: no traffic until its ``Retry-After`` (or
                                  ``rate_limit_cooldown_s``, default 5 s) has passed, in any
                                  state; not a failure, not in the window, never opens
``IGNORED``                       nothing: client errors (400, 404, 413, content policy, context
                                  window) are the request's fault, not the deployment's
================================  ==============================================================

Every state change, and an admin :meth:`CircuitBreaker.reset`, starts a new *epoch*; a
:class:`Permit` remembers the epoch it was issued in, and outcomes reported with a permit from an
earlier epoch are ignored (a 429's cooldown excepted, which is news about the upstream whenever
it arrives). That one rule is why late failures cannot touch an open breaker's cooldown, why a
request sent before a reset cannot reopen the breaker, and why a probe that outlives its
half-open state cannot close the breaker twice.

A breaker belongs to one event loop and is not thread-safe. Everything is O(1) per request and
reads time only from the injected clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

from routeguard.resilience.clock import Clock, SlidingCounter, monotonic

__all__ = [
    "BreakerPolicy",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "Outcome",
    "Permit",
    "PermitKind",
    "TransitionHook",
]


class BreakerState(enum.IntEnum):
    """The breaker's state; the values are those of the ``router_circuit_breaker_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Outcome(enum.Enum):
    """How one request to a deployment ended, as far as the breaker is concerned."""

    SUCCESS = "success"
    FAILURE = "failure"
    AUTH_FAILURE = "auth_failure"
    CONNECTION_REFUSED = "connection_refused"
    RATE_LIMITED = "rate_limited"
    IGNORED = "ignored"


_FAILURES = frozenset({Outcome.FAILURE, Outcome.AUTH_FAILURE, Outcome.CONNECTION_REFUSED})

TransitionHook = Callable[[str, BreakerState, BreakerState, str], None]
"""Called as ``hook(name, old, new, reason)`` after every state change."""


@dataclass(frozen=True)
class BreakerPolicy:
    """How sensitive a breaker is. Replaceable at any time; the breaker's state survives."""

    error_rate: float = 0.25
    window_s: float = 30.0
    min_requests: int = 10
    cooldown_s: float = 60.0
    half_open_probes: int = 1
    """How many probe requests may be in flight at once while half-open."""
    refusals_to_open: int = 3
    failures_to_open: int = 20
    """Failures in a row (no success between) that open the breaker whatever the window says."""
    rate_limit_cooldown_s: float = 5.0
    """The 429 cooldown when the upstream sent no usable ``Retry-After``."""
    max_rate_limit_cooldown_s: float = 300.0
    """The longest a ``Retry-After`` may bench a deployment (never less than
    ``rate_limit_cooldown_s``): an upstream that says "come back tomorrow" is tried again after
    this, and says so again if it meant it."""

    def __post_init__(self) -> None:
        if not 0 < self.error_rate <= 1:
            raise ValueError(f"error_rate must be in (0, 1], not {self.error_rate!r}")
        if not (self.window_s > 0 and math.isfinite(self.window_s)):
            raise ValueError(f"window_s must be positive, not {self.window_s!r}")
        if self.min_requests < 1:
            raise ValueError(f"min_requests must be at least 1, not {self.min_requests!r}")
        if not self.cooldown_s >= 0:
            raise ValueError(f"cooldown_s must not be negative, not {self.cooldown_s!r}")
        if self.half_open_probes < 1:
            raise ValueError(f"half_open_probes must be at least 1, not {self.half_open_probes!r}")
        if self.refusals_to_open < 1:
            raise ValueError(f"refusals_to_open must be at least 1, not {self.refusals_to_open!r}")
        if self.failures_to_open < 1:
            raise ValueError(f"failures_to_open must be at least 1, not {self.failures_to_open!r}")
        if not self.rate_limit_cooldown_s >= 0:
            raise ValueError(
                f"rate_limit_cooldown_s must not be negative, not {self.rate_limit_cooldown_s!r}"
            )
        if not self.max_rate_limit_cooldown_s >= 0:
            raise ValueError(
                "max_rate_limit_cooldown_s must not be negative, "
                f"not {self.max_rate_limit_cooldown_s!r}"
            )


class PermitKind(enum.Enum):
    """A probe's outcome decides a half-open breaker; a normal one only feeds the window."""

    NORMAL = "normal"
    PROBE = "probe"


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one request; hand it back to :meth:`CircuitBreaker.record` with the outcome.

    Permits are shared values (one per kind per epoch), so taking one allocates nothing.
    """

    kind: PermitKind
    epoch: int


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker's state at one instant, for the admin API and for sharing between replicas.

    Times are readings of the breaker's clock (monotonic seconds in production), meaningful only
    within this process: convert them before sending them to another replica.
    """

    name: str
    state: BreakerState
    error_rate: float
    """failures / requests over the current window; 0.0 with no requests."""
    requests: int
    failures: int
    consecutive_refusals: int
    probes_in_flight: int
    opened_at: float | None
    """When the breaker last opened, while it is open or half-open; ``None`` when closed."""
    changed_at: float | None
    """When the breaker entered its current state; ``None`` if it never left closed."""
    retry_at: float | None
    rate_limited_until: float | None


class CircuitBreaker:
    """The breaker for one deployment. See the module documentation for the state machine."""

    __slots__ = (
        "_changed_at",
        "_clock",
        "_epoch",
        "_normal",
        "_on_transition",
        "_open_until",
        "_opened_at",
        "_policy",
        "_probe",
        "_probes",
        "_rate_limited_until",
        "_refusals",
        "_run",
        "_state",
        "_window",
        "name",
    )

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Clock = monotonic,
        on_transition: TransitionHook | None = None,
    ) -> None:
        self.name = name
        self._policy = policy
        self._clock = clock
        self._on_transition = on_transition
        self._window = SlidingCounter(policy.window_s)  # (requests, failures)
        self._state = BreakerState.CLOSED
        self._epoch = 0
        self._normal = Permit(PermitKind.NORMAL, 0)
        self._probe = Permit(PermitKind.PROBE, 0)
        self._opened_at = -math.inf
        self._changed_at: float | None = None  # None: closed since it was created
        self._open_until = -math.inf
        self._rate_limited_until = -math.inf
        self._probes = 0
        self._refusals = 0
        self._run = 0  # failures in a row

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state.name}>"

    @property
    def policy(self) -> BreakerPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: BreakerPolicy) -> None:
        """Swap the policy on a config reload.

        The state, a running cooldown and in-flight probes are kept; a new ``cooldown_s`` applies
        from the next opening. Only a changed ``window_s`` discards the counted window, whose
        buckets no longer fit.
        """
        if policy.window_s != self._policy.window_s:
            self._window = SlidingCounter(policy.window_s)
        self._policy = policy

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cooldown has elapsed turns half-open here."""
        return self._current(self._clock())

    def try_acquire(self) -> Permit | None:
        """A permit to send one request now, or ``None`` if the breaker will not let it through.

        While half-open the permit is a probe and holds one of the probe slots until recorded.
        """
        now = self._clock()
        state = self._current(now)
        if now < self._rate_limited_until:
            return None
        if state is BreakerState.CLOSED:
            return self._normal
        if state is BreakerState.HALF_OPEN and self._probes < self._policy.half_open_probes:
            self._probes += 1
            return self._probe
        return None

    def available(self) -> bool:
        """Would :meth:`try_acquire` give a permit now? Takes no probe slot."""
        now = self._clock()
        state = self._current(now)
        if now < self._rate_limited_until:
            return False
        if state is BreakerState.CLOSED:
            return True
        return state is BreakerState.HALF_OPEN and self._probes < self._policy.half_open_probes

    def record(
        self,
        permit: Permit,
        outcome: Outcome,
        retry_after_s: float | None = None,
        *,
        status: int | None = None,
    ) -> None:
        """Report how the request sent under ``permit`` ended.

        ``retry_after_s`` is the upstream's ``Retry-After`` for a 429; ``status`` only makes the
        transition reason more precise ("auth failure 401").
        """
        now = self._clock()
        if outcome is Outcome.RATE_LIMITED:
            self._rate_limit(now, retry_after_s)
        state = self._current(now)
        if permit.epoch != self._epoch:
            return  # admitted in an earlier state: see "epoch" in the module documentation
        if permit.kind is PermitKind.PROBE:
            self._record_probe(now, outcome)
        elif state is BreakerState.CLOSED:
            self._record_closed(now, outcome, status)

    def retry_at(self) -> float | None:
        """When the breaker may next admit a request, by its clock; ``None`` if it may now.

        For an open breaker that is when it turns half-open (or, if a 429 cooldown runs longer,
        when that ends); for a rate-limited one, when the cooldown ends. A half-open breaker
        whose probe slots are all taken has no known time and also gives ``None``.
        """
        now = self._clock()
        state = self._current(now)
        limited = self._rate_limited_until if now < self._rate_limited_until else None
        if state is BreakerState.OPEN:
            return self._open_until if limited is None else max(self._open_until, limited)
        return limited

    def reset(self) -> None:
        """Admin override: close, forget the window and any 429 cooldown.

        Outcomes of requests admitted before the reset are ignored afterwards, so a request sent
        with an old key cannot reopen the breaker right after the key was fixed.
        """
        self._rate_limited_until = -math.inf
        if self._state is BreakerState.CLOSED:
            self._new_epoch()
            self._clear_counts()
        else:
            self._transition(BreakerState.CLOSED, "reset")

    def apply_remote(self, state: BreakerState, until: float | None) -> None:
        """Adopt a state another replica decided (by this breaker's clock).

        ``OPEN`` opens (or re-times an open breaker) until ``until``, or for a full cooldown if
        ``until`` is ``None``; ``HALF_OPEN`` starts probing; ``CLOSED`` closes with an empty
        window. The transition hook fires only when the state changes, with reason ``"remote"``;
        a hook that publishes changes to other replicas should skip that reason, or two replicas
        would echo each other forever.
        """
        now = self._clock()
        current = self._current(now)
        if state is BreakerState.OPEN:
            self._open_until = now + self._policy.cooldown_s if until is None else until
            if current is not BreakerState.OPEN:
                self._opened_at = now
                self._transition(BreakerState.OPEN, "remote")
            self._current(now)  # an ``until`` already past turns it half-open at once
        elif state is not current:
            if current is BreakerState.CLOSED:
                self._opened_at = now  # half-open straight from closed: count it as opened now
            self._transition(state, "remote")

    def snapshot(self) -> BreakerSnapshot:
        """The breaker as the admin API shows it."""
        now = self._clock()
        state = self._current(now)
        requests, failures = self._window.totals(now)
        return BreakerSnapshot(
            name=self.name,
            state=state,
            error_rate=failures / requests if requests else 0.0,
            requests=requests,
            failures=failures,
            consecutive_refusals=self._refusals,
            probes_in_flight=self._probes,
            opened_at=None if state is BreakerState.CLOSED else self._opened_at,
            changed_at=self._changed_at,
            retry_at=self.retry_at(),
            rate_limited_until=(
                self._rate_limited_until if now < self._rate_limited_until else None
            ),
        )

    # -- internals -------------------------------------------------------------------------

    def _current(self, now: float) -> BreakerState:
        if self._state is BreakerState.OPEN and now >= self._open_until:
            # Noticed lazily, but it happened when the cooldown ended.
            self._transition(BreakerState.HALF_OPEN, "cooldown elapsed", at=self._open_until)
        return self._state

    def _rate_limit(self, now: float, retry_after_s: float | None) -> None:
        policy = self._policy
        if retry_after_s is None or not retry_after_s >= 0:  # also rejects NaN
            wait = policy.rate_limit_cooldown_s
        else:
            cap = max(policy.max_rate_limit_cooldown_s, policy.rate_limit_cooldown_s)
            wait = min(retry_after_s, cap)
        # Never shorten a cooldown already running: each 429 is a floor the upstream set.
        self._rate_limited_until = max(self._rate_limited_until, now + wait)

    def _record_probe(self, now: float, outcome: Outcome) -> None:
        self._probes = max(self._probes - 1, 0)
        if outcome is Outcome.SUCCESS:
            self._transition(BreakerState.CLOSED, "probe succeeded")
        elif outcome in _FAILURES:
            self._open(now, "probe failed")

    def _record_closed(self, now: float, outcome: Outcome, status: int | None) -> None:
        if outcome is Outcome.SUCCESS:
            self._refusals = 0
            self._run = 0
            self._window.add(now, 1, 0)
            return
        if outcome not in _FAILURES:
            return
        if outcome is Outcome.AUTH_FAILURE:
            self._open(now, "auth failure" if status is None else f"auth failure {status}")
            return
        self._window.add(now, 1, 1)
        policy = self._policy
        self._run += 1
        if outcome is Outcome.CONNECTION_REFUSED:
            self._refusals += 1
            if self._refusals >= policy.refusals_to_open:
                self._open(now, f"{self._refusals} consecutive connection refusals")
                return
        if self._run >= policy.failures_to_open:
            self._open(now, f"{self._run} consecutive failures")
            return
        requests, failures = self._window.totals(now)
        if requests < policy.min_requests:
            return
        rate = failures / requests
        if rate >= policy.error_rate:
            self._open(
                now, f"error_rate {rate:.2f} >= {policy.error_rate:.2f} over {requests} requests"
            )

    def _open(self, now: float, reason: str) -> None:
        self._opened_at = now
        self._open_until = now + self._policy.cooldown_s
        self._transition(BreakerState.OPEN, reason)

    def _transition(self, new: BreakerState, reason: str, at: float | None = None) -> None:
        """Enter ``new`` in a fresh epoch, then tell the hook.

        The hook runs last, with the breaker already consistent, so a hook that reads the breaker
        sees the new state, and one that raises leaves nothing half-done.
        """
        old = self._state
        self._state = new
        self._changed_at = self._clock() if at is None else at
        self._new_epoch()
        self._probes = 0
        if new is BreakerState.CLOSED:
            self._clear_counts()
        if self._on_transition is not None:
            self._on_transition(self.name, old, new, reason)

    def _new_epoch(self) -> None:
        self._epoch += 1
        self._normal = Permit(PermitKind.NORMAL, self._epoch)
        self._probe = Permit(PermitKind.PROBE, self._epoch)

    def _clear_counts(self) -> None:
        self._window.clear()
        self._refusals = 0
        self._run = 0
