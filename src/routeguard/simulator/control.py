"""The control API (``/_sim/...``): change faults and read stats over HTTP at runtime.

Operators rehearsing an outage drive a running simulator with ``curl``; tests use the
in-process methods of ``Simulator`` instead, which act on the same registry. Every bad
input is a 400 with a message that says which field was wrong and why.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from routeguard.simulator.delivery import json_response
from routeguard.simulator.faults import FaultRegistry, FaultSpec, StatsBook

__all__ = ["ControlAPI"]


def _bad(message: str) -> web.Response:
    return json_response({"error": message}, 400)


def _target(request: web.Request) -> str:
    return request.match_info["target"].strip("/")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "invalid fault spec: " + "; ".join(problems)


class ControlAPI:
    """HTTP handlers over one simulator's fault registry and stats book."""

    def __init__(self, faults: FaultRegistry, stats: StatsBook) -> None:
        self._faults = faults
        self._stats = stats
        self._started = time.monotonic()

    def add_routes(self, app: web.Application) -> None:
        """Register the routes; call before the providers' catch-all route."""
        router = app.router
        router.add_get("/_sim/health", self.health)
        router.add_get("/_sim/faults", self.list_faults)
        router.add_delete("/_sim/faults", self.clear_all)
        router.add_put("/_sim/faults/{target:.+}", self.put_fault)
        router.add_delete("/_sim/faults/{target:.+}", self.clear_one)
        router.add_get("/_sim/stats", self.stats)
        router.add_post("/_sim/stats/reset", self.reset_stats)

    async def health(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "status": "ok",
                "uptime_s": round(time.monotonic() - self._started, 3),
                "faults": len(self._faults.snapshot()),
            }
        )

    async def list_faults(self, request: web.Request) -> web.Response:
        specs = self._faults.snapshot()
        return json_response({"faults": {t: s.to_json() for t, s in specs.items()}})

    async def put_fault(self, request: web.Request) -> web.Response:
        target = _target(request)
        if not target:
            return _bad("target must not be empty (use '*' for all targets)")
        try:
            payload: Any = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _bad(f"body is not valid JSON: {exc}")
        if not isinstance(payload, dict):
            return _bad("body must be a JSON object of FaultSpec fields")
        try:
            spec = FaultSpec.model_validate(payload)
        except ValidationError as exc:
            return _bad(_describe(exc))
        self._faults.set(target, spec)
        return json_response({"target": target, "fault": spec.to_json()})

    async def clear_all(self, request: web.Request) -> web.Response:
        cleared = self._faults.clear()
        return json_response({"cleared": "all", "had_faults": cleared})

    async def clear_one(self, request: web.Request) -> web.Response:
        target = _target(request)
        return json_response({"cleared": target, "had_faults": self._faults.clear(target)})

    async def stats(self, request: web.Request) -> web.Response:
        snapshot = self._stats.snapshot()
        return json_response({"targets": {t: s.to_json() for t, s in snapshot.items()}})

    async def reset_stats(self, request: web.Request) -> web.Response:
        self._stats.reset()
        return json_response({"reset": True})
