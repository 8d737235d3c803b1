"""The fleet's own Prometheus series, registered beside (never inside) the router's metrics.

Kept apart from ``observability/metrics.py`` so the request-path metrics can change shape
without touching these, and so a process without ``redis:`` exports none of them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["REDIS_OPS", "FleetMetrics"]

REDIS_OPS = (
    "connect",
    "publish",
    "subscribe",
    "reconcile",
    "heartbeat",
    "probe_lease",
    "lease",
    "weights",
    "admin",
    "limits",
)
"""The bounded values of the ``op`` label."""


class FleetMetrics:
    """``router_redis_*`` and ``router_fleet_*``; all set from background tasks."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "router_redis_up",
            "1 while the last Redis operation succeeded, else 0 (routing continues on local "
            "state either way).",
            registry=registry,
        )
        self.errors = Counter(
            "router_redis_errors_total",
            "Failed Redis operations by op: " + ", ".join(REDIS_OPS) + ".",
            ["op"],
            registry=registry,
        )
        self.sync_lag = Gauge(
            "router_redis_sync_lag_seconds",
            "Wall-clock age of the newest fleet state applied here when it was applied.",
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "router_redis_pool_in_use",
            "Redis connections of this process's bounded pool in use (pub/sub included).",
            registry=registry,
        )
        self.pool_max = Gauge(
            "router_redis_pool_max",
            "The bound of this process's Redis pool (redis.max_connections).",
            registry=registry,
        )
        self.members = Gauge(
            "router_fleet_members",
            "Live fleet members this process sees (itself included).",
            registry=registry,
        )
        for op in REDIS_OPS:
            self.errors.labels(op)

    def error(self, op: str) -> None:
        self.errors.labels(op if op in REDIS_OPS else "connect").inc()
