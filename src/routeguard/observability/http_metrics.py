"""Metrics of the inbound HTTP server: open connections and requests refused by a limit.

Kept apart from :mod:`routeguard.observability.metrics` (the router's series) because the
server knows nothing of model groups: its labels are the bounded refusal reasons of
:mod:`routeguard.net.limits`.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from routeguard.net.limits import REFUSAL_REASONS

__all__ = ["HttpMetrics"]


class HttpMetrics:
    """``routeguard_http_refused_total{reason}`` and ``routeguard_http_connections``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refused_total = Counter(
            "routeguard_http_refused_total",
            "Requests or connections refused by an inbound limit or timeout, by reason: "
            + ", ".join(REFUSAL_REASONS)
            + ".",
            ["reason"],
            registry=registry,
        )
        # Children made once: the refusal path pays a dict lookup, not labels().
        self._children = {reason: self.refused_total.labels(reason) for reason in REFUSAL_REASONS}
        self.connections = Gauge(
            "routeguard_http_connections",
            "Open client connections.",
            registry=registry,
        )

    def refused(self, reason: str) -> None:
        child = self._children.get(reason)
        if child is not None:
            child.inc()

    def track_connections(self, count: Callable[[], int]) -> None:
        """Read the open-connection count at scrape time, never on the request path."""
        self.connections.set_function(lambda: float(count()))
