"""Inbound HTTP limits and timeouts, and how each refusal is answered.

A hand-built server must do for itself what nginx, h11 and hyper do for everyone else: bound
what one client may make the process hold (URL, headers, body, connections) and for how long
(header, body, idle and write timeouts). The defaults follow nginx and Envoy; every refusal is
answered the way nginx answers it (400/408/413/414/431, then the connection is closed) and
counted under one of :data:`REFUSAL_REASONS`, a bounded label set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from routeguard.wire.errors import error_envelope

__all__ = [
    "REFUSAL_REASONS",
    "HttpLimits",
    "refusal_body",
]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Per-process limits of the inbound HTTP server (``server:`` in the configuration)."""

    # From a new connection's accept, or a keep-alive request's first byte, to the end of headers.
    header_timeout_s: float = 30.0
    # The longest gap between two pieces of a request body.
    body_timeout_s: float = 30.0
    # An idle keep-alive connection is closed after this long.
    keep_alive_s: float = 75.0
    # A client that stops reading an answer (its socket buffer full) is cut after this long.
    write_timeout_s: float = 60.0
    max_url_bytes: int = 8 * 1024
    max_header_bytes: int = 8 * 1024
    max_headers_bytes: int = 32 * 1024
    max_headers: int = 100
    max_body_bytes: int = 10 * 1024 * 1024
    # Past this many open connections the listener stops accepting (clients wait in the backlog).
    max_connections: int = 10_000
    # Open connections one client address may hold; None: no per-address limit.
    max_connections_per_client: int | None = None

    @property
    def max_head_bytes(self) -> int:
        """What a request may send before its headers are complete: URL, headers, line ends."""
        return self.max_url_bytes + self.max_headers_bytes + 1024


REFUSAL_REASONS: Final = (
    "malformed",
    "header_timeout",
    "body_timeout",
    "write_timeout",
    "url_too_long",
    "header_too_large",
    "too_many_headers",
    "body_too_large",
    "max_connections",
    "per_client_connections",
)
"""The ``reason`` label of ``routeguard_http_refused_total``."""

_MESSAGES: Final = {
    400: ("Malformed HTTP request", None),
    408: ("Request not received in time", "request_timeout"),
    413: ("Request body too large", "request_too_large"),
    414: ("Request URL too long", "url_too_long"),
    431: ("Request header fields too large", "headers_too_large"),
    500: ("Internal server error", None),
    503: ("Too many connections from this address", "too_many_connections"),
}

_BODIES: Final = {
    status: orjson.dumps(
        error_envelope(
            message, "api_error" if status >= 500 else "invalid_request_error", code=code
        )
    )
    for status, (message, code) in _MESSAGES.items()
}


def refusal_body(status: int) -> bytes:
    """The fixed OpenAI-shaped body of a refusal: never a traceback, never client input."""
    return _BODIES.get(status, _BODIES[400])
