"""What a client key has used: requests and tokens per minute, spend per budget period, and
its spend rate against its own trailing baseline.

Budgets are counted behind :class:`UsageCounters`, a two-method interface, so the same guard
counts per process (:class:`LocalUsage`) or fleet-wide (a Redis-backed implementation that
syncs in the background: the request path reads a number in memory and never awaits Redis).
Rate windows (rpm, tpm) are counted per process here; a fleet adds, per key, a share of the
fleet-wide rpm/tpm that the guard checks as well (``share``). ``max_parallel`` is per process.
"""

from __future__ import annotations

import calendar
import time
from collections import deque
from typing import Protocol

from routeguard.clients.schema import BudgetPeriod
from routeguard.resilience.limits import FleetShare

__all__ = [
    "LocalUsage",
    "RateWindow",
    "SpendRate",
    "UsageCounters",
    "period_bounds",
]

_MINUTE = 60.0


def period_bounds(period: BudgetPeriod, now: float) -> tuple[float, float]:
    """The UTC calendar period containing wall-clock time ``now``, as (start, end) epochs."""
    t = time.gmtime(now)
    if period == "hour":
        start = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, 0, 0))
        return float(start), float(start + 3600)
    day = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))
    if period == "day":
        return float(day), float(day + 86400)
    if period == "week":
        start = day - t.tm_wday * 86400  # Monday
        return float(start), float(start + 7 * 86400)
    start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    return float(start), float(calendar.timegm((year, month, 1, 0, 0, 0)))


class RateWindow:
    """A sliding one-minute sum (requests or tokens), exact, O(1) amortised per event."""

    __slots__ = ("_events", "total")

    def __init__(self) -> None:
        self._events: deque[tuple[float, int]] = deque()
        self.total = 0

    def used(self, now: float) -> int:
        events = self._events
        while events and events[0][0] <= now - _MINUTE:
            self.total -= events.popleft()[1]
        return self.total

    def add(self, now: float, amount: int) -> None:
        if amount:
            self._events.append((now, amount))
            self.total += amount

    def retry_after(self, now: float) -> float:
        """Seconds until the oldest event leaves the window."""
        return max(1.0, self._events[0][0] + _MINUTE - now) if self._events else 1.0


class SpendRate:
    """Spend in 10 s buckets: the short-window rate against the trailing baseline's."""

    __slots__ = ("_baseline_s", "_buckets", "_window_s")

    _BUCKET_S = 10.0

    def __init__(self, window_s: float, baseline_s: float) -> None:
        self._window_s = window_s
        self._baseline_s = baseline_s
        self._buckets: deque[list[float]] = deque()  # [bucket start, usd]

    def add(self, now: float, usd: float) -> None:
        start = now - now % self._BUCKET_S
        buckets = self._buckets
        if buckets and buckets[-1][0] == start:
            buckets[-1][1] += usd
        else:
            buckets.append([start, usd])
        horizon = now - self._window_s - self._baseline_s
        while buckets and buckets[0][0] < horizon:
            buckets.popleft()

    def rates(self, now: float) -> tuple[float, float, float]:
        """(short-window spend, short rate USD/s, baseline rate USD/s)."""
        cut = now - self._window_s
        recent = sum(usd for start, usd in self._buckets if start >= cut - self._BUCKET_S)
        older = sum(usd for start, usd in self._buckets if start < cut - self._BUCKET_S)
        return recent, recent / self._window_s, older / self._baseline_s


class UsageCounters(Protocol):
    """Spend per key and budget period; the guard reads and adds, never awaits."""

    def spent(self, key_id: str, period_start: float) -> float: ...

    def add(self, key_id: str, period_start: float, usd: float) -> None: ...

    def share(self, key_id: str) -> FleetShare | None:
        """The key's share of fleet-wide rpm/tpm, or None when limits are per process."""
        ...


class LocalUsage:
    """Spend counted in this process (no ``redis:`` configured)."""

    def __init__(self) -> None:
        self._spend: dict[tuple[str, float], float] = {}

    def share(self, key_id: str) -> FleetShare | None:
        return None

    def spent(self, key_id: str, period_start: float) -> float:
        return self._spend.get((key_id, period_start), 0.0)

    def add(self, key_id: str, period_start: float, usd: float) -> None:
        key = (key_id, period_start)
        if key not in self._spend:
            # A new period began: the old ones are never read again.
            for old in [k for k in self._spend if k[0] == key_id]:
                del self._spend[old]
        self._spend[key] = self._spend.get(key, 0.0) + usd
