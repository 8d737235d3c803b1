"""Per-deployment rpm / tpm over a sliding, bucketed minute, with a ManualClock."""

from __future__ import annotations

import pytest

from routeguard.resilience import ManualClock, RateLimiter

T0 = 1000.0


def make(rpm: int | None, tpm: int | None) -> tuple[RateLimiter, ManualClock]:
    clock = ManualClock(T0)
    return RateLimiter(rpm, tpm, clock), clock


def test_no_limits_never_waits() -> None:
    limiter, _ = make(None, None)
    for _ in range(10_000):
        limiter.record_request()
    limiter.record_tokens(10**9)
    assert limiter.retry_after() is None


def test_rpm_blocks_at_the_limit_until_the_minute_passes() -> None:
    limiter, clock = make(3, None)
    for _ in range(2):
        limiter.record_request()
    assert limiter.retry_after() is None
    limiter.record_request()
    assert limiter.retry_after() == 60.0
    clock.advance(59)
    assert limiter.retry_after() == 1.0
    clock.advance(1)
    assert limiter.retry_after() is None
    assert limiter.usage() == (0, 0)


def test_rpm_window_slides_one_request_at_a_time() -> None:
    limiter, clock = make(3, None)
    for at in (0, 10, 20):
        clock.set(T0 + at)
        limiter.record_request()
    clock.set(T0 + 30)
    assert limiter.retry_after() == 30.0  # when the request from T0 leaves the minute
    clock.set(T0 + 60)
    assert limiter.retry_after() is None
    limiter.record_request()
    assert limiter.retry_after() == 10.0  # now the one from T0 + 10 must leave first


def test_bucket_resolution_is_one_second() -> None:
    limiter, clock = make(1, None)
    clock.set(T0 + 0.5)
    limiter.record_request()
    assert limiter.retry_after() == 59.5  # leaves with its bucket, at T0 + 60


@pytest.mark.parametrize(
    ("spend", "expected"),
    [
        pytest.param([(0, 600)], None, id="under"),
        pytest.param([(0, 600), (0, 400)], 30.0, id="at-limit"),
        pytest.param([(0, 800), (30, 300)], 30.0, id="oldest-must-leave"),
        pytest.param([(0, 500), (10, 500), (20, 500)], 40.0, id="two-must-leave"),
        pytest.param([(0, 5000)], 30.0, id="one-huge-response"),
        pytest.param([(0, 0), (0, 999)], None, id="zero-is-nothing"),
    ],
)
def test_tpm(spend: list[tuple[float, int]], expected: float | None) -> None:
    limiter, clock = make(None, 1000)
    for at, tokens in spend:
        clock.set(T0 + at)
        limiter.record_tokens(tokens)
    clock.set(T0 + 30)
    assert limiter.retry_after() == expected


def test_rpm_and_tpm_wait_for_the_later() -> None:
    limiter, clock = make(2, 100)
    limiter.record_request()
    limiter.record_tokens(100)
    clock.set(T0 + 20)
    limiter.record_request()
    assert limiter.retry_after() == 40.0  # both leave at T0 + 60
    clock.set(T0 + 60)
    limiter.record_tokens(100)
    assert limiter.retry_after() == 60.0  # rpm is fine now; tpm waits until T0 + 120
    assert limiter.usage() == (1, 100)


def test_configure_keeps_the_counts() -> None:
    limiter, _ = make(10, None)
    for _ in range(5):
        limiter.record_request()
    assert limiter.retry_after() is None
    limiter.configure(5, None)
    assert limiter.retry_after() == 60.0
    assert (limiter.rpm, limiter.tpm) == (5, None)
    limiter.configure(None, None)
    assert limiter.retry_after() is None


@pytest.mark.parametrize(("rpm", "tpm"), [(0, None), (None, 0), (-5, 10)])
def test_rejects_nonsense_limits(rpm: int | None, tpm: int | None) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(rpm, tpm)
