"""Fleet-wide client-key ``rpm``/``tpm`` and spend budgets, behind ``UsageCounters``.

The same batched reservation as the deployments' limits (``routeguard.fleet.limits``): each key
with ``rpm`` has one counter per wall-clock minute in Redis (``keyusage:<key id>:<minute>``,
field ``req``); this process reserves a batch of requests from it with a script that never lets
the reserved total pass ``rpm``, and the guard spends the batch locally (a
:class:`~routeguard.resilience.limits.FleetShare` per key): the request path decrements an
integer and never waits for Redis. Tokens and spend are only known after an answer: each tick
flushes what this process used and reads the fleet's totals back.

Bounds (documented in docs/fleet.md):

* a key's requests in one wall-clock minute never exceed ``rpm`` fleet-wide; a sliding 60 s
  window straddling two minutes can see up to ``2 x rpm``, and each process's own sliding
  window still caps what it alone admits;
* ``tpm`` and the spend budget may be passed by what requests admitted during one tick
  (0.1 s) on every process use, plus the requests in flight;
* ``max_parallel`` stays per process;
* while Redis is unreachable each process limits on its own counts (up to ``members x rpm``)
  and budgets on the fleet total it last read plus its own spend since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from redis.asyncio import Redis

from routeguard.clients.guard import ClientGuard
from routeguard.fleet.keys import Keys
from routeguard.fleet.limits import sync_share
from routeguard.fleet.link import RedisLink
from routeguard.resilience.limits import FleetShare

__all__ = ["FleetKeyUsage"]

log = logging.getLogger("routeguard.fleet")

_SPEND_TTL_MS = 40 * 86_400_000  # longer than the longest budget period (a month)

# Add ARGV[1] USD; returns the period's total.
SPEND_SCRIPT = """
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total
"""


async def _eval(script: str, args: tuple[str, ...], client: Redis) -> Any:
    return await client.eval(script, 1, *args)


class FleetKeyUsage:
    """The fleet's :class:`~routeguard.clients.usage.UsageCounters`; see the module docs."""

    def __init__(self, guard: Callable[[], ClientGuard], link: RedisLink, keys: Keys) -> None:
        self.guard = guard
        self.link = link
        self.keys = keys
        self.wake = asyncio.Event()
        self._shares: dict[str, FleetShare] = {}
        self._unsent: dict[tuple[str, float], float] = {}
        self._fleet_spend: dict[tuple[str, float], float] = {}

    # -- UsageCounters (synchronous, no I/O) ------------------------------------------------
    def spent(self, key_id: str, period_start: float) -> float:
        key = (key_id, period_start)
        return self._fleet_spend.get(key, 0.0) + self._unsent.get(key, 0.0)

    def add(self, key_id: str, period_start: float, usd: float) -> None:
        key = (key_id, period_start)
        self._unsent[key] = self._unsent.get(key, 0.0) + usd

    def share(self, key_id: str) -> FleetShare:
        share = self._shares.get(key_id)
        if share is None:
            share = self._shares[key_id] = FleetShare(self.wake.set)
        return share

    # -- the background task ---------------------------------------------------------------
    async def run(self, tick_s: float, members: Callable[[], int]) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), tick_s)
            self.wake.clear()
            try:
                await self.tick(members())
            except Exception:  # a bug here must not stop the fleet
                log.exception("fleet client-key usage tick failed")

    async def tick(self, members: int) -> None:
        guard = self.guard()
        now = time.time()
        minute = int(now // 60)
        for kid, state in list(guard.keys.items()):
            config = state.config
            if config.rpm is None and config.tpm is None:
                continue
            await sync_share(
                self.link,
                "key_limits",
                self.share(kid),
                self.keys.key_usage(kid, minute),
                rpm=config.rpm,
                tpm=config.tpm,
                members=members,
                now=now,
                local_now=guard.clock(),
            )
        await self._flush_spend()

    async def _flush_spend(self) -> None:
        for (kid, start), usd in list(self._unsent.items()):
            args = (self.keys.key_spend(kid, start), repr(usd), str(_SPEND_TTL_MS))
            total = await self.link.run("key_spend", partial(_eval, SPEND_SCRIPT, args))
            if total is None:
                return  # Redis is away: keep counting locally, flush later
            self._unsent[(kid, start)] -= usd
            if abs(self._unsent[(kid, start)]) < 1e-12:
                del self._unsent[(kid, start)]
            for old in [k for k in self._fleet_spend if k[0] == kid and k[1] != start]:
                del self._fleet_spend[old]  # a new period began
            self._fleet_spend[(kid, start)] = float(total)
        # Keys that spent nothing here still see what the others spent.
        guard = self.guard()
        wall = guard.wall()
        for kid, state in list(guard.keys.items()):
            if state.config.budget_usd is None:
                continue
            start = guard.period_start(state.config.budget_period, wall)
            raw = await self.link.run("key_spend", partial(_get, self.keys.key_spend(kid, start)))
            if not self.link.up:
                return
            with contextlib.suppress(TypeError, ValueError):
                self._fleet_spend[(kid, start)] = float(raw) if raw is not None else 0.0


async def _get(key: str, client: Redis) -> Any:
    return await client.get(key)
