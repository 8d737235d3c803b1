"""The one Redis connection pool of a process, and what the fleet knows about its health.

Every Redis call the fleet makes goes through :meth:`RedisLink.run`, which bounds it by the
socket timeouts, counts failures by operation, and turns any failure into ``None`` plus a
"degraded" state with the last error and a backoff: a dead, slow, full (``maxclients``) or
flushed Redis costs the router background work only, never a request. The pool is bounded
(``max_connections``) and blocks briefly rather than opening more, so the runbook's
Scenario 1, pool exhaustion, cannot happen by construction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError, ResponseError

from routeguard.config.redis import RedisConfig
from routeguard.fleet.metrics import FleetMetrics

__all__ = ["RedisLink"]

log = logging.getLogger("routeguard.fleet")

T = TypeVar("T")

_BACKOFF_MIN_S = 0.1
_BACKOFF_MAX_S = 5.0


def _password(config: RedisConfig) -> str | None:
    if config.password is not None:
        return config.password.get_secret_value()
    if config.password_file is not None:
        return Path(config.password_file).read_text(encoding="utf-8").strip()
    return None


def _describe(exc: BaseException) -> str:
    """An error for /health: its class and message, which redis-py keeps free of passwords."""
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:300]


class RedisLink:
    """A bounded client plus up/down bookkeeping; owned by one :class:`~routeguard.fleet.Fleet`."""

    def __init__(self, config: RedisConfig, metrics: FleetMetrics) -> None:
        self.config = config
        self.metrics = metrics
        self.up = False
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_ok_at: float | None = None
        self.recovered = asyncio.Event()
        """Set when Redis comes back after a failure; the fleet republishes and clears it."""
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self.client = self._build()
        metrics.pool_max.set(config.max_connections)

    def _build(self) -> aioredis.Redis:
        config = self.config
        common: dict[str, Any] = {
            "socket_timeout": config.socket_timeout_s,
            "socket_connect_timeout": config.connect_timeout_s,
            "password": _password(config),
            "max_connections": config.max_connections,
        }
        if config.sentinel is not None:
            sentinel_kwargs: dict[str, Any] = {
                "socket_timeout": config.socket_timeout_s,
                "socket_connect_timeout": config.connect_timeout_s,
            }
            if config.sentinel.password is not None:
                sentinel_kwargs["password"] = config.sentinel.password.get_secret_value()
            self._sentinel: Sentinel | None = Sentinel(
                config.sentinel.addresses(), sentinel_kwargs=sentinel_kwargs
            )
            master: aioredis.Redis = self._sentinel.master_for(
                config.sentinel.master_name, **common
            )
            return master
        self._sentinel = None
        assert config.url is not None
        pool = aioredis.BlockingConnectionPool.from_url(
            config.url.get_secret_value(),
            timeout=config.connect_timeout_s,  # wait this long for a free pooled connection
            **common,
        )
        return aioredis.Redis(connection_pool=pool)

    @property
    def backing_off(self) -> bool:
        return not self.up and time.monotonic() < self._retry_at

    def in_use(self) -> int:
        pool = self.client.connection_pool
        return len(getattr(pool, "_in_use_connections", ()))

    async def run(self, op: str, call: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """Run one Redis call; ``None`` (never an exception) when Redis is down or slow.

        While backing off after a failure nothing is sent, so a dead Redis is tried at most once
        per backoff step, not once per caller.
        """
        if self.backing_off:
            return None
        deadline = self.config.socket_timeout_s + self.config.connect_timeout_s + 0.5
        try:
            result = await asyncio.wait_for(call(self.client), deadline)
        except ResponseError:
            # Redis answered, with an error (a key of the wrong type: junk under our prefix).
            # The server is fine; the caller treats the value as absent.
            self.metrics.error(op)
            self.succeeded()
            return None
        except (RedisError, OSError, TimeoutError, ValueError) as exc:
            self.failed(op, exc)
            return None
        self.succeeded()
        return result

    def failed(self, op: str, exc: BaseException) -> None:
        self.metrics.error(op)
        self.metrics.up.set(0)
        self.last_error = _describe(exc)
        self.last_error_at = time.time()
        if self.up:
            log.warning(
                "redis unreachable; routing continues on local state",
                extra={"op": op, "error": self.last_error},
            )
        self.up = False
        self._backoff_s = min(_BACKOFF_MAX_S, max(_BACKOFF_MIN_S, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s

    def succeeded(self) -> None:
        was_down = not self.up
        self.up = True
        self._backoff_s = 0.0
        self.last_ok_at = time.time()
        self.metrics.up.set(1)
        if was_down:
            self.recovered.set()

    def status(self) -> dict[str, object]:
        """What /health and the admin API show; never the URL (it may hold a password)."""
        config = self.config
        return {
            "status": "ok" if self.up else "degraded",
            "mode": "sentinel" if config.sentinel is not None else "url",
            "key_prefix": config.key_prefix,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_ok_at": self.last_ok_at,
            "pool_in_use": self.in_use(),
            "pool_max": config.max_connections,
            "pool_size": config.max_connections,  # the name ops/diagnosis reads
            "up": self.up,
        }

    async def close(self) -> None:
        try:
            await self.client.aclose()
            await self.client.connection_pool.disconnect()
        except (RedisError, OSError):
            pass
