"""Time for the resilience primitives: the clock they read and the windows they count in.

Breakers, cooldowns and rate limits are all questions about time ("has the cooldown elapsed?",
"how many requests in the last minute?"). Each primitive takes its clock as an argument instead
of calling :func:`time.monotonic` itself, so a test can drive a breaker through a full
open, half-open, closed cycle in microseconds with a :class:`ManualClock`, and assert exact
instants rather than sleeping and hoping.

Clocks are monotonic seconds with an arbitrary origin: they order events within one process and
say nothing about wall time, so a time read from one replica means nothing on another.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["Clock", "ManualClock", "SlidingCounter", "monotonic"]

Clock = Callable[[], float]
"""A source of monotonic seconds. Called on the hot path, so it must be cheap."""

monotonic: Clock = time.monotonic
"""The production clock."""

_MAX_BUCKETS = 120


class ManualClock:
    """A clock that moves only when a test moves it.

    It refuses to go backwards, like the monotonic clock it stands in for: code under test may
    rightly assume time never decreases, and a test that broke that would test nothing real.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (zero allowed)."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds} s)")
        self._now += seconds

    def set(self, t: float) -> None:
        """Jump to the absolute time ``t``, which must not be in the past."""
        if t < self._now:
            raise ValueError(f"a monotonic clock cannot go back (from {self._now} to {t})")
        self._now = float(t)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"


class SlidingCounter:
    """Two running sums over the last ``window_s`` seconds, kept in a ring of time buckets.

    Both the breaker (requests, failures) and the rate limiter (requests, tokens) need "how many
    in the last N seconds" on every request. Keeping every event would cost memory and time in
    proportion to traffic; a ring of fixed buckets with running totals answers in O(1) and in
    constant memory, at the price of resolution: the window is split into at most 120 buckets
    (one second each for windows up to two minutes), and an event leaves the window when its
    whole bucket does, i.e. between ``window_s - bucket_s`` and ``window_s`` after it happened.

    Times passed in must not decrease; an earlier time is treated as the latest one seen.
    """

    __slots__ = ("_first", "_head", "_second", "_size", "_total_first", "_total_second", "_width")

    def __init__(self, window_s: float) -> None:
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError(f"window_s must be a positive number, not {window_s!r}")
        self._size = min(max(math.ceil(window_s), 1), _MAX_BUCKETS)
        self._width = window_s / self._size
        self._first = [0] * self._size
        self._second = [0] * self._size
        self._total_first = 0
        self._total_second = 0
        self._head: int | None = None  # absolute index of the newest bucket

    @property
    def window_s(self) -> float:
        return self._width * self._size

    @property
    def bucket_s(self) -> float:
        """The resolution: how long one bucket spans."""
        return self._width

    def add(self, now: float, first: int = 1, second: int = 0) -> None:
        """Count ``first`` and ``second`` at time ``now``."""
        index = self._advance(now)
        slot = index % self._size
        self._first[slot] += first
        self._second[slot] += second
        self._total_first += first
        self._total_second += second

    def totals(self, now: float) -> tuple[int, int]:
        """Both sums over the window ending at ``now``."""
        self._advance(now)
        return self._total_first, self._total_second

    def clear(self) -> None:
        """Forget everything counted so far."""
        for slot in range(self._size):
            self._first[slot] = 0
            self._second[slot] = 0
        self._total_first = 0
        self._total_second = 0

    def seconds_until_below(self, now: float, limit: int, *, second: bool = False) -> float:
        """How long until a sum drops below ``limit`` if nothing more is added; 0.0 if it is.

        This walks the ring (at most 120 buckets), so it belongs on the rejection path, not on
        every request.
        """
        index = self._advance(now)
        values = self._second if second else self._first
        remaining = self._total_second if second else self._total_first
        if remaining < limit:
            return 0.0
        for absolute in range(index - self._size + 1, index + 1):
            remaining -= values[absolute % self._size]
            if remaining < limit:
                expires_at = (absolute + self._size) * self._width
                return max(expires_at - now, 0.0)
        return self.window_s  # unreachable while limit > 0: the sum reaches 0 by the newest bucket

    def _advance(self, now: float) -> int:
        """Move the ring to the bucket holding ``now``, emptying the buckets it skipped."""
        index = math.floor(now / self._width)
        head = self._head
        if head is not None and index <= head:
            return head
        if head is None or index - head >= self._size:
            self.clear()
        else:
            for absolute in range(head + 1, index + 1):
                slot = absolute % self._size
                self._total_first -= self._first[slot]
                self._total_second -= self._second[slot]
                self._first[slot] = 0
                self._second[slot] = 0
        self._head = index
        return index
