"""How long to wait before retrying a failed attempt.

Exponential growth with *full jitter*: the delay before retry ``n`` is drawn uniformly between
0 and ``min(max_s, base_s * multiplier ** (n - 1))``. Growth alone spaces one client's retries
out; the jitter spreads *many* clients' retries out. When a deployment blips, every request in
flight fails at the same instant; with a fixed or merely exponential delay they would all retry
at the same later instant too, hitting the recovering upstream (or the next deployment in the
fallback list) with the same spike again and again. Drawing from the whole interval turns that
spike into a flat spread, which AWS's analysis ("Exponential Backoff and Jitter") found finishes
the retried work soonest with the fewest wasted calls. ``jitter`` below 1 keeps a floor, for
callers who want at least part of the delay guaranteed.

The random source is passed in, so tests can seed it, and ``base_s=0`` (or
:meth:`Backoff.disabled`) turns waiting off so failure-path tests run in milliseconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Delays between retries: exponential from ``base_s``, capped at ``max_s``, jittered."""

    base_s: float = 0.05
    max_s: float = 1.0
    multiplier: float = 2.0
    jitter: float = 1.0
    """The fraction of each delay that is random: 1.0 is full jitter, 0.0 none."""

    def __post_init__(self) -> None:
        if not (self.base_s >= 0 and math.isfinite(self.base_s)):
            raise ValueError(f"base_s must be a non-negative number, not {self.base_s!r}")
        if not (self.max_s >= self.base_s and math.isfinite(self.max_s)):
            raise ValueError(f"max_s must be a number >= base_s, not {self.max_s!r}")
        if not (self.multiplier >= 1 and math.isfinite(self.multiplier)):
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], not {self.jitter!r}")

    @classmethod
    def disabled(cls) -> Backoff:
        """No waiting at all: for tests, and for routers that fall back rather than wait."""
        return cls(base_s=0.0, max_s=0.0)

    def ceiling(self, attempt: int) -> float:
        """The longest delay before retry number ``attempt`` (1 = the first retry)."""
        if attempt < 1:
            raise ValueError(f"attempt counts retries from 1, not {attempt!r}")
        if self.base_s == 0:
            return 0.0
        try:
            grown = self.base_s * self.multiplier ** (attempt - 1)
        except OverflowError:  # a very late attempt: far past the cap anyway
            return self.max_s
        return min(grown, self.max_s)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        ceiling = self.ceiling(attempt)
        if ceiling == 0 or self.jitter == 0:
            return ceiling
        return ceiling * (1.0 - self.jitter * rng.random())
