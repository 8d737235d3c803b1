"""A ``GET /admin/status`` answer in the shape of ADMIN_CONTRACT.md, for pages under test.

The status endpoint and the sections it gathers (incidents, rollouts, fleet) are built on other
branches; until they land, this stand-in lets the browser tests check that the console draws
every part of the contract. Deployments, weights and breakers come from the real app (live);
the traffic figures, incident, rollout and fleet are fixed sample values.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from routeguard.net.server import Request, Response
from routeguard.observability.metrics import BREAKER_STATE_NAMES
from routeguard.server.admin_api import AdminGuard, json_body, json_response
from routeguard.server.app import RouteGuardApp

NOW_ISO = "2026-12-04T12:00:00Z"


def _deployment(app: RouteGuardApp, group: str, name: str, weight: float) -> dict[str, object]:
    runtime = app.runtimes[name]
    retry_at = runtime.breaker.retry_at()
    file_weight = app.config.weights[group][name]
    return {
        "name": name,
        "provider": runtime.provider,
        "weight": weight,
        "file_weight": file_weight,
        "overridden": name in app.weight_overrides.get(group, {}),
        "drained": weight == 0 and file_weight > 0,
        "share_5m": 0.0 if weight == 0 else round(weight / 100, 2),
        "requests_5m": 1234,
        "error_rate_5m": 0.62 if name == "dep-b" else 0.004,
        "p50_ms": 420.0,
        "p95_ms": 1830.0,
        "breaker": {
            "state": BREAKER_STATE_NAMES[runtime.breaker.state],
            "since": NOW_ISO,
            "retry_in_s": None if retry_at is None else max(0.0, retry_at - app.clock()),
        },
        "in_flight": runtime.limiter.in_flight,
        "max_parallel_requests": 32,
    }


def _series(bad: bool) -> list[dict[str, object]]:
    points = []
    for age in range(890, -1, -10):
        failing = bad and age < 300
        points.append(
            {
                "age_s": age,
                "requests": 0 if 600 < age < 650 else 40,
                "errors": 25 if failing else age % 3,
                "p95_ms": 2400 if failing else 900 + (age % 70) * 5,
            }
        )
    return points


def status_document(app: RouteGuardApp) -> dict[str, object]:
    groups = {
        group: {
            "fallbacks": ["gpt-4o"] if group == "gpt-4-turbo" else [],
            "deployments": [_deployment(app, group, n, w) for n, w in members.items()],
        }
        for group, members in app.effective_weights().items()
    }
    provider = {
        "requests_5m": 2400,
        "error_rate_5m": 0.31,
        "errors_by_reason_5m": {"server_error": 740},
        "p50_ms": 430.0,
        "p95_ms": 2100.0,
        "deployments": 2,
        "breakers_open": 1,
    }
    return {
        "class": "P1",
        "reasons": ["error rate 62.0% over 5m above 50% for 5m on dep-b <script>alert(1)</script>"],
        "class_since": NOW_ISO,
        "generated_at": NOW_ISO,
        "replica": {
            "id": "rg-0",
            "host": "node-a",
            "pid": 4242,
            "version": "0.1.0",
            "config_version": app.config_version,
            "uptime_s": 5400.0,
        },
        "windows": {
            "1m": {
                "requests": 480,
                "errors": 150,
                "error_rate": 0.31,
                "p50_ms": 410.0,
                "p95_ms": 2050.0,
            },
            "5m": {
                "requests": 2400,
                "errors": 740,
                "error_rate": 0.31,
                "p50_ms": 430.0,
                "p95_ms": 2100.0,
            },
            "15m": {
                "requests": 7200,
                "errors": 760,
                "error_rate": 0.11,
                "p50_ms": 400.0,
                "p95_ms": 1500.0,
            },
        },
        "providers": {
            "openai": {**provider, "series": _series(bad=True)},
            "anthropic": {
                **provider,
                "error_rate_5m": 0.0,
                "breakers_open": 0,
                "deployments": 1,
                "errors_by_reason_5m": {},
                "series": _series(bad=False),
            },
        },
        "groups": groups,
        "in_flight": 3,
        "incident": {
            "id": "INC-20261204-1",
            "class": "P1",
            "opened_at": NOW_ISO,
            "summary": "dep-b answering 500s",
            "timeline": [
                {"ts": NOW_ISO, "event": "opened P1: error rate 62%"},
                {"ts": "2026-12-04T12:03:00Z", "event": "drained dep-b"},
            ],
        },
        "fleet": {
            "members": [
                {
                    "id": "rg-0",
                    "host": "node-a",
                    "pid": 4242,
                    "version": "0.1.0",
                    "config_version": app.config_version,
                    "started_at": NOW_ISO,
                    "heartbeat_age_s": 0.8,
                    "in_flight": 3,
                    "breakers": {},
                    "config_mismatch": False,
                },
                {
                    "id": "rg-1",
                    "host": "node-b",
                    "pid": 977,
                    "version": "0.1.0",
                    "config_version": "0ld0ld0ld0ld",
                    "started_at": NOW_ISO,
                    "heartbeat_age_s": 21.0,
                    "in_flight": 0,
                    "breakers": {},
                    "config_mismatch": True,
                },
            ],
            "redis": {"status": "ok", "latency_ms": 0.4},
        },
        "rollouts": {
            "rollouts": [
                {
                    "id": "ro-1",
                    "kind": "restore",
                    "deployment": "dep-b",
                    "group": "gpt-4-turbo",
                    "state": "running",
                    "step": 1,
                    "steps": [10, 25, 50, 100],
                    "share_pct": 25,
                    "verdict": None,
                    "reasons": [],
                    "guard_rails": {"max_error_rate": 0.05, "max_p95_ms": 5000},
                    "started_at": NOW_ISO,
                    "events": [],
                },
            ]
        },
    }


class StatusStandIn:
    """Serves the sample as ``GET /admin/status`` behind the real admin guard; counts calls."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self.calls: list[float] = []
        guard = AdminGuard(lambda: app.config.admin.tokens)
        handler: Callable[[Request, str], Awaitable[Response]] = self.status
        app.routes.table["/admin/status"] = {"GET": guard(handler)}

    async def status(self, request: Request, operator: str) -> Response:
        self.calls.append(time.monotonic())
        return json_response(200, status_document(self.app))


class ActionRecorder:
    """Stand-ins for the contract's action endpoints: record what the page sends, answer OK.

    Proves the buttons send the contract's bodies, with the operator's token, before the
    endpoints themselves land; the app's own endpoints of the same paths are replaced for the
    test that uses this.
    """

    PATHS = (
        ("POST", "/admin/drain"),
        ("POST", "/admin/undrain"),
        ("POST", "/admin/probe"),
        ("GET", "/admin/rollouts"),
        ("POST", "/admin/rollouts"),
        ("DELETE", "/admin/rollouts"),
        ("GET", "/admin/incidents"),
        ("POST", "/admin/incidents/open"),
        ("POST", "/admin/incidents/note"),
        ("POST", "/admin/incidents/resolve"),
    )

    def __init__(self, app: RouteGuardApp) -> None:
        self.calls: list[tuple[str, str, str, dict[str, object]]] = []
        guard = AdminGuard(lambda: app.config.admin.tokens)
        for method, path in self.PATHS:
            app.routes.table.setdefault(path, {})[method] = guard(self._handler(method, path))

    def _handler(self, method: str, path: str) -> Callable[[Request, str], Awaitable[Response]]:
        async def record(request: Request, operator: str) -> Response:
            body = json_body(request)
            self.calls.append((method, path, operator, body))
            if path == "/admin/probe":
                name = body.get("deployment")
                return json_response(
                    200,
                    {
                        "results": [
                            {"deployment": name, "status": 200, "ttfb_ms": 12.5, "total_ms": 20.1}
                        ]
                    },
                )
            if path == "/admin/drain":
                return json_response(200, {"drained": [body.get("target")], "weights": {}})
            return json_response(200, {"ok": True})

        return record
