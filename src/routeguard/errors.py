"""The one exception tree of RouteGuard.

Every error a client can see is a :class:`RouteGuardError`. Each class knows the HTTP status it
answers with, the OpenAI error ``type`` it reports, and whether the router may retry the attempt
on another deployment. Foreign errors (socket errors, provider error bodies) are translated once,
at the boundary where they occur, with ``raise Ours(...) from exc``; nothing above that boundary
classifies errors by message text.

::

    RouteGuardError
    ├── ConfigError                     bad configuration file (not an HTTP error)
    ├── ClientError                     the request itself is wrong: never retried
    │   ├── InvalidRequestError         400 invalid_request_error
    │   ├── ModelNotFoundError          404 model_not_found
    │   └── PayloadTooLargeError        413 request body over the configured limit
    ├── NoDeploymentAvailableError      503 the group has nothing routable (Retry-After)
    ├── AttemptsFailedError             every attempt failed: the last one's status, all listed
    └── UpstreamError                   an attempt at one deployment failed
        ├── UpstreamConnectionError     502 refused / reset / DNS: retryable
        ├── UpstreamTimeoutError        504 connect, first byte, idle or total: retryable
        ├── UpstreamBadResponseError    502 malformed body or stream: retryable
        ├── UpstreamStatusError         the provider answered with an error status
        │   └── ContentPolicyError      400 a content filter refused the prompt
        └── UnsupportedByDeploymentError 400 this deployment cannot serve it; another may
"""

from __future__ import annotations

import math

__all__ = [
    "AttemptsFailedError",
    "ClientError",
    "ConfigError",
    "ContentPolicyError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoDeploymentAvailableError",
    "PayloadTooLargeError",
    "RouteGuardError",
    "UnsupportedByDeploymentError",
    "UpstreamBadResponseError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
]


class RouteGuardError(Exception):
    """Base of every error RouteGuard raises on purpose."""

    status: int = 500
    error_type: str = "api_error"
    code: str | None = None
    retryable: bool = False

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def headers(self) -> list[tuple[str, str]]:
        """Extra response headers the client should see (e.g. ``Retry-After``)."""
        return []


def retry_after_header(seconds: float | None) -> list[tuple[str, str]]:
    """A ``Retry-After`` header in whole seconds, rounded up: a client told to come back before
    the limit frees would only be refused again."""
    if seconds is None:
        return []
    return [("retry-after", str(max(1, math.ceil(seconds))))]


class ConfigError(RouteGuardError):
    """A configuration file is invalid; the message names the file, the key path and why."""

    def __init__(self, path: str, key: str, reason: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason


class ClientError(RouteGuardError):
    """The request is wrong; another deployment would refuse it too."""

    status = 400
    error_type = "invalid_request_error"


class InvalidRequestError(ClientError):
    """Malformed JSON, a missing field, or a field of the wrong type."""


class ModelNotFoundError(ClientError):
    status = 404
    code = "model_not_found"


class PayloadTooLargeError(ClientError):
    status = 413
    code = "request_too_large"


class AttemptsFailedError(RouteGuardError):
    """Every attempt failed; the client sees the last failure, and the message lists them all.

    Status, type, code and headers are the last attempt's, so an SDK reacts to the kind of
    failure (a 429 stays a 429 with its ``Retry-After``); the message names every deployment
    tried and what it answered, which is what an operator needs from a single log line.
    """

    def __init__(self, failures: list[RouteGuardError]) -> None:
        last = failures[-1]
        parts = [f"{_where(error)}{error.message}" for error in failures]
        super().__init__(f"All {len(failures)} attempts failed: " + "; ".join(parts))
        self.failures = failures
        self.status = last.status
        self.error_type = last.error_type
        self.code = last.code
        self.param = last.param
        self.last = last

    def headers(self) -> list[tuple[str, str]]:
        return self.last.headers()


def _where(error: RouteGuardError) -> str:
    deployment = getattr(error, "deployment", "")
    return f"[{deployment}] " if deployment else ""


class NoDeploymentAvailableError(RouteGuardError):
    """Nothing in the model group can take the request right now."""

    status = 503
    error_type = "service_unavailable"
    code = "no_deployment_available"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> list[tuple[str, str]]:
        return retry_after_header(self.retry_after_s)


class UpstreamError(RouteGuardError):
    """One attempt at one deployment failed. ``deployment`` names it for logs and metrics."""

    status = 502
    error_type = "upstream_error"
    retryable = True
    reason = "server_error"

    def __init__(self, message: str, *, deployment: str = "", provider: str = "") -> None:
        super().__init__(message)
        self.deployment = deployment
        self.provider = provider


class UpstreamConnectionError(UpstreamError):
    """The upstream could not be reached, or dropped the connection.

    ``refused`` marks an active refusal (nothing listening): a run of those opens the breaker at
    once, since the deployment is plainly down.
    """

    code = "upstream_unreachable"
    reason = "connection"

    def __init__(
        self, message: str, *, deployment: str = "", provider: str = "", refused: bool = False
    ) -> None:
        super().__init__(message, deployment=deployment, provider=provider)
        self.refused = refused


class UpstreamTimeoutError(UpstreamError):
    status = 504
    error_type = "timeout"
    code = "upstream_timeout"
    reason = "timeout"


class UpstreamBadResponseError(UpstreamError):
    code = "upstream_bad_response"
    reason = "bad_response"


class UpstreamStatusError(UpstreamError):
    """The provider answered with an error status.

    The provider's own status, message, type and code are kept so a client error (a 400 for a bad
    parameter) reaches the client as the provider said it. Retryability and the metrics ``reason``
    follow from the status and the provider's structured error type, decided by the adapter.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after_s: float | None = None,
        deployment: str = "",
        provider: str = "",
    ) -> None:
        super().__init__(message, deployment=deployment, provider=provider)
        self.upstream_status = status
        # A provider's client error is the client's to fix, so it passes through as said; a
        # provider's server error is a bad gateway from the client's point of view.
        self.status = status if status < 500 else 502
        self.param = param
        self.code = code
        self.retry_after_s = retry_after_s
        self.error_type = error_type or _default_type(status)
        self.reason = _reason_for(status, code)
        self.retryable = self.reason in _RETRYABLE_REASONS or status in (408, 409)

    def headers(self) -> list[tuple[str, str]]:
        return retry_after_header(self.retry_after_s)


class ContentPolicyError(UpstreamStatusError):
    """The provider's content filter refused the prompt.

    Another deployment would refuse it too (the client must change the prompt), so it is not
    retried; ``content_policy_fallbacks`` may still send it to a group with another policy.
    """

    def __init__(
        self, message: str, *, param: str | None = None, deployment: str = "", provider: str = ""
    ) -> None:
        super().__init__(
            message,
            status=400,
            error_type="invalid_request_error",
            code="content_filter",
            param=param,
            deployment=deployment,
            provider=provider,
        )


class UnsupportedByDeploymentError(UpstreamError):
    """This deployment cannot serve this request (a parameter its provider lacks, embeddings
    from a chat-only provider), though another member of the group may.

    Raised by an adapter before anything is sent. The router tries another deployment and never
    this one again for the request; the breaker ignores it. If no deployment can serve it, the
    client gets this 400 with the parameter named.
    """

    status = 400
    error_type = "invalid_request_error"
    code = "unsupported_parameter"
    reason = "bad_request"

    def __init__(self, message: str, *, param: str | None = None, deployment: str = "") -> None:
        super().__init__(message, deployment=deployment)
        self.param = param


def _default_type(status: int) -> str:
    if status in (401, 403):
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    if status < 500:
        return "invalid_request_error"
    return "api_error"


# Retryable means "another deployment may well succeed": outages, overload, rate limits, and a
# bad or rotated provider key (the client's own credentials are not involved).
_RETRYABLE_REASONS = frozenset({"rate_limit", "overloaded", "server_error", "auth"})

# Structured error codes (never message text) that mark a request too long for the model, or
# refused by a content filter: the client's problem, answered by dedicated fallbacks if any.
CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
CONTENT_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})


_REASON_BY_STATUS = {401: "auth", 403: "auth", 429: "rate_limit", 529: "overloaded"}


def _reason_for(status: int, code: str | None = None) -> str:
    if code in CONTEXT_WINDOW_CODES:
        return "context_window"
    if code in CONTENT_POLICY_CODES:
        return "content_policy"
    default = "server_error" if status >= 500 else "bad_request"
    return _REASON_BY_STATUS.get(status, default)
