"""Capacity limits: how much traffic a deployment, and the whole process, will take at once.

Three limits, each answering a different question:

* :class:`ConcurrencyLimiter`, per deployment: how many requests may be in flight to it
  (``max_parallel_requests``), with a short, bounded FIFO queue for bursts. A self-hosted model
  server degrades sharply past its batch size; queueing a moment here is better than piling on.
* :class:`RateLimiter`, per deployment: the provider's requests and tokens per minute, so the
  router steers away before the provider starts answering 429.
* :class:`InFlightLimit`, per process: the last line. Past it, requests are refused at once, so
  overload turns into fast 429/503 answers instead of unbounded memory and timeouts for all.

Refusals raise :class:`SaturatedError`, which carries a ``Retry-After``. Everything here belongs to
one event loop and is not thread-safe.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable

from routeguard.errors import RouteGuardError, retry_after_header
from routeguard.resilience.clock import Clock, SlidingCounter, monotonic

__all__ = ["ConcurrencyLimiter", "FleetShare", "InFlightLimit", "RateLimiter", "SaturatedError"]

_MINUTE_S = 60.0


class SaturatedError(RouteGuardError):
    """A deployment (or the process) is at capacity and the request could not wait for a slot.

    Not retryable by the router on the same deployment; the client is told when to come back.
    """

    status = 429
    error_type = "rate_limit_error"
    code = "deployment_saturated"
    retryable = False

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> list[tuple[str, str]]:
        return retry_after_header(self.retry_after_s)


class ConcurrencyLimiter:
    """At most ``max_parallel`` requests in flight, and at most ``max_queue`` waiting for a slot.

    A freed slot goes straight to the longest-waiting request (FIFO) rather than being put back
    for all waiters to race for: exactly one waiter wakes, and a newcomer cannot overtake the
    queue. A waiter that times out or is cancelled leaves the queue at once and never holds a
    slot, so cancellations (client disconnects) cannot leak capacity.
    """

    __slots__ = (
        "_in_flight",
        "_max_parallel",
        "_max_queue",
        "_name",
        "_queue_timeout_s",
        "_waiters",
    )

    def __init__(
        self,
        max_parallel: int | None,
        max_queue: int = 0,
        queue_timeout_s: float = 1.0,
        *,
        name: str = "",
    ) -> None:
        _check_sizes(max_parallel, max_queue, queue_timeout_s)
        self._max_parallel = max_parallel
        self._max_queue = max_queue
        self._queue_timeout_s = queue_timeout_s
        self._name = name
        self._in_flight = 0
        # Only waiters still waiting: a granted, timed-out or cancelled one is removed at once.
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return (
            f"<ConcurrencyLimiter {self._name!r} {self._in_flight}/{self._max_parallel} "
            f"queued {len(self._waiters)}/{self._max_queue}>"
        )

    @property
    def in_flight(self) -> int:
        """Slots held, including ones handed to a waiter that has not resumed yet."""
        return self._in_flight

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def max_parallel(self) -> int | None:
        return self._max_parallel

    @property
    def max_queue(self) -> int:
        return self._max_queue

    @property
    def queue_timeout_s(self) -> float:
        return self._queue_timeout_s

    @property
    def saturated(self) -> bool:
        """No free slot: a request now would have to queue."""
        return self._max_parallel is not None and self._in_flight >= self._max_parallel

    @property
    def queue_full(self) -> bool:
        """No room to queue another waiter (always true when ``max_queue`` is 0)."""
        return len(self._waiters) >= self._max_queue

    def try_acquire(self) -> bool:
        """Take a free slot without waiting; ``False`` if none is free or others are queued."""
        if self._waiters or self.saturated:
            return False
        self._in_flight += 1
        return True

    async def acquire(self, timeout_s: float | None = None) -> None:
        """Take a slot, queueing (FIFO) for at most ``timeout_s``, else ``queue_timeout_s``.

        Raises :class:`SaturatedError` at once when the queue is full, or when the wait times out.
        The caller must :meth:`release` the slot when the request ends.
        """
        if self.try_acquire():
            return
        if self.queue_full:
            raise self._saturated(f"{self.queued} requests already queued")
        timeout = self._queue_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, self._time_out, waiter, timeout)
        try:
            await waiter
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        finally:
            timer.cancel()

    def release(self) -> None:
        """Give a slot back, handing it to the first waiter if there is one."""
        if self._in_flight <= 0:
            raise RuntimeError("ConcurrencyLimiter.release() without a matching acquire")
        # After a resize downwards more slots may be held than allowed: those are retired, not
        # handed on, until the count is back under the new limit.
        if self._waiters and (self._max_parallel is None or self._in_flight <= self._max_parallel):
            self._waiters.popleft().set_result(None)  # the slot changes hands; count unchanged
            return
        self._in_flight -= 1

    def resize(self, max_parallel: int | None, max_queue: int, queue_timeout_s: float) -> None:
        """Apply new limits on a config reload, keeping slots held and waiters queued.

        More slots wake waiters at once. Fewer slots take effect as requests finish: nothing in
        flight is interrupted. A smaller queue turns away newcomers until it drains, but never
        evicts a waiter; a new timeout applies to waiters that arrive from now on.
        """
        _check_sizes(max_parallel, max_queue, queue_timeout_s)
        self._max_parallel = max_parallel
        self._max_queue = max_queue
        self._queue_timeout_s = queue_timeout_s
        while self._waiters and not self.saturated:
            self._in_flight += 1
            self._waiters.popleft().set_result(None)

    def _time_out(self, waiter: asyncio.Future[None], timeout: float) -> None:
        if waiter.done():
            return
        self._waiters.remove(waiter)
        waiter.set_exception(self._saturated(f"no slot free within {timeout:g} s"))

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        """Clean up after a waiter cancelled while queued, or just after being handed a slot."""
        if not waiter.done() or waiter.cancelled():
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        elif waiter.exception() is None:
            self.release()  # granted a slot, but cancelled before it could resume: pass it on

    def _saturated(self, why: str) -> SaturatedError:
        who = f"deployment {self._name!r}" if self._name else "deployment"
        return SaturatedError(
            f"{who} is at capacity ({self._max_parallel} in flight): {why}",
            retry_after_s=self._queue_timeout_s,
        )


def _check_sizes(max_parallel: int | None, max_queue: int, queue_timeout_s: float) -> None:
    if max_parallel is not None and max_parallel < 1:
        raise ValueError(f"max_parallel must be at least 1 or None, not {max_parallel!r}")
    if max_queue < 0:
        raise ValueError(f"max_queue must not be negative, not {max_queue!r}")
    if not (queue_timeout_s >= 0 and math.isfinite(queue_timeout_s)):
        raise ValueError(f"queue_timeout_s must be a non-negative number, not {queue_timeout_s!r}")


class FleetShare:
    """This process's share of a fleet-wide rpm/tpm budget, topped up in the background.

    The fleet (``routeguard.fleet.limits``) reserves request grants in batches from a counter in
    Redis and reports the fleet's token total; the request path only reads and decrements these
    attributes. ``active`` is false while Redis is unreachable: the process then limits on its
    own counts alone, as without a fleet.
    """

    __slots__ = (
        "active",
        "expires",
        "granted",
        "minute",
        "on_empty",
        "retry_s",
        "tokens_blocked",
        "unsent_tokens",
    )

    def __init__(self, on_empty: Callable[[], None] | None = None) -> None:
        self.on_empty = on_empty
        """Called (no I/O: it sets an event) when the grant runs out, to top it up at once."""
        self.active = False
        self.expires = 0.0
        """When (by the limiter's clock) the wall-clock minute of ``granted`` ends."""
        self.granted = 0
        self.minute = -1
        self.retry_s = 1.0
        self.tokens_blocked = False
        self.unsent_tokens = 0


class RateLimiter:
    """A deployment's requests-per-minute and tokens-per-minute budget, over a sliding minute.

    The router asks :meth:`retry_after` before choosing a deployment, then reports what it sent
    with :meth:`record_request` and, once the response says how many tokens it used,
    :meth:`record_tokens`. Tokens are only known afterwards, so ``tpm`` is a soft limit: a burst
    admitted under it may overshoot, and the deployment then rests until the minute catches up.
    Counts are kept in one-second buckets, so an event leaves the minute 59 to 60 s later.
    """

    __slots__ = ("_clock", "_counter", "_rpm", "_tpm", "fleet")

    def __init__(self, rpm: int | None, tpm: int | None, clock: Clock = monotonic) -> None:
        _check_rates(rpm, tpm)
        self._rpm = rpm
        self._tpm = tpm
        self._clock = clock
        self._counter = SlidingCounter(_MINUTE_S)  # (requests, tokens)
        self.fleet: FleetShare | None = None
        """Set by a fleet: the limits then hold across every process sharing its Redis."""

    @property
    def rpm(self) -> int | None:
        return self._rpm

    @property
    def tpm(self) -> int | None:
        return self._tpm

    def configure(self, rpm: int | None, tpm: int | None) -> None:
        """Change the limits on a config reload, keeping the last minute's counts."""
        _check_rates(rpm, tpm)
        self._rpm = rpm
        self._tpm = tpm

    def usage(self) -> tuple[int, int]:
        """(requests, tokens) counted over the last minute."""
        return self._counter.totals(self._clock())

    def retry_after(self) -> float | None:
        """``None`` if a request may go now, else the seconds until one may."""
        if self._rpm is None and self._tpm is None:
            return None
        now = self._clock()
        fleet = self.fleet
        if fleet is not None and fleet.active:
            if now >= fleet.expires:  # the grants' minute is over: none may be spent in the next
                if fleet.on_empty is not None:
                    fleet.on_empty()
                return fleet.retry_s
            if (self._rpm is not None and fleet.granted <= 0) or fleet.tokens_blocked:
                return fleet.retry_s
        requests, tokens = self._counter.totals(now)
        wait = 0.0
        if self._rpm is not None and requests >= self._rpm:
            wait = self._counter.seconds_until_below(now, self._rpm)
        if self._tpm is not None and tokens >= self._tpm:
            wait = max(wait, self._counter.seconds_until_below(now, self._tpm, second=True))
        return wait if wait > 0 else None

    def record_request(self) -> None:
        self._counter.add(self._clock(), 1, 0)
        fleet = self.fleet
        if fleet is not None:
            fleet.granted -= 1
            if fleet.granted <= 0 and fleet.on_empty is not None:
                fleet.on_empty()

    def record_tokens(self, tokens: int) -> None:
        if tokens > 0:
            self._counter.add(self._clock(), 0, tokens)
            if self.fleet is not None:
                self.fleet.unsent_tokens += tokens


def _check_rates(rpm: int | None, tpm: int | None) -> None:
    if rpm is not None and rpm < 1:
        raise ValueError(f"rpm must be at least 1 or None, not {rpm!r}")
    if tpm is not None and tpm < 1:
        raise ValueError(f"tpm must be at least 1 or None, not {tpm!r}")


class InFlightLimit:
    """The process-wide cap on requests being served at once.

    Checked first, before any parsing or routing work, so that under overload the process spends
    almost nothing on requests it is going to refuse anyway.
    """

    __slots__ = ("_in_flight", "_limit")

    def __init__(self, limit: int) -> None:
        _check_limit(limit)
        self._limit = limit
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def limit(self) -> int:
        return self._limit

    def resize(self, limit: int) -> None:
        """A new cap; requests already in flight above it are let finish."""
        _check_limit(limit)
        self._limit = limit

    def try_enter(self) -> bool:
        if self._in_flight >= self._limit:
            return False
        self._in_flight += 1
        return True

    def leave(self) -> None:
        if self._in_flight <= 0:
            raise RuntimeError("InFlightLimit.leave() without a matching try_enter")
        self._in_flight -= 1


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit!r}")
