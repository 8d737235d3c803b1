"""Refusals of a client key, in OpenAI's own terms so every SDK reacts as it does to OpenAI."""

from __future__ import annotations

from routeguard.errors import RouteGuardError, retry_after_header

__all__ = [
    "BudgetExceededError",
    "ClientKeyError",
    "KeyRateLimitError",
    "ModelNotAllowedError",
]


class ClientKeyError(RouteGuardError):
    """401: no key, an unknown key, or a revoked key (OpenAI: ``invalid_api_key``)."""

    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class ModelNotAllowedError(RouteGuardError):
    """403: the key may not use this model group."""

    status = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class KeyRateLimitError(RouteGuardError):
    """429 with ``Retry-After``: the key is over its rpm, tpm or parallel-request limit."""

    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> list[tuple[str, str]]:
        return retry_after_header(self.retry_after_s)


class BudgetExceededError(KeyRateLimitError):
    """429 ``insufficient_quota``, as OpenAI answers an exhausted quota; retry at the period end."""

    error_type = "insufficient_quota"
    code = "insufficient_quota"
