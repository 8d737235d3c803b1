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


# The request's fault, not the deployment's: never counted against its health.
_CLIENT_REASONS = frozenset({"bad_request", "content_policy", "context_window"})
_BY_REASON = {"auth": Outcome.AUTH_FAILURE, "rate_limit": Outcome.RATE_LIMITED}


def classify(error: RouteGuardError | None) -> Outcome:
    if error is None:
        return Outcome.SUCCESS
    if not isinstance(error, UpstreamError):
        return Outcome.IGNORED
    if isinstance(error, UpstreamStatusError) and error.reason in _BY_REASON:
        return _BY_REASON[error.reason]
    if isinstance(error, UpstreamConnectionError) and error.refused:
        return Outcome.CONNECTION_REFUSED
    if error.reason in _CLIENT_REASONS or not error.retryable:
        return Outcome.IGNORED
    return Outcome.FAILURE
