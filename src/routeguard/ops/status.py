"""``GET /admin/status``: the router's health on one page, in the shape of ADMIN_CONTRACT.md.

Everything comes from what the router holds in memory (rolling windows, breakers, weights,
limits), so it answers with no Prometheus in reach and costs the same under any traffic. Each
subsystem's own section (fleet, redis, rollouts, keys) is added from ``app.status_sections``
without this module knowing what is in it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from routeguard.observability.metrics import BREAKER_STATE_NAMES
from routeguard.observability.windows import WindowStats
from routeguard.ops.incidents import iso

if TYPE_CHECKING:
    from routeguard.ops.health import HealthMonitor
    from routeguard.server.app import RouteGuardApp

__all__ = ["WINDOWS", "build_status", "replica_info"]

log = logging.getLogger("routeguard.status")

WINDOWS = {"1m": 60.0, "5m": 300.0, "15m": 900.0}
_HOST = socket.gethostname()


def replica_info(app: RouteGuardApp) -> dict[str, Any]:
    return {
        "id": f"{_HOST}:{os.getpid()}:{app.port}",
        "host": _HOST,
        "pid": os.getpid(),
        "port": app.port,
        "version": app.version,
        "config_version": app.config_version,
        "uptime_s": round(time.time() - app.started_at, 1),
    }


def _window(stats: WindowStats) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": round(stats.error_rate, 4),
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
    }


def build_status(app: RouteGuardApp, monitor: HealthMonitor) -> dict[str, Any]:
    """The whole status document; evaluates the class first so it is never a tick old."""
    verdict = monitor.evaluate()
    windows = app.windows
    out: dict[str, Any] = {
        "class": verdict.cls.name,
        "reasons": verdict.reasons,
        "pending": verdict.pending,
        "class_since": iso(monitor.wall(verdict.since)),
        "generated_at": iso(time.time()),
        "replica": replica_info(app),
        "windows": {},
        "providers": _providers(app, monitor),
        "groups": _groups(app, monitor),
        "in_flight": app.in_flight.in_flight,
        "incident": None,
    }
    for label, seconds in WINDOWS.items():
        entry = _window(windows.stats(seconds))
        clients = windows.client_stats(seconds)
        entry["client_requests"] = clients.requests
        entry["client_errors"] = clients.errors
        entry["client_error_rate"] = round(clients.error_rate, 4)
        entry["client_p95_ms"] = clients.p95_ms
        out["windows"][label] = entry
    current = monitor.incidents.current
    if current is not None:
        out["incident"] = current.to_json()
    for key, section in list(app.status_sections.items()):
        if key in out:
            log.warning("status section %r would replace a core field; skipped", key)
            continue
        try:
            out[key] = section()
        except Exception as exc:  # one broken subsystem must not take the status page down
            log.exception("status section %r failed", key)
            out[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _providers(app: RouteGuardApp, monitor: HealthMonitor) -> dict[str, Any]:
    windows = app.windows
    runtimes = app.runtimes.deployments
    out: dict[str, Any] = {}
    for provider in sorted({rt.provider for rt in runtimes.values()}):
        stats = windows.stats(300, provider=provider)
        members = [rt for rt in runtimes.values() if rt.provider == provider]
        out[provider] = {
            "requests_5m": stats.requests,
            "error_rate_5m": round(stats.error_rate, 4),
            "errors_by_reason_5m": stats.errors_by_reason,
            "p50_ms": stats.p50_ms,
            "p95_ms": stats.p95_ms,
            "deployments": len(members),
            "breakers_open": sum(1 for rt in members if int(rt.breaker.state) != 0),
            "series": [
                {"age_s": p.age_s, "requests": p.requests, "errors": p.errors, "p95_ms": p.p95_ms}
                for p in windows.series(900, provider=provider)
            ],
        }
    return out


def _groups(app: RouteGuardApp, monitor: HealthMonitor) -> dict[str, Any]:
    config = app.config
    effective = app.effective_weights()
    runtimes = app.runtimes.deployments
    now = app.clock()
    out: dict[str, Any] = {}
    for group, members in config.weights.items():
        stats = {name: app.windows.stats(300, deployment=name) for name in members}
        total = sum(s.requests for s in stats.values())
        deployments = []
        for name, file_weight in members.items():
            runtime = runtimes.get(name)
            if runtime is None:
                continue
            weight = effective.get(group, {}).get(name, file_weight)
            overridden = name in app.weight_overrides.get(group, {})
            snap = runtime.breaker.snapshot()
            retry_in = None if snap.retry_at is None else max(0.0, round(snap.retry_at - now, 1))
            s = stats[name]
            deployments.append(
                {
                    "name": name,
                    "provider": runtime.provider,
                    "weight": weight,
                    "file_weight": file_weight,
                    "overridden": overridden,
                    "drained": overridden and weight == 0 and file_weight > 0,
                    "share_5m": round(s.requests / total, 4) if total else 0.0,
                    "requests_5m": s.requests,
                    "error_rate_5m": round(s.error_rate, 4),
                    "p50_ms": s.p50_ms,
                    "p95_ms": s.p95_ms,
                    "breaker": {
                        "state": BREAKER_STATE_NAMES[int(snap.state)],
                        "since": None
                        if snap.changed_at is None
                        else iso(monitor.wall(snap.changed_at)),
                        "retry_in_s": retry_in,
                    },
                    "in_flight": runtime.limiter.in_flight,
                    "max_parallel_requests": config.deployments[name].max_parallel_requests,
                }
            )
        out[group] = {
            "fallbacks": list(config.fallbacks.get(group, [])),
            "deployments": deployments,
        }
    return out
