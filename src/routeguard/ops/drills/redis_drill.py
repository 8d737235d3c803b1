"""Runbook scenario 1 as a drill: Redis connection pool exhaustion under a small fleet.

Three routers share a real ``redis-server`` (small ``maxclients``, small pools, 0.25 s sync).
Under steady load the drill makes Redis refuse clients the way a full server does
(``CONFIG SET maxclients 1`` and every client connection dropped; its own control connection is
the one that fits), and flushes the keys so the fleet's republish afterwards is observable
rather than assumed. The operator's fix from the runbook, ``CONFIG SET maxclients 10000``,
follows after the fault phase. Redis is off the request path, so the targets are: some replica
reports Redis degraded within 10 s, no client sees an error, and every replica is back on Redis
with its membership republished within the link's 5 s backoff cap + two sync intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from routeguard.ops.demo_fleet import start_redis
from routeguard.ops.drills.common import (
    DETECT_TARGET_S,
    GPT4,
    Phases,
    cloud_config,
    finish,
    until,
)
from routeguard.ops.drills.harness import DrillEnv, Load, Sampler
from routeguard.ops.drills.report import DrillReport

__all__ = ["redis_pool_exhaustion"]

REPLICAS = 3
POOL = 3
SYNC_S = 0.25
PREFIX = "drill:"
MAXCLIENTS = 16  # every replica's pool (3 x 3) plus the drill's control connection fit
RECOVER_TARGET_S = 7.0  # the fleet link's 5 s backoff cap + two sync intervals, rounded up

States = tuple[str, ...]


@dataclass
class _Watch:
    """Each replica's Redis state as its ``/health`` shows it, and how many fleet members Redis
    holds, recorded at 10 Hz whenever either changes."""

    env: DrillEnv
    replicas: list[DrillEnv]
    control: aioredis.Redis
    seen: list[tuple[float, States, int]] = field(default_factory=list)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            states = tuple([await self._state(replica) for replica in self.replicas])
            members = -1  # unknown: the control connection itself failed
            with contextlib.suppress(RedisError, OSError):
                members = int(await self.control.hlen(f"{PREFIX}members"))
            if not self.seen or self.seen[-1][1:] != (states, members):
                self.seen.append((self.env.now(), states, members))
            await asyncio.sleep(0.1)

    @staticmethod
    async def _state(replica: DrillEnv) -> str:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            _, body = await replica.admin("GET", "/health")
            if isinstance(body, dict) and isinstance(body.get("redis"), dict):
                return str(body["redis"].get("status", "?"))
        return "?"

    def first_degraded(self, after: float, *, every: bool = False) -> float | None:
        test = all if every else any
        return next(
            (
                t
                for t, states, _ in self.seen
                if t >= after and test(s == "degraded" for s in states)
            ),
            None,
        )

    def first_recovered(self, after: float) -> float | None:
        """When every replica was on Redis again and all had re-registered as members."""
        return next(
            (
                t
                for t, states, members in self.seen
                if t >= after and all(s == "ok" for s in states) and members >= len(states)
            ),
            None,
        )


async def redis_pool_exhaustion(env: DrillEnv, report: DrillReport, duration_s: float) -> None:
    """Start Redis and three routers on it, run the drill, tear everything down."""
    env.workdir.mkdir(parents=True, exist_ok=True)
    started = await start_redis(env.workdir)
    if started is None:
        report.skipped = "needs redis: no redis-server on PATH"
        return
    process, port = started
    control = aioredis.Redis(
        host="127.0.0.1", port=port, single_connection_client=True, socket_timeout=5
    )
    replicas = [env] + [
        DrillEnv(env.workdir / f"replica-{i}", sim=env.sim) for i in range(2, REPLICAS + 1)
    ]
    try:
        await control.config_set("maxclients", MAXCLIENTS)
        await env.start_simulator()
        redis = (
            f'redis:\n  url: "redis://127.0.0.1:{port}/0"\n  key_prefix: "{PREFIX}"\n'
            f"  sync_interval_s: {SYNC_S}\n  max_connections: {POOL}\n"
        )
        for replica in replicas:
            await replica.start_router(cloud_config(env) + redis)
        t0 = time.monotonic()
        for replica in replicas:
            replica.t0 = t0  # one clock for every replica's load records
        await _exhaust(env, report, replicas, control, Phases.of(duration_s))
    finally:
        for replica in replicas[1:]:
            await replica.stop()
        await control.aclose()
        process.kill()
        await process.wait()


async def _exhaust(
    env: DrillEnv,
    report: DrillReport,
    replicas: list[DrillEnv],
    control: aioredis.Redis,
    phases: Phases,
) -> None:
    loads = [Load(replica, GPT4, workers=2) for replica in replicas]
    sampler, watch = Sampler(env), _Watch(env, replicas, control)
    for load in loads:
        load.start()
    sampler.start()
    watch.start()
    try:
        await asyncio.sleep(phases.warm_s)
        t_fault = env.now()
        await control.config_set("maxclients", 1)  # only this control connection fits
        dropped = await control.client_kill_filter(_type="normal", skipme=True)
        dropped += await control.client_kill_filter(_type="pubsub")
        await control.flushdb()
        report.event(t_fault, f"redis: maxclients 1, {dropped} connections dropped, keys flushed")
        await until(lambda: watch.first_degraded(t_fault, every=True) is not None, phases.fault_s)
        await asyncio.sleep(max(0.0, phases.fault_s - (env.now() - t_fault)))
        _, health = await env.admin("GET", "/health")
        report.figures["redis_last_error"] = (health.get("redis") or {}).get("last_error")
        t_fix = env.now()
        await control.config_set("maxclients", 10000)
        report.event(t_fix, "operator: CONFIG SET maxclients 10000")
        await until(lambda: watch.first_recovered(t_fix) is not None, RECOVER_TARGET_S + 10)
        await asyncio.sleep(phases.after_s)
        t_end = env.now()
    finally:
        for load in loads:
            await load.stop()
        await sampler.stop()
        await watch.stop()
    records = sorted(r for load in loads for r in load.records)
    finish(report, Load(env, GPT4, records=records), sampler)
    _measure(report, watch, (t_fault, t_fix, t_end), records)


def _measure(
    report: DrillReport,
    watch: _Watch,
    marks: tuple[float, float, float],
    records: list[tuple[float, int, str]],
) -> None:
    t_fault, t_fix, t_end = marks
    for t, states, members in watch.seen:
        report.event(t, f"redis per replica: {', '.join(states)}; members in redis: {members}")
    report.timeline.sort()
    if (t_any := watch.first_degraded(t_fault)) is not None:
        report.detect_s = round(t_any - t_fault, 3)
    t_all = watch.first_degraded(t_fault, every=True)
    report.figures["detect_all_replicas_s"] = None if t_all is None else round(t_all - t_fault, 3)
    if (t_ok := watch.first_recovered(t_fix)) is not None:
        report.recover_s = round(t_ok - t_fix, 3)
        report.mttr_s = round(t_ok - t_fault, 3)
    bounds = {"before": (0.0, t_fault), "during": (t_fault, t_fix), "after": (t_fix, t_end)}
    report.figures["requests_per_s"] = {
        phase: round(sum(1 for t, _, _ in records if lo <= t < hi) / max(hi - lo, 1e-3), 1)
        for phase, (lo, hi) in bounds.items()
    }
    report.figures["replicas"] = len(watch.replicas)
    report.mitigated_by = [
        "Redis off the request path (routing continues on local state)",
        "bounded pool + backoff in the fleet link",
        "operator: CONFIG SET maxclients 10000",
        "republish of local state on reconnect",
    ]
    detect, recover = report.detect_s, report.recover_s
    report.check(
        "detect (a replica's /health: redis degraded)",
        f"< {DETECT_TARGET_S:g} s",
        "not detected" if detect is None else f"{detect:.2f} s",
        detect is not None and detect < DETECT_TARGET_S,
    )
    report.check(
        "client errors (Redis is off the request path)",
        "0",
        f"{report.client_errors} of {report.client_requests}",
        report.client_errors == 0,
    )
    report.check(
        "recovery (redis ok on every replica, members republished)",
        f"<= {RECOVER_TARGET_S:g} s",
        "not recovered" if recover is None else f"{recover:.2f} s",
        recover is not None and recover <= RECOVER_TARGET_S,
    )
