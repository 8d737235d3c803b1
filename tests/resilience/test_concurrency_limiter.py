"""The per-deployment concurrency limiter and the process-wide in-flight cap.

Waiting is driven by the event loop itself: tasks are started, the loop is let run until they
are queued, and slots are released by hand. Timeouts appear only as "does it raise", with long
timeouts for the waits that must succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from routeguard.errors import RouteGuardError
from routeguard.resilience import ConcurrencyLimiter, InFlightLimit, SaturatedError

LONG = 60.0  # a queue timeout that no passing test comes near


async def settle(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition`` holds (bounded, so a bug fails fast)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def waiter(limiter: ConcurrencyLimiter, got: list[str], label: str) -> asyncio.Task[None]:
    async def run() -> None:
        await limiter.acquire()
        got.append(label)

    return asyncio.create_task(run(), name=label)


def test_unlimited_never_saturates() -> None:
    limiter = ConcurrencyLimiter(None)
    assert all(limiter.try_acquire() for _ in range(1000))
    assert limiter.in_flight == 1000
    assert not limiter.saturated
    assert limiter.max_parallel is None


def test_try_acquire_takes_free_slots_only() -> None:
    limiter = ConcurrencyLimiter(2)
    assert limiter.try_acquire()
    assert not limiter.saturated
    assert limiter.try_acquire()
    assert limiter.saturated
    assert not limiter.try_acquire()
    limiter.release()
    assert limiter.in_flight == 1
    assert limiter.try_acquire()


def test_release_without_acquire_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        ConcurrencyLimiter(1).release()


async def test_acquire_returns_at_once_with_a_free_slot() -> None:
    limiter = ConcurrencyLimiter(1)
    await limiter.acquire()
    assert limiter.in_flight == 1


async def test_freed_slots_go_to_waiters_in_arrival_order() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=3, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    got: list[str] = []
    tasks = [waiter(limiter, got, label) for label in "abc"]
    await settle(lambda: limiter.queued == 3)
    assert limiter.queue_full

    limiter.release()
    # The slot was handed over, not put back: nobody can overtake the queue.
    assert limiter.in_flight == 1
    assert limiter.queued == 2
    assert not limiter.try_acquire()
    await settle(lambda: got == ["a"])

    limiter.release()
    await settle(lambda: got == ["a", "b"])
    limiter.release()
    await settle(lambda: got == ["a", "b", "c"])
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    limiter.release()
    assert limiter.in_flight == 0
    await asyncio.gather(*tasks)


async def test_full_queue_is_refused_at_once_with_retry_after() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=1, queue_timeout_s=2.5, name="vllm-a")
    assert limiter.try_acquire()
    task = waiter(limiter, [], "queued")
    await settle(lambda: limiter.queued == 1)
    with pytest.raises(SaturatedError) as caught:
        await limiter.acquire()
    error = caught.value
    assert isinstance(error, RouteGuardError)
    assert (error.status, error.error_type, error.code) == (
        429,
        "rate_limit_error",
        "deployment_saturated",
    )
    assert not error.retryable
    assert error.retry_after_s == 2.5
    assert error.headers() == [("retry-after", "3")]
    assert "vllm-a" in error.message
    assert limiter.queued == 1
    limiter.release()
    await task


async def test_no_queue_means_refused_when_saturated() -> None:
    limiter = ConcurrencyLimiter(1)
    assert limiter.queue_full
    await limiter.acquire()
    with pytest.raises(SaturatedError):
        await limiter.acquire()
    assert (limiter.in_flight, limiter.queued) == (1, 0)


async def test_wait_times_out_and_leaves_the_queue() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=2, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    with pytest.raises(SaturatedError, match="no slot free within"):
        await limiter.acquire(timeout_s=0.001)
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    limiter.release()
    assert limiter.in_flight == 0


async def test_default_timeout_is_the_queue_timeout() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=1, queue_timeout_s=0.001)
    assert limiter.try_acquire()
    with pytest.raises(SaturatedError) as caught:
        await limiter.acquire()
    assert caught.value.retry_after_s == 0.001
    assert caught.value.headers() == [("retry-after", "1")]


async def test_cancelled_waiter_leaks_nothing() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=2, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    got: list[str] = []
    doomed = waiter(limiter, got, "doomed")
    survivor = waiter(limiter, got, "survivor")
    await settle(lambda: limiter.queued == 2)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert (limiter.in_flight, limiter.queued) == (1, 1)
    limiter.release()
    await survivor
    assert got == ["survivor"]
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    limiter.release()
    assert limiter.in_flight == 0


async def test_waiter_cancelled_just_after_being_handed_a_slot_passes_it_on() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=2, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    got: list[str] = []
    doomed = waiter(limiter, got, "doomed")
    survivor = waiter(limiter, got, "survivor")
    await settle(lambda: limiter.queued == 2)
    limiter.release()  # hands the slot to "doomed", which has not resumed yet...
    doomed.cancel()  # ...and is cancelled before it can
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await survivor
    assert got == ["survivor"]
    assert (limiter.in_flight, limiter.queued) == (1, 0)
    limiter.release()
    assert limiter.in_flight == 0


async def test_handed_slot_returns_when_the_cancelled_waiter_was_last() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=1, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    doomed = waiter(limiter, [], "doomed")
    await settle(lambda: limiter.queued == 1)
    limiter.release()
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert (limiter.in_flight, limiter.queued) == (0, 0)


async def test_outer_timeout_around_acquire_is_cancellation_safe() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=1, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.001):
            await limiter.acquire()
    assert (limiter.in_flight, limiter.queued) == (1, 0)


async def test_resize_up_wakes_waiters() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=3, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    got: list[str] = []
    tasks = [waiter(limiter, got, label) for label in "abc"]
    await settle(lambda: limiter.queued == 3)
    limiter.resize(3, 3, LONG)
    assert (limiter.in_flight, limiter.queued) == (3, 1)
    await settle(lambda: got == ["a", "b"])
    limiter.resize(None, 0, LONG)
    await asyncio.gather(*tasks)
    assert got == ["a", "b", "c"]
    assert limiter.in_flight == 4


async def test_resize_down_retires_slots_as_requests_finish() -> None:
    limiter = ConcurrencyLimiter(3, max_queue=2, queue_timeout_s=LONG)
    for _ in range(3):
        assert limiter.try_acquire()
    got: list[str] = []
    task = waiter(limiter, got, "w")
    await settle(lambda: limiter.queued == 1)
    limiter.resize(1, 2, LONG)
    limiter.release()
    limiter.release()
    assert (limiter.in_flight, limiter.queued) == (1, 1)  # two slots retired, none handed on
    limiter.release()
    await task
    assert got == ["w"]
    assert (limiter.in_flight, limiter.queued) == (1, 0)


async def test_resize_smaller_queue_keeps_waiters_but_refuses_newcomers() -> None:
    limiter = ConcurrencyLimiter(1, max_queue=2, queue_timeout_s=LONG)
    assert limiter.try_acquire()
    got: list[str] = []
    tasks = [waiter(limiter, got, label) for label in "ab"]
    await settle(lambda: limiter.queued == 2)
    limiter.resize(1, 1, 5.0)
    assert limiter.queue_timeout_s == 5.0
    with pytest.raises(SaturatedError):
        await limiter.acquire()
    for _ in range(3):
        limiter.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert got == ["a", "b"]
    assert limiter.in_flight == 0


@pytest.mark.parametrize(
    ("max_parallel", "max_queue", "timeout_s"), [(0, 0, 1.0), (1, -1, 1.0), (1, 0, -1.0)]
)
def test_rejects_nonsense_sizes(max_parallel: int, max_queue: int, timeout_s: float) -> None:
    with pytest.raises(ValueError, match="must"):
        ConcurrencyLimiter(max_parallel, max_queue, timeout_s)
    limiter = ConcurrencyLimiter(1)
    with pytest.raises(ValueError, match="must"):
        limiter.resize(max_parallel, max_queue, timeout_s)


@pytest.mark.parametrize(
    ("retry_after_s", "header"),
    [
        (None, []),
        (0.2, [("retry-after", "1")]),
        (1.0, [("retry-after", "1")]),
        (1.5, [("retry-after", "2")]),
    ],
)
def test_saturated_error_retry_after_header(
    retry_after_s: float | None, header: list[tuple[str, str]]
) -> None:
    assert SaturatedError("busy", retry_after_s=retry_after_s).headers() == header


def test_in_flight_limit() -> None:
    limit = InFlightLimit(2)
    assert limit.try_enter()
    assert limit.try_enter()
    assert not limit.try_enter()
    assert limit.in_flight == 2
    limit.leave()
    assert limit.try_enter()
    limit.resize(1)
    assert not limit.try_enter()
    limit.leave()  # in flight above a lowered cap finish normally
    limit.leave()
    assert limit.try_enter()
    assert not limit.try_enter()
    assert (limit.in_flight, limit.limit) == (1, 1)


def test_in_flight_limit_misuse() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InFlightLimit(0)
    with pytest.raises(RuntimeError):
        InFlightLimit(1).leave()
