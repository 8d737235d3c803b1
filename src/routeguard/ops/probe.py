"""Probes: one tiny, timed request straight to a deployment, and the active health checks.

The runbook's "curl each provider" step, done through the deployment's own adapter so the probe
speaks the provider's wire format (Anthropic's ``/v1/messages``, Azure's deployments path and
``api-key``), with its key and TLS settings, but outside routing: no strategy, no retries, no
fallbacks, no concurrency slot. A probe asks for one token as a stream, which gives both the
time to the first byte of the answer and the total.

:class:`HealthChecker` runs probes on a schedule against deployments whose breaker is not closed.
It never decides health itself: it asks the breaker for a permit and reports the outcome with it,
so the breaker's state machine stays the single authority (an open breaker gives no permit until
its cooldown has elapsed; a half-open one gives its probe permit, and the probe's success closes
it). That is how recovery is noticed without sending a user's request to a broken deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from routeguard.errors import RouteGuardError, UpstreamStatusError, UpstreamTimeoutError
from routeguard.providers.base import Provider
from routeguard.providers.registry import build_endpoint, build_provider
from routeguard.resilience import BreakerState, Permit, PermitKind
from routeguard.routing.outcome import classify
from routeguard.wire.chat import ChatRequest, parse_chat_request

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["HealthChecker", "ProbeResult", "Prober", "probe_provider"]

log = logging.getLogger("routeguard.probe")

PROBE_PROMPT = "RouteGuard health probe: reply with one word."


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """How one probe went. ``status`` is the HTTP status the upstream answered (0: none)."""

    deployment: str
    provider: str
    status: int
    ttfb_ms: float | None
    total_ms: float
    error: str | None = None
    reason: str | None = None
    """The error's classified reason (``auth``, ``server_error``...), for diagnosis."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "deployment": self.deployment,
            "provider": self.provider,
            "status": self.status,
            "ok": self.ok,
            "ttfb_ms": self.ttfb_ms,
            "total_ms": self.total_ms,
        }
        if self.error is not None:
            out["error"] = self.error
            out["reason"] = self.reason
        return out


def _probe_request(model: str) -> ChatRequest:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
        "max_tokens": 1,
        "stream": True,
    }
    return parse_chat_request(orjson.dumps(body))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def probe_provider(
    provider: Provider, timeout_s: float
) -> tuple[ProbeResult, RouteGuardError | None]:
    """Send one probe through ``provider``; the result and the error it ended with, if any."""
    endpoint = provider.endpoint
    started = time.perf_counter()
    ttfb: float | None = None
    error: RouteGuardError | None = None
    try:
        async with asyncio.timeout(timeout_s):
            stream = await provider.open_chat_stream(_probe_request(endpoint.model))
            try:
                async for chunk in stream:
                    if ttfb is None and chunk:
                        ttfb = time.perf_counter() - started
            finally:
                await stream.aclose()
    except TimeoutError:
        error = UpstreamTimeoutError(
            f"no complete answer within {timeout_s:g} s", deployment=endpoint.deployment
        )
    except RouteGuardError as exc:
        error = exc
    total = time.perf_counter() - started
    if error is None:
        status = 200
    elif isinstance(error, UpstreamStatusError):
        status = error.upstream_status
    else:
        status = 0
    result = ProbeResult(
        deployment=endpoint.deployment,
        provider=endpoint.provider,
        status=status,
        ttfb_ms=None if ttfb is None else _ms(ttfb),
        total_ms=_ms(total),
        error=None if error is None else error.message,
        reason=None if error is None else str(getattr(error, "reason", type(error).__name__)),
    )
    return result, error


class Prober:
    """Probes the deployments of one app, by name, with their current configuration."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app

    def names(self) -> list[str]:
        return list(self.app.config.deployments)

    def provider(self, name: str) -> Provider:
        """The adapter routing uses for ``name`` (or a fresh one for a deployment in no group)."""
        for group in self.app.router.groups.values():
            for member in group.members:
                if member.name == name:
                    return member.provider
        config = self.app.config
        return build_provider(
            build_endpoint(name, config.deployments[name], config.routing), self.app.pool
        )

    async def probe(self, name: str) -> tuple[ProbeResult, RouteGuardError | None]:
        return await probe_provider(self.provider(name), self.app.config.health_checks.timeout_s)

    async def probe_many(self, names: list[str]) -> list[ProbeResult]:
        """Probe ``names`` at once (a slow deployment does not delay the others' figures)."""
        results = await asyncio.gather(*(self.probe(name) for name in names))
        return [result for result, _ in results]


class HealthChecker:
    """Probes deployments whose breaker is not closed, through the breaker's own probe permit."""

    def __init__(self, app: RouteGuardApp, prober: Prober) -> None:
        self.app = app
        self.prober = prober
        self.probes_sent = 0
        self.recoveries = 0
        self._busy: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def status_section(self) -> object:
        """``GET /admin/status``'s ``health_checks``: is it on, and what has it done."""
        settings = self.app.config.health_checks
        return {
            "interval_s": settings.interval_s,
            "enabled": settings.interval_s > 0,
            "probes_sent": self.probes_sent,
            "recoveries": self.recoveries,
            "probing": sorted(self._busy),
        }

    def start(self) -> None:
        if self._task is None and self.app.config.health_checks.interval_s > 0:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            interval = self.app.config.health_checks.interval_s  # a reload may change it
            await asyncio.sleep(interval if interval > 0 else 1.0)
            if interval > 0:
                await self.check_once()

    async def check_once(self) -> int:
        """Probe every deployment whose breaker hands out a probe permit now; how many."""
        tasks = []
        for name, runtime in list(self.app.runtimes.deployments.items()):
            breaker = runtime.breaker
            if name in self._busy or breaker.state is BreakerState.CLOSED:
                continue
            permit = breaker.try_acquire()
            if permit is None:
                continue  # still cooling down: the state machine says not yet
            if permit.kind is not PermitKind.PROBE:
                continue  # closed meanwhile: a normal permit needs no report
            self._busy.add(name)
            tasks.append(self._probe(name, permit))
        await asyncio.gather(*tasks)
        return len(tasks)

    async def _probe(self, name: str, permit: Permit) -> None:
        runtime = self.app.runtimes.deployments.get(name)
        try:
            result, error = await self.prober.probe(name)
        except Exception:
            log.exception("health probe crashed", extra={"deployment": name})
            result, error = None, None
        finally:
            self._busy.discard(name)
        if runtime is None or result is None:
            return
        self.probes_sent += 1
        before = runtime.breaker.state
        runtime.breaker.record(permit, classify(error))
        if before is not BreakerState.CLOSED and runtime.breaker.state is BreakerState.CLOSED:
            self.recoveries += 1
        log.info(
            "health probe",
            extra={
                "deployment": name,
                "status": result.status,
                "ok": result.ok,
                "total_ms": result.total_ms,
            },
        )
