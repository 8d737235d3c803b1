"""Fleet-wide ``rpm``/``tpm``: request grants reserved in batches, token totals flushed.

Each deployment with ``rpm`` has one counter per wall-clock minute in Redis
(``usage:<deployment>:<minute>``, field ``req``). A process reserves a *batch* of requests from
it with a script that never lets the reserved total pass ``rpm``, and spends the batch locally
(:class:`~routeguard.resilience.limits.FleetShare`): the request path decrements an integer and
never waits for Redis. Unspent grants lapse at the minute's end. Tokens are only known after an
answer, so ``tpm`` stays soft: each tick flushes the tokens used here (field ``tok``) and reads
the fleet's total back; at or past ``tpm`` the deployment rests until the minute turns.

Bounds (documented in docs/fleet.md):

* requests in one wall-clock minute never exceed ``rpm``; a sliding 60 s window straddling two
  minutes can see up to ``2 x rpm`` (the fixed-window property), and each process's own
  sliding limiter still caps what it alone sends;
* the fleet may under-use ``rpm`` by at most the unspent batches, ``members x batch``, with
  ``batch = max(1, rpm // (20 x members))``, about 5 %;
* ``tpm`` may be passed by the tokens of requests admitted during one tick (0.1 s) on all
  processes plus those in flight;
* while Redis is unreachable each process limits on its own counts, so the fleet can send up to
  ``members x rpm``; this is the price of never putting Redis on the request path.
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

from routeguard.fleet.keys import Keys
from routeguard.fleet.link import RedisLink
from routeguard.resilience.limits import FleetShare
from routeguard.routing.runtime import RuntimeRegistry

__all__ = ["FleetLimits", "batch_size"]

log = logging.getLogger("routeguard.fleet")

_USAGE_TTL_MS = 120_000

# Reserve up to ARGV[1] requests under a limit of ARGV[2]; returns what was granted.
RESERVE_SCRIPT = """
local used = tonumber(redis.call('HGET', KEYS[1], 'req') or '0') or 0
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if grant > 0 then
  redis.call('HINCRBY', KEYS[1], 'req', grant)
else
  grant = 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return grant
"""

# Add ARGV[1] tokens; returns the minute's total.
TOKENS_SCRIPT = """
local total = redis.call('HINCRBY', KEYS[1], 'tok', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return total
"""


async def _eval(script: str, args: tuple[str, ...], client: Redis) -> Any:
    return await client.eval(script, 1, *args)


async def sync_share(
    link: RedisLink,
    op: str,
    share: FleetShare,
    key: str,
    *,
    rpm: int | None,
    tpm: int | None,
    members: int,
    now: float,
    local_now: float,
) -> None:
    """One tick of a minute-window share (a deployment's or a client key's): roll it over at the
    minute, reserve the next batch of requests when half the grant is spent, and report the
    tokens used since the last tick. ``now`` is wall time (the window is fleet-wide);
    ``local_now`` is the share's own clock, for its expiry."""
    minute = int(now // 60)
    left_in_minute = 60.0 - now % 60
    share.retry_s = max(0.05, left_in_minute)
    if share.minute != minute:  # grants and the token verdict lapse with the minute
        share.minute, share.granted, share.tokens_blocked = minute, 0, False
        share.expires = local_now + left_in_minute
    if rpm is not None:
        batch = batch_size(rpm, members)
        if share.granted <= batch // 2:
            args = (key, str(batch), str(rpm), str(_USAGE_TTL_MS))
            got = await link.run(op, partial(_eval, RESERVE_SCRIPT, args))
            if got is not None:
                share.granted += int(got)
    if tpm is not None:
        unsent, share.unsent_tokens = share.unsent_tokens, 0
        token_args = (key, str(unsent), str(_USAGE_TTL_MS))
        total = await link.run(op, partial(_eval, TOKENS_SCRIPT, token_args))
        if total is None:
            share.unsent_tokens += unsent  # try again next tick
        else:
            share.tokens_blocked = int(total) >= tpm
    share.active = link.up


def batch_size(rpm: int, members: int) -> int:
    return max(1, rpm // (20 * max(1, members)))


class FleetLimits:
    def __init__(self, runtimes: RuntimeRegistry, link: RedisLink, keys: Keys) -> None:
        self.runtimes = runtimes
        self.link = link
        self.keys = keys
        self.wake = asyncio.Event()
        """Set when some grant ran out: the loop tops up now instead of at the next tick."""

    async def run(self, tick_s: float, members: Callable[[], int]) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), tick_s)
            self.wake.clear()
            try:
                await self.tick(members())
            except Exception:  # a bug here must not stop the fleet
                log.exception("fleet limits tick failed")

    async def tick(self, members: int) -> None:
        now = time.time()
        minute = int(now // 60)
        for name, runtime in list(self.runtimes.deployments.items()):
            rate = runtime.rate
            if rate is None:
                continue
            share = rate.fleet
            if share is None:
                share = rate.fleet = FleetShare(self.wake.set)
            await sync_share(
                self.link,
                "limits",
                share,
                self.keys.usage(name, minute),
                rpm=rate.rpm,
                tpm=rate.tpm,
                members=members,
                now=now,
                local_now=self.runtimes.clock(),
            )
