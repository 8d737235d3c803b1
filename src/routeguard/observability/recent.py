"""Recent breaker transitions and error messages, kept so the router can explain itself.

Counters say *how many* attempts failed and why; an on-call engineer also asks "what did the
provider say?" and "which breakers changed in the last hour?" (the runbook's ``changes(...)``
query and log grep). Both are kept here in small bounded rings, fed only on the error and
transition paths, never on a successful request. Times are readings of the app's clock; messages
are redacted before they are stored, because they end up in admin answers and reports.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from routeguard.observability.logs import redact

__all__ = ["BreakerEvent", "BreakerHistory", "ErrorSample", "RecentErrors"]

_MESSAGE_CHARS = 200


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    at: float
    deployment: str
    provider: str
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorSample:
    at: float
    deployment: str
    provider: str
    reason: str
    message: str


class BreakerHistory:
    """The last ``size`` breaker transitions, oldest first."""

    def __init__(self, clock: Callable[[], float], size: int = 1000) -> None:
        self.clock = clock
        self._events: deque[BreakerEvent] = deque(maxlen=size)

    def add(self, deployment: str, provider: str, old: str, new: str, reason: str) -> None:
        self._events.append(BreakerEvent(self.clock(), deployment, provider, old, new, reason))

    def since(self, t: float) -> list[BreakerEvent]:
        return [e for e in self._events if e.at >= t]


class RecentErrors:
    """The last ``size`` failed attempts with their (redacted, shortened) messages."""

    def __init__(self, clock: Callable[[], float], size: int = 2000) -> None:
        self.clock = clock
        self._samples: deque[ErrorSample] = deque(maxlen=size)

    def add(self, deployment: str, provider: str, reason: str, error: object) -> None:
        message = " ".join(str(error).split())[:_MESSAGE_CHARS]
        self._samples.append(
            ErrorSample(self.clock(), deployment, provider, reason, redact(message))
        )

    def since(self, t: float) -> list[ErrorSample]:
        return [s for s in self._samples if s.at >= t]

    def top(self, t: float, limit: int = 10) -> list[tuple[ErrorSample, int]]:
        """The most frequent (provider, reason, message) since ``t``, with its newest sample."""
        counts: Counter[tuple[str, str, str]] = Counter()
        newest: dict[tuple[str, str, str], ErrorSample] = {}
        for sample in self.since(t):
            key = (sample.provider, sample.reason, sample.message)
            counts[key] += 1
            newest[key] = sample
        return [(newest[key], n) for key, n in counts.most_common(limit)]
