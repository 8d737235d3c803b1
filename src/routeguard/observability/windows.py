"""Rolling windows of recent traffic: what the router itself knows about the last 15 minutes.

Prometheus answers "what happened" for whoever runs one; the router must also answer on its own
(``/admin/status``, incident classes, rollout guard rails, the console), with no Prometheus in
reach. Attempts and client answers are counted into fixed time buckets (10 s by default) holding,
per deployment, counts, errors by reason and a small latency histogram. A query merges the
buckets inside its window, so its cost depends on the window, never on the traffic.

Recording is a few dict operations per attempt; the clock is injected so tests can move time.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["LATENCY_BOUNDS_S", "ClientStats", "TrafficWindows", "WindowPoint", "WindowStats"]

# Upper bounds of the latency histogram (seconds); the last bucket is "slower than 120 s".
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip
_NBINS = len(LATENCY_BOUNDS_S) + 1


@dataclass(slots=True)
class _Cell:
    requests: int = 0
    errors: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latency: list[int] = field(default_factory=lambda: [0] * _NBINS)

    def add(self, error: str | None, latency_s: float) -> None:
        self.requests += 1
        if error is not None:
            self.errors += 1
            self.reasons[error] = self.reasons.get(error, 0) + 1
        self.latency[bisect.bisect_left(LATENCY_BOUNDS_S, latency_s)] += 1

    def merge(self, other: _Cell) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        for i, count in enumerate(other.latency):
            self.latency[i] += count


@dataclass(slots=True)
class _Bucket:
    index: int
    attempts: dict[tuple[str, str], _Cell] = field(default_factory=dict)  # (deployment, provider)
    clients: dict[str, _Cell] = field(default_factory=dict)  # model group ("" = unknown)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Upstream attempts in a window: what the runbook's error ratio is computed from."""

    window_s: float
    requests: int
    errors: int
    errors_by_reason: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rate_per_s(self) -> float:
        return self.requests / self.window_s if self.window_s else 0.0


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Client answers in a window: ``errors`` are answers with status >= 500 (the router's fault
    or every upstream's), which is what a user of the router experiences."""

    window_s: float
    requests: int
    errors: int
    by_status_class: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class WindowPoint:
    """One bucket of a series (sparklines, charts): ``age_s`` is how long ago the bucket ended."""

    age_s: float
    requests: int
    errors: int
    p95_ms: float | None


class TrafficWindows:
    """Recent attempts per deployment and client answers per group, bucketed in time."""

    def __init__(
        self, clock: Callable[[], float], *, bucket_s: float = 10.0, horizon_s: float = 900.0
    ) -> None:
        self.clock = clock
        self.bucket_s = bucket_s
        self.horizon_s = horizon_s
        self._buckets: deque[_Bucket] = deque(maxlen=int(horizon_s // bucket_s) + 1)

    # -- recording (the request path) --------------------------------------------------------
    def _current(self) -> _Bucket:
        index = int(self.clock() // self.bucket_s)
        buckets = self._buckets
        if buckets and buckets[-1].index == index:
            return buckets[-1]
        bucket = _Bucket(index)
        buckets.append(bucket)
        return bucket

    def attempt(self, deployment: str, provider: str, error: str | None, latency_s: float) -> None:
        """One finished upstream attempt; ``error`` is its failure reason, or None."""
        cells = self._current().attempts
        key = (deployment, provider)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell()
        cell.add(error, latency_s)

    def client(self, group: str | None, status: int, total_s: float) -> None:
        """One client answer (a stream: once it ended)."""
        cells = self._current().clients
        key = group or ""
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell()
        cell.add(_status_class(status), total_s)

    # -- queries -----------------------------------------------------------------------------
    def _recent(self, window_s: float) -> Iterable[_Bucket]:
        oldest = int((self.clock() - window_s) // self.bucket_s) + 1
        return [b for b in self._buckets if b.index >= oldest]

    def stats(
        self, window_s: float, *, deployment: str | None = None, provider: str | None = None
    ) -> WindowStats:
        """Attempts over the last ``window_s`` seconds, optionally for one deployment/provider."""
        total = _Cell()
        for bucket in self._recent(window_s):
            for (name, prov), cell in bucket.attempts.items():
                if (deployment is None or name == deployment) and (
                    provider is None or prov == provider
                ):
                    total.merge(cell)
        return WindowStats(
            window_s=window_s,
            requests=total.requests,
            errors=total.errors,
            errors_by_reason=dict(total.reasons),
            p50_ms=_quantile_ms(total.latency, 0.50),
            p95_ms=_quantile_ms(total.latency, 0.95),
            p99_ms=_quantile_ms(total.latency, 0.99),
        )

    def client_stats(self, window_s: float, *, group: str | None = None) -> ClientStats:
        """Client answers over the last ``window_s`` seconds, optionally for one model group."""
        total = _Cell()
        for bucket in self._recent(window_s):
            for name, cell in bucket.clients.items():
                if group is None or name == group:
                    total.merge(cell)
        errors = sum(n for cls, n in total.reasons.items() if cls == "5xx")
        ok = total.requests - sum(total.reasons.values())
        by_class = {"2xx": ok, **total.reasons}
        return ClientStats(
            window_s=window_s,
            requests=total.requests,
            errors=errors,
            by_status_class=by_class,
            p50_ms=_quantile_ms(total.latency, 0.50),
            p95_ms=_quantile_ms(total.latency, 0.95),
        )

    def series(
        self, window_s: float, *, deployment: str | None = None, provider: str | None = None
    ) -> list[WindowPoint]:
        """Attempts per bucket over the window, oldest first; empty buckets included as zeros."""
        now = self.clock()
        newest = int(now // self.bucket_s)
        count = max(1, int(window_s // self.bucket_s))
        by_index = {b.index: b for b in self._buckets}
        points = []
        for index in range(newest - count + 1, newest + 1):
            cell = _Cell()
            bucket = by_index.get(index)
            if bucket is not None:
                for (name, prov), c in bucket.attempts.items():
                    if (deployment is None or name == deployment) and (
                        provider is None or prov == provider
                    ):
                        cell.merge(c)
            age = max(0.0, now - (index + 1) * self.bucket_s)
            points.append(
                WindowPoint(age, cell.requests, cell.errors, _quantile_ms(cell.latency, 0.95))
            )
        return points

    def deployments(self) -> set[tuple[str, str]]:
        """Every (deployment, provider) seen inside the horizon."""
        return {key for bucket in self._buckets for key in bucket.attempts}


def _status_class(status: int) -> str | None:
    if status < 400:
        return None
    return "5xx" if status >= 500 else "4xx"


def _quantile_ms(histogram: list[int], q: float) -> float | None:
    """The q-quantile, interpolated inside its bucket (as Prometheus' histogram_quantile does)."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            lower = LATENCY_BOUNDS_S[i - 1] if i > 0 else 0.0
            upper = LATENCY_BOUNDS_S[i] if i < len(LATENCY_BOUNDS_S) else LATENCY_BOUNDS_S[-1]
            fraction = (rank - seen) / count
            return round((lower + (upper - lower) * fraction) * 1000, 3)
        seen += count
    return LATENCY_BOUNDS_S[-1] * 1000
