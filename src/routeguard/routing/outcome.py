"""What a finished attempt means for its deployment's circuit breaker.

Decided from the error's class, status and structured reason only, never from message text:
provider outages count against the deployment, client mistakes never do, and rate limiting
pauses the deployment without calling it broken.
"""

from __future__ import annotations

from routeguard.errors import (
    RouteGuardError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
)
from routeguard.resilience import Outcome

__all__ = ["classify"]


def classify(error: RouteGuardError | None) -> Outcome:
    if error is None:
        return Outcome.SUCCESS
    if isinstance(error, UpstreamStatusError):
        if error.reason == "auth":
            return Outcome.AUTH_FAILURE
        if error.reason == "rate_limit":
            return Outcome.RATE_LIMITED
        return Outcome.FAILURE if error.retryable else Outcome.IGNORED
    if isinstance(error, UpstreamConnectionError) and error.refused:
        return Outcome.CONNECTION_REFUSED
    if isinstance(error, UpstreamError):
        return Outcome.FAILURE if error.retryable else Outcome.IGNORED
    return Outcome.IGNORED
