"""The circuit breaker's state machine, driven through time exactly with a ManualClock."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from routeguard.resilience import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    ManualClock,
    Outcome,
    Permit,
    PermitKind,
)

CLOSED, HALF_OPEN, OPEN = BreakerState.CLOSED, BreakerState.HALF_OPEN, BreakerState.OPEN
S, F, R = Outcome.SUCCESS, Outcome.FAILURE, Outcome.CONNECTION_REFUSED
AUTH, LIMITED, IGN = Outcome.AUTH_FAILURE, Outcome.RATE_LIMITED, Outcome.IGNORED

T0 = 1000.0  # away from zero, so bucket arithmetic is exercised as in production
Transition = tuple[str, BreakerState, BreakerState, str]


@dataclass
class Rig:
    breaker: CircuitBreaker
    clock: ManualClock
    transitions: list[Transition] = field(default_factory=list)

    def send(self, *outcomes: Outcome, retry_after_s: float | None = None) -> None:
        """Send one request per outcome, each admitted and finished before the next."""
        for outcome in outcomes:
            permit = self.breaker.try_acquire()
            assert permit is not None, f"breaker refused a request ({self.breaker.state.name})"
            self.breaker.record(permit, outcome, retry_after_s)

    def open_now(self) -> None:
        self.send(AUTH)
        assert self.breaker.state is OPEN

    def half_open_now(self) -> None:
        self.open_now()
        self.clock.advance(self.breaker.policy.cooldown_s)
        assert self.breaker.state is HALF_OPEN

    @property
    def reasons(self) -> list[str]:
        return [reason for *_, reason in self.transitions]


def make(policy: BreakerPolicy | None = None) -> Rig:
    clock = ManualClock(T0)
    transitions: list[Transition] = []
    breaker = CircuitBreaker(
        "dep-a",
        policy or BreakerPolicy(),
        clock,
        lambda *args: transitions.append(args),
    )
    return Rig(breaker, clock, transitions)


# -- opening on the error rate -------------------------------------------------------------

ONLY_RATE = BreakerPolicy(failures_to_open=1000)


@pytest.mark.parametrize(
    ("policy", "outcomes", "expected"),
    [
        pytest.param(BreakerPolicy(), [F] * 9, CLOSED, id="below-min-requests-all-failing"),
        pytest.param(BreakerPolicy(), [F] * 10, OPEN, id="min-requests-reached"),
        pytest.param(BreakerPolicy(), [S] * 7 + [F] * 3, OPEN, id="0.30-over-10"),
        pytest.param(BreakerPolicy(), [S] * 8 + [F] * 2, CLOSED, id="0.20-over-10"),
        pytest.param(BreakerPolicy(), [S] * 9 + [F] * 3, OPEN, id="exactly-at-threshold"),
        # The two long failure runs below would trip failures_to_open (tested on its own).
        pytest.param(ONLY_RATE, [S] * 100 + [F] * 30, CLOSED, id="0.23-over-130"),
        pytest.param(BreakerPolicy(min_requests=1), [F], OPEN, id="min-requests-1"),
        pytest.param(BreakerPolicy(error_rate=0.5), [S] * 6 + [F] * 5, CLOSED, id="0.45<0.5"),
        pytest.param(BreakerPolicy(error_rate=0.5), [S] * 5 + [F] * 5, OPEN, id="0.5>=0.5"),
        pytest.param(
            BreakerPolicy(error_rate=1.0, failures_to_open=1000),
            [S] + [F] * 20,
            CLOSED,
            id="rate-1-needs-all",
        ),
        pytest.param(BreakerPolicy(), [F] * 9 + [IGN] * 5, CLOSED, id="ignored-not-counted"),
        pytest.param(BreakerPolicy(), [F] * 9 + [S], CLOSED, id="opens-on-failures-only"),
    ],
)
def test_error_rate_threshold(
    policy: BreakerPolicy, outcomes: list[Outcome], expected: BreakerState
) -> None:
    rig = make(policy)
    rig.send(*outcomes)
    assert rig.breaker.state is expected


def test_opens_on_the_failure_that_crosses_the_threshold() -> None:
    rig = make()
    rig.send(*[S] * 9, F, F)
    assert rig.breaker.state is CLOSED
    rig.send(F)
    assert rig.breaker.state is OPEN
    assert rig.transitions == [
        ("dep-a", CLOSED, OPEN, "error_rate 0.25 >= 0.25 over 12 requests"),
    ]
    assert rig.breaker.try_acquire() is None


def test_a_run_of_failures_opens_despite_a_window_full_of_successes() -> None:
    """Under load the window holds thousands of pre-outage successes; the run opens it anyway."""
    rig = make(BreakerPolicy(failures_to_open=5))
    rig.send(*[S] * 1000, *[F] * 4)
    assert rig.breaker.state is CLOSED  # 4 / 1004 is far below the error rate
    rig.send(F)
    assert rig.breaker.state is OPEN
    assert rig.reasons == ["5 consecutive failures"]


def test_a_success_ends_the_failure_run() -> None:
    rig = make(BreakerPolicy(failures_to_open=3, min_requests=100))
    rig.send(F, F, S, F, F, S, F, F)
    assert rig.breaker.state is CLOSED
    rig.send(F)
    assert rig.breaker.state is OPEN


def test_the_default_run_is_longer_than_min_requests() -> None:
    """The error rate decides first on a quiet deployment; the run only matters under load."""
    policy = BreakerPolicy()
    assert policy.failures_to_open > policy.min_requests


# -- the sliding window ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap_s", "expected"),
    [
        pytest.param(0.0, OPEN, id="same-instant"),
        pytest.param(29.0, OPEN, id="still-in-window"),
        pytest.param(29.999, OPEN, id="last-moment-of-bucket"),
        pytest.param(30.0, CLOSED, id="aged-out"),
        pytest.param(500.0, CLOSED, id="long-idle"),
    ],
)
def test_old_failures_age_out(gap_s: float, expected: BreakerState) -> None:
    rig = make()
    rig.send(*[F] * 9)
    rig.clock.advance(gap_s)
    rig.send(F)
    assert rig.breaker.state is expected


@pytest.mark.parametrize(("at_s", "expected"), [(29.0, OPEN), (30.0, CLOSED)])
def test_window_slides_across_mixed_history(at_s: float, expected: BreakerState) -> None:
    rig = make()
    rig.send(*[F] * 5)  # at T0, under min_requests
    rig.clock.set(T0 + 20)
    rig.send(*[S] * 9)  # 14 requests, 5 failures: 0.36, but only a failure can open
    rig.clock.set(T0 + at_s)
    rig.send(F)
    # at 29 s: 15 requests, 6 failures -> 0.40; at 30 s the first 5 failures are gone:
    # 10 requests, 1 failure -> 0.10.
    assert rig.breaker.state is expected


def test_window_counts_in_snapshot_slide() -> None:
    rig = make()
    rig.send(S, S, F)
    rig.clock.set(T0 + 15)
    rig.send(S, F)
    snap = rig.breaker.snapshot()
    assert (snap.requests, snap.failures) == (5, 2)
    rig.clock.set(T0 + 30)
    snap = rig.breaker.snapshot()
    assert (snap.requests, snap.failures, snap.error_rate) == (2, 1, 0.5)
    rig.clock.set(T0 + 45)
    snap = rig.breaker.snapshot()
    assert (snap.requests, snap.failures, snap.error_rate) == (0, 0, 0.0)


# -- failures that open at once --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(None, "auth failure"), (401, "auth failure 401"), (403, "auth failure 403")],
)
def test_auth_failure_opens_at_once(status: int | None, reason: str) -> None:
    rig = make()
    rig.send(S, S, S)
    permit = rig.breaker.try_acquire()
    assert permit is not None
    rig.breaker.record(permit, AUTH, status=status)
    assert rig.breaker.state is OPEN
    assert rig.transitions == [("dep-a", CLOSED, OPEN, reason)]
    assert rig.breaker.retry_at() == T0 + 60


@pytest.mark.parametrize(
    ("policy", "outcomes", "expected"),
    [
        pytest.param(BreakerPolicy(), [R, R, R], OPEN, id="three-in-a-row"),
        pytest.param(BreakerPolicy(), [R, R], CLOSED, id="two"),
        pytest.param(BreakerPolicy(), [R, R, S, R, R], CLOSED, id="success-ends-run"),
        pytest.param(BreakerPolicy(), [R, R, IGN, R], OPEN, id="ignored-does-not-end-run"),
        pytest.param(BreakerPolicy(), [R, R, F, R], OPEN, id="other-failure-does-not-end-run"),
        pytest.param(BreakerPolicy(refusals_to_open=1), [R], OPEN, id="policy-1"),
        pytest.param(BreakerPolicy(refusals_to_open=5), [R] * 4, CLOSED, id="policy-5-four"),
        pytest.param(BreakerPolicy(refusals_to_open=5), [R] * 5, OPEN, id="policy-5-five"),
    ],
)
def test_connection_refusal_run(
    policy: BreakerPolicy, outcomes: list[Outcome], expected: BreakerState
) -> None:
    rig = make(policy)
    rig.send(*outcomes)
    assert rig.breaker.state is expected


def test_refusal_run_reason_and_counter() -> None:
    rig = make()
    rig.send(R, R)
    assert rig.breaker.snapshot().consecutive_refusals == 2
    rig.send(R)
    assert rig.reasons == ["3 consecutive connection refusals"]


def test_refusals_count_as_failures_in_the_window() -> None:
    rig = make(BreakerPolicy(min_requests=4, error_rate=0.5, refusals_to_open=10))
    rig.send(S, S, R)
    assert rig.breaker.state is CLOSED
    rig.send(R)
    assert rig.reasons == ["error_rate 0.50 >= 0.50 over 4 requests"]


# -- 429 -------------------------------------------------------------------------------------


def test_rate_limit_cools_down_without_counting_or_opening() -> None:
    rig = make(BreakerPolicy(min_requests=1))
    rig.send(LIMITED, retry_after_s=7)
    assert rig.breaker.state is CLOSED
    assert rig.breaker.try_acquire() is None
    assert not rig.breaker.available()
    assert rig.breaker.retry_at() == T0 + 7
    snap = rig.breaker.snapshot()
    assert (snap.requests, snap.failures, snap.rate_limited_until) == (0, 0, T0 + 7)
    rig.clock.advance(6.999)
    assert rig.breaker.try_acquire() is None
    rig.clock.advance(0.001)
    assert rig.breaker.available()
    assert rig.breaker.retry_at() is None
    assert rig.breaker.snapshot().rate_limited_until is None
    for _ in range(50):
        rig.send(LIMITED, retry_after_s=0)
    assert rig.breaker.state is CLOSED
    assert rig.transitions == []


@pytest.mark.parametrize(
    ("retry_after_s", "cooldown_s"),
    [
        pytest.param(None, 5.0, id="default"),
        pytest.param(2.5, 2.5, id="retry-after"),
        pytest.param(0.0, 0.0, id="zero"),
        pytest.param(-3.0, 5.0, id="negative-is-default"),
        pytest.param(math.nan, 5.0, id="nan-is-default"),
        pytest.param(86400.0, 300.0, id="capped"),
        pytest.param(math.inf, 300.0, id="inf-capped"),
    ],
)
def test_rate_limit_cooldown_length(retry_after_s: float | None, cooldown_s: float) -> None:
    rig = make()
    rig.send(LIMITED, retry_after_s=retry_after_s)
    expected = T0 + cooldown_s if cooldown_s else None
    assert rig.breaker.retry_at() == expected


def test_rate_limit_cooldown_uses_policy_default() -> None:
    rig = make(BreakerPolicy(rate_limit_cooldown_s=12.0))
    rig.send(LIMITED)
    assert rig.breaker.retry_at() == T0 + 12


@pytest.mark.parametrize(
    ("default_s", "cap_s", "retry_after_s", "cooldown_s"),
    [(5.0, 60.0, 100.0, 60.0), (600.0, 300.0, 1000.0, 600.0), (600.0, 300.0, None, 600.0)],
)
def test_retry_after_cap_is_never_below_the_default(
    default_s: float, cap_s: float, retry_after_s: float | None, cooldown_s: float
) -> None:
    policy = BreakerPolicy(rate_limit_cooldown_s=default_s, max_rate_limit_cooldown_s=cap_s)
    rig = make(policy)
    rig.send(LIMITED, retry_after_s=retry_after_s)
    assert rig.breaker.retry_at() == T0 + cooldown_s


def test_a_shorter_retry_after_does_not_shorten_a_running_cooldown() -> None:
    rig = make()
    early = rig.breaker.try_acquire()
    late = rig.breaker.try_acquire()
    assert early is not None
    assert late is not None
    rig.breaker.record(early, LIMITED, 10)
    rig.breaker.record(late, LIMITED, 2)
    assert rig.breaker.retry_at() == T0 + 10


def test_rate_limit_does_not_break_the_refusal_run_or_the_window() -> None:
    rig = make()
    rig.send(R, R)
    rig.send(LIMITED, retry_after_s=0)
    rig.send(R)
    assert rig.breaker.state is OPEN


# -- while open ------------------------------------------------------------------------------


@pytest.mark.parametrize("late", [F, AUTH, R, S, IGN])
def test_late_outcomes_do_not_touch_the_cooldown(late: Outcome) -> None:
    rig = make()
    in_flight = [rig.breaker.try_acquire() for _ in range(5)]
    rig.send(*[F] * 10)  # opens at T0
    assert rig.breaker.retry_at() == T0 + 60
    rig.clock.set(T0 + 30)
    for permit in in_flight:
        assert permit is not None
        rig.breaker.record(permit, late)
    assert rig.breaker.state is OPEN
    assert rig.breaker.retry_at() == T0 + 60
    rig.clock.set(T0 + 59.999)
    assert rig.breaker.state is OPEN
    rig.clock.set(T0 + 60)
    assert rig.breaker.state is HALF_OPEN
    assert rig.reasons == ["error_rate 1.00 >= 0.25 over 10 requests", "cooldown elapsed"]


def test_late_normal_outcome_while_half_open_is_ignored() -> None:
    rig = make()
    old = rig.breaker.try_acquire()
    assert old is not None
    rig.half_open_now()
    rig.breaker.record(old, F)
    assert rig.breaker.state is HALF_OPEN
    assert rig.breaker.available()


def test_open_refuses_until_cooldown_then_turns_half_open_lazily() -> None:
    rig = make(BreakerPolicy(cooldown_s=20))
    rig.open_now()
    assert rig.breaker.try_acquire() is None
    assert not rig.breaker.available()
    rig.clock.advance(20)
    assert rig.reasons == ["auth failure"]  # nothing fires until someone looks
    assert rig.breaker.available()
    assert rig.transitions[-1] == ("dep-a", OPEN, HALF_OPEN, "cooldown elapsed")


# -- half-open -------------------------------------------------------------------------------


@pytest.mark.parametrize("probes", [1, 2, 3])
def test_half_open_admits_only_the_probe_limit(probes: int) -> None:
    rig = make(BreakerPolicy(half_open_probes=probes))
    rig.half_open_now()
    permits = [rig.breaker.try_acquire() for _ in range(probes)]
    assert all(p is not None and p.kind is PermitKind.PROBE for p in permits)
    assert rig.breaker.try_acquire() is None
    assert not rig.breaker.available()
    assert rig.breaker.snapshot().probes_in_flight == probes
    assert rig.breaker.retry_at() is None


@pytest.mark.parametrize("outcome", [IGN, LIMITED])
def test_probe_without_a_verdict_frees_its_slot(outcome: Outcome) -> None:
    rig = make()
    rig.half_open_now()
    probe = rig.breaker.try_acquire()
    assert probe is not None
    assert rig.breaker.try_acquire() is None
    rig.breaker.record(probe, outcome, 0)
    assert rig.breaker.state is HALF_OPEN
    assert rig.breaker.snapshot().probes_in_flight == 0
    again = rig.breaker.try_acquire()
    assert again is not None
    assert again.kind is PermitKind.PROBE


def test_rate_limited_probe_waits_out_the_429_cooldown() -> None:
    rig = make()
    rig.half_open_now()
    now = rig.clock()
    rig.send(LIMITED, retry_after_s=4)
    assert rig.breaker.state is HALF_OPEN
    assert rig.breaker.try_acquire() is None
    assert rig.breaker.retry_at() == now + 4
    rig.clock.advance(4)
    assert rig.breaker.try_acquire() is not None


def test_probe_success_closes_with_an_empty_window() -> None:
    rig = make()
    rig.send(*[S] * 5, R, R)
    rig.send(AUTH)
    rig.clock.advance(60)
    rig.send(S)
    assert rig.breaker.state is CLOSED
    snap = rig.breaker.snapshot()
    assert (snap.requests, snap.failures, snap.consecutive_refusals) == (0, 0, 0)
    assert snap.opened_at is None
    assert rig.reasons == ["auth failure", "cooldown elapsed", "probe succeeded"]
    permit = rig.breaker.try_acquire()
    assert permit is not None
    assert permit.kind is PermitKind.NORMAL


@pytest.mark.parametrize("failure", [F, R, AUTH])
def test_probe_failure_reopens_for_a_full_cooldown(failure: Outcome) -> None:
    rig = make()
    rig.open_now()
    rig.clock.set(T0 + 65)  # the cooldown ended 5 s ago; nobody looked
    probe = rig.breaker.try_acquire()
    assert probe is not None
    rig.clock.set(T0 + 68)
    rig.breaker.record(probe, failure)
    assert rig.breaker.state is OPEN
    assert rig.breaker.retry_at() == T0 + 68 + 60
    assert rig.breaker.snapshot().opened_at == T0 + 68
    assert rig.transitions[-1] == ("dep-a", HALF_OPEN, OPEN, "probe failed")
    rig.clock.set(T0 + 127.999)
    assert rig.breaker.state is OPEN
    rig.clock.set(T0 + 128)
    assert rig.breaker.state is HALF_OPEN


def test_first_probe_verdict_wins_and_later_probes_are_ignored() -> None:
    rig = make(BreakerPolicy(half_open_probes=2))
    rig.half_open_now()
    first, second = rig.breaker.try_acquire(), rig.breaker.try_acquire()
    assert first is not None
    assert second is not None
    rig.breaker.record(first, S)
    rig.breaker.record(second, AUTH)
    assert rig.breaker.state is CLOSED
    assert rig.reasons[-1] == "probe succeeded"


# -- reset, hooks, snapshot ------------------------------------------------------------------


def test_reset_closes_and_forgets() -> None:
    rig = make()
    rig.send(S, F)
    in_flight = rig.breaker.try_acquire()
    assert in_flight is not None
    rig.open_now()
    rig.breaker.record(in_flight, LIMITED, 30)  # a 429 is news whenever it arrives
    assert rig.breaker.snapshot().rate_limited_until == T0 + 30
    rig.breaker.reset()
    assert rig.breaker.state is CLOSED
    assert rig.transitions[-1] == ("dep-a", OPEN, CLOSED, "reset")
    snap = rig.breaker.snapshot()
    assert (snap.requests, snap.failures, snap.retry_at, snap.rate_limited_until) == (
        0,
        0,
        None,
        None,
    )
    assert rig.breaker.try_acquire() is not None


def test_reset_while_closed_clears_without_firing() -> None:
    rig = make()
    rig.send(F, F, R)
    rig.send(LIMITED, retry_after_s=30)
    rig.breaker.reset()
    assert rig.transitions == []
    assert rig.breaker.available()
    snap = rig.breaker.snapshot()
    assert (snap.requests, snap.failures, snap.consecutive_refusals) == (0, 0, 0)


def test_outcomes_from_before_a_reset_are_ignored() -> None:
    rig = make()
    stale = rig.breaker.try_acquire()
    assert stale is not None
    rig.breaker.reset()
    rig.breaker.record(stale, AUTH)  # sent with the old key, answered after the fix
    assert rig.breaker.state is CLOSED


def test_reset_while_half_open_frees_probe_slots() -> None:
    rig = make()
    rig.half_open_now()
    probe = rig.breaker.try_acquire()
    assert probe is not None
    rig.breaker.reset()
    rig.breaker.record(probe, F)
    assert rig.breaker.state is CLOSED
    assert rig.breaker.snapshot().probes_in_flight == 0


def test_full_cycle_of_transitions() -> None:
    rig = make(BreakerPolicy(cooldown_s=10))
    rig.send(AUTH)
    rig.clock.advance(10)
    rig.send(F)
    rig.clock.advance(10)
    rig.send(S)
    assert rig.transitions == [
        ("dep-a", CLOSED, OPEN, "auth failure"),
        ("dep-a", OPEN, HALF_OPEN, "cooldown elapsed"),
        ("dep-a", HALF_OPEN, OPEN, "probe failed"),
        ("dep-a", OPEN, HALF_OPEN, "cooldown elapsed"),
        ("dep-a", HALF_OPEN, CLOSED, "probe succeeded"),
    ]


def test_hook_sees_the_new_state() -> None:
    clock = ManualClock(T0)
    seen: list[BreakerState] = []
    breaker = CircuitBreaker(
        "dep-a", BreakerPolicy(), clock, lambda *_: seen.append(breaker.snapshot().state)
    )
    permit = breaker.try_acquire()
    assert permit is not None
    breaker.record(permit, AUTH)
    clock.advance(60)
    assert breaker.state is HALF_OPEN
    assert seen == [OPEN, HALF_OPEN]


def test_snapshot_values() -> None:
    rig = make()
    rig.send(S, S, S, F, F)
    snap = rig.breaker.snapshot()
    assert snap.name == "dep-a"
    assert snap.state is CLOSED
    assert (snap.requests, snap.failures, snap.error_rate) == (5, 2, 0.4)
    assert (snap.opened_at, snap.retry_at, snap.rate_limited_until) == (None, None, None)
    rig.clock.advance(2)
    rig.open_now()
    snap = rig.breaker.snapshot()
    assert snap.state is OPEN
    assert (snap.opened_at, snap.retry_at) == (T0 + 2, T0 + 62)
    rig.clock.advance(60)
    snap = rig.breaker.snapshot()
    assert (snap.state, snap.opened_at, snap.retry_at) == (HALF_OPEN, T0 + 2, None)


def test_snapshot_of_open_and_rate_limited_breaker() -> None:
    rig = make()
    permit = rig.breaker.try_acquire()
    assert permit is not None
    rig.send(LIMITED, retry_after_s=100)
    rig.breaker.record(permit, AUTH)
    snap = rig.breaker.snapshot()
    assert snap.state is OPEN
    assert snap.rate_limited_until == T0 + 100
    assert snap.retry_at == T0 + 100  # the later of the cooldown end and the 429 end


# -- configuration and replicas --------------------------------------------------------------


def test_policy_swap_keeps_state_and_running_cooldown() -> None:
    rig = make()
    rig.open_now()
    rig.breaker.policy = BreakerPolicy(cooldown_s=10)
    assert rig.breaker.state is OPEN
    assert rig.breaker.retry_at() == T0 + 60
    rig.clock.set(T0 + 60)
    probe = rig.breaker.try_acquire()
    assert probe is not None
    rig.breaker.record(probe, F)
    assert rig.breaker.retry_at() == T0 + 70  # the new cooldown, from the next opening


def test_policy_swap_keeps_the_window_and_applies_new_thresholds() -> None:
    rig = make()
    rig.send(S, F, F)
    rig.breaker.policy = BreakerPolicy(min_requests=4, error_rate=0.5)
    rig.send(F)
    assert rig.reasons == ["error_rate 0.75 >= 0.50 over 4 requests"]


def test_policy_swap_with_a_new_window_starts_counting_afresh() -> None:
    rig = make()
    rig.send(*[F] * 9)
    rig.breaker.policy = BreakerPolicy(window_s=60)
    assert rig.breaker.snapshot().requests == 0
    rig.send(F)
    assert rig.breaker.state is CLOSED


def test_apply_remote_open_and_close() -> None:
    rig = make()
    rig.breaker.apply_remote(OPEN, T0 + 15)
    assert rig.breaker.state is OPEN
    assert rig.breaker.retry_at() == T0 + 15
    rig.breaker.apply_remote(OPEN, T0 + 25)  # re-timed; no second transition
    assert rig.breaker.retry_at() == T0 + 25
    rig.breaker.apply_remote(CLOSED, None)
    assert rig.breaker.state is CLOSED
    rig.breaker.apply_remote(CLOSED, None)
    assert rig.transitions == [
        ("dep-a", CLOSED, OPEN, "remote"),
        ("dep-a", OPEN, CLOSED, "remote"),
    ]


def test_apply_remote_open_without_until_uses_the_cooldown() -> None:
    rig = make()
    rig.clock.advance(3)
    rig.breaker.apply_remote(OPEN, None)
    assert rig.breaker.retry_at() == T0 + 63
    assert rig.breaker.snapshot().opened_at == T0 + 3


def test_apply_remote_open_until_the_past_probes_at_once() -> None:
    rig = make()
    rig.breaker.apply_remote(OPEN, T0 - 1)
    assert rig.breaker.state is HALF_OPEN
    assert rig.reasons == ["remote", "cooldown elapsed"]


def test_apply_remote_half_open() -> None:
    rig = make()
    rig.open_now()
    rig.breaker.apply_remote(HALF_OPEN, None)
    assert rig.breaker.state is HALF_OPEN
    assert rig.transitions[-1] == ("dep-a", OPEN, HALF_OPEN, "remote")


def test_apply_remote_ignores_outcomes_admitted_before() -> None:
    rig = make()
    stale = rig.breaker.try_acquire()
    assert stale is not None
    rig.breaker.apply_remote(OPEN, T0 + 5)
    rig.clock.advance(5)
    rig.breaker.record(stale, S)  # a success from before cannot close a half-open breaker
    assert rig.breaker.state is HALF_OPEN


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 0.0},
        {"error_rate": 1.5},
        {"window_s": 0.0},
        {"window_s": math.inf},
        {"min_requests": 0},
        {"cooldown_s": -1.0},
        {"half_open_probes": 0},
        {"refusals_to_open": 0},
        {"failures_to_open": 0},
        {"rate_limit_cooldown_s": -1.0},
        {"max_rate_limit_cooldown_s": -1.0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BreakerPolicy(**kwargs)


def test_permits_are_shared_values() -> None:
    rig = make()
    first, second = rig.breaker.try_acquire(), rig.breaker.try_acquire()
    assert first is second
    assert first == Permit(PermitKind.NORMAL, 0)
