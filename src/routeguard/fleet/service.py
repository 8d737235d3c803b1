"""The fleet: one object per process that keeps its local state in step with the others.

Four background tasks, none of them on the request path:

* the **publisher** drains an in-memory outbox of records (filled synchronously by breaker
  transitions and pollers) into ``PUBLISH`` plus a newest-wins write into the record's hash;
* the **subscriber** applies records from the channel as they arrive (sub-second propagation);
* the **ticker** (every ``min(0.1, sync_interval_s / 5)`` s) coordinates half-open probes and
  polls local 429 cooldowns and weight changes;
* the **syncer** (every ``sync_interval_s``) heartbeats, reconciles from the hashes (what
  pub/sub missed, what ``FLUSHDB`` lost), and after an outage republishes everything local.

Whenever Redis fails, each task logs once, counts the error, backs off and keeps going; the
router meanwhile routes on its local breakers exactly as a process without ``redis:`` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from routeguard.config.redis import RedisConfig
from routeguard.fleet.actions import AdminSync, WeightsSync
from routeguard.fleet.breakers import BreakerSync
from routeguard.fleet.client_keys import KEY_ACTIONS, RevocationSync
from routeguard.fleet.codec import (
    AdminRecord,
    BreakerRecord,
    CooldownRecord,
    JunkFilter,
    Record,
    WeightsRecord,
    decode,
    encode,
)
from routeguard.fleet.host import FleetHost
from routeguard.fleet.key_usage import FleetKeyUsage
from routeguard.fleet.keys import HSET_NEWER_SCRIPT, SET_NEWER_SCRIPT, Keys
from routeguard.fleet.limits import FleetLimits
from routeguard.fleet.link import RedisLink
from routeguard.fleet.membership import Membership, new_member_id
from routeguard.fleet.metrics import FleetMetrics
from routeguard.resilience import BreakerState

__all__ = ["Fleet"]

log = logging.getLogger("routeguard.fleet")

_OUTBOX_MAX = 10_000
_ACK_WAIT_S = 1.0


class Fleet:
    """Shared state for one process; see the module documentation."""

    def __init__(self, config: RedisConfig, host: FleetHost, registry: CollectorRegistry) -> None:
        self.config = config
        self.host = host
        self.member_id = new_member_id()
        self.keys = Keys(config.key_prefix)
        self.metrics = FleetMetrics(registry)
        self.link = RedisLink(config, self.metrics)
        self.junk = JunkFilter()
        self.tick_s = min(0.1, config.sync_interval_s / 5)
        self._outbox: deque[tuple[Record, str | None]] = deque(maxlen=_OUTBOX_MAX)
        self._wake = asyncio.Event()
        lease_ttl = max(2.0, 2 * config.sync_interval_s)
        self.breakers = BreakerSync(
            self.member_id,
            host.runtimes,
            link=self.link,
            keys=self.keys,
            send=self._send,
            lease_ttl_s=lease_ttl,
            lead_s=3 * self.tick_s,
        )
        self.weights = WeightsSync(self.member_id, host, self.keys, self._send)
        self.admin = AdminSync(
            self.member_id,
            host,
            link=self.link,
            keys=self.keys,
            weights=self.weights,
            send=self._send,
        )
        self.revocations = RevocationSync(
            self.member_id, lambda: host.clients, self.keys, self._send
        )
        self.membership = Membership(
            self.member_id, host, self.link, self.keys, config.sync_interval_s
        )
        self.limits = FleetLimits(host.runtimes, self.link, self.keys)
        self.key_usage = FleetKeyUsage(lambda: host.clients, self.link, self.keys)
        """Client-key rpm/tpm/spend across the fleet: the app hands it to its ClientGuard."""
        self._tasks: list[asyncio.Task[None]] = []
        self.synced = asyncio.Event()
        """Set after the first full reconciliation (tests and start-up wait on it briefly)."""

    # -- the app's hooks (synchronous, no I/O) ---------------------------------------------
    def breaker_transition(self, name: str, new: BreakerState, reason: str) -> None:
        self.breakers.local_transition(name, new, reason)

    def _send(self, record: Record, hash_key: str | None) -> None:
        self._outbox.append((record, hash_key))
        self._wake.set()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, wait_s: float = 1.0) -> None:
        """Start the tasks; wait briefly for a first sync (an absent Redis only warns)."""
        for loop in (self._publisher, self._subscriber, self._ticker, self._syncer):
            self._tasks.append(asyncio.create_task(loop(), name=f"fleet-{loop.__name__}"))
        limits = self.limits.run(self.tick_s, self.membership.live_count)
        self._tasks.append(asyncio.create_task(limits, name="fleet-limits"))
        key_usage = self.key_usage.run(self.tick_s, self.membership.live_count)
        self._tasks.append(asyncio.create_task(key_usage, name="fleet-key-usage"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.synced.wait(), wait_s)
        if not self.link.up:
            log.warning(
                "redis unreachable at start; serving on local state until it answers",
                extra={"error": self.link.last_error},
            )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.membership.leave(), 1.0)
        await self.link.close()

    # -- the contract of app.fleet ---------------------------------------------------------
    async def try_lease(self, name: str, ttl_s: float) -> bool:
        return await self.membership.try_lease(name, ttl_s)

    async def release_lease(self, name: str) -> None:
        await self.membership.release_lease(name)

    async def broadcast(
        self,
        action: str,
        operator: str,
        audit: list[dict[str, str]],
        *,
        deployment: str | None = None,
        key_id: str | None = None,
    ) -> int:
        """Tell every replica about an action already applied here; return how many replicas
        (this one included) have applied it, waiting up to a second for the others."""
        record = self.admin.record(action, operator, audit, deployment, key_id)
        if record.weights is not None:
            self._send(record.weights, self.keys.weights)
        if record.key_id is not None:
            self.revocations.publish(record)  # persisted as well as published
        else:
            self._send(record, None)
        expected = self.membership.live_count() - 1
        if expected <= 0 or not self.link.up:
            return 1
        return 1 + await self.admin.wait_for_acks(record, expected, _ACK_WAIT_S)

    def status_section(self) -> dict[str, Any]:
        return {
            "id": self.member_id,
            "members": self.membership.members,
            "redis": self.link.status(),
            "sync_lag_s": self.breakers.last_lag_s,
            "junk_ignored": self.junk.count + self.membership.junk.count,
        }

    def health(self) -> dict[str, Any]:
        return self.link.status()

    # -- tasks -----------------------------------------------------------------------------
    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), 64))]
                ok = await self.link.run("publish", functools.partial(self._write, batch=batch))
                if ok is None:
                    # Redis is down: drop the batch. The syncer republishes all local state
                    # when Redis returns, which supersedes anything queued meanwhile.
                    self._outbox.clear()
                    break

    async def _write(self, client: Any, batch: list[tuple[Record, str | None]]) -> bool:
        pipe = client.pipeline(transaction=False)
        for record, hash_key in batch:
            raw = encode(record)
            if hash_key == self.keys.weights:
                pipe.eval(SET_NEWER_SCRIPT, 1, hash_key, raw, repr(record.at))
            elif hash_key is not None:
                attr = "key_id" if hash_key == self.keys.revoked_keys else "deployment"
                field = getattr(record, attr, "")
                pipe.eval(HSET_NEWER_SCRIPT, 1, hash_key, field, raw, repr(record.at))
            pipe.publish(self.keys.channel, raw)
        await pipe.execute()
        return True

    async def _subscriber(self) -> None:
        while True:
            pubsub = None
            try:
                if self.link.backing_off:
                    await asyncio.sleep(self.tick_s)
                    continue
                pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
                await asyncio.wait_for(
                    pubsub.subscribe(self.keys.channel),
                    self.config.connect_timeout_s + self.config.socket_timeout_s,
                )
                self.link.succeeded()
                while True:
                    message = await pubsub.get_message(timeout=self.config.sync_interval_s)
                    if message is not None and message.get("type") == "message":
                        await self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                self.link.failed("subscribe", exc)
                await asyncio.sleep(self.tick_s)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(pubsub.aclose(), 0.5)

    async def _on_message(self, data: object) -> None:
        record = decode(data)  # type: ignore[arg-type]
        if record is None:
            self.junk.junk(self.keys.channel, data)
        elif isinstance(record, BreakerRecord):
            self.breakers.apply(record)
        elif isinstance(record, CooldownRecord):
            self.breakers.apply_cooldown(record)
        elif isinstance(record, WeightsRecord):
            self.weights.apply(record)
        elif isinstance(record, AdminRecord):
            if record.action in KEY_ACTIONS:
                self.revocations.apply(record)
            await self.admin.apply(record)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.breakers.poll_cooldowns()
                self.weights.poll()
                await self.breakers.probe_tick()
                self.metrics.pool_in_use.set(self.link.in_use())
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the fleet: log and go on
                log.exception("fleet tick failed")

    async def _syncer(self) -> None:
        while True:
            try:
                await self._sync_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fleet sync failed")
            await asyncio.sleep(self.config.sync_interval_s)

    async def _sync_once(self) -> None:
        if self.link.recovered.is_set():
            self.link.recovered.clear()
            log.info("redis reachable; republishing local state")
            self.breakers.republish_all()
            if self.weights.current is not None:
                self._send(self.weights.current, self.keys.weights)
        await self.membership.beat(self.breakers.view())
        self.metrics.members.set(self.membership.live_count())
        breakers = await self._read_hash(self.keys.breakers, BreakerRecord)
        if breakers is not None:
            self.breakers.reconcile(breakers)
        cooldowns = await self._read_hash(self.keys.cooldowns, CooldownRecord)
        for record in (cooldowns or {}).values():
            self.breakers.apply_cooldown(record)
        revocations = await self._read_hash(self.keys.revoked_keys, AdminRecord, "key_id")
        if revocations is not None:
            self.revocations.reconcile(revocations)
        key = self.keys.weights
        raw = await self.link.run("weights", lambda r: r.get(key))
        if self.link.up:
            remote = decode(raw) if raw is not None else None
            if raw is not None and not isinstance(remote, WeightsRecord):
                self.junk.junk(key, raw)
                remote = None
            self.weights.reconcile(remote if isinstance(remote, WeightsRecord) else None)
        if self.breakers.last_lag_s is not None:
            self.metrics.sync_lag.set(self.breakers.last_lag_s)
        if self.link.up:
            self.synced.set()
        self.metrics.pool_in_use.set(self.link.in_use())

    async def _read_hash(
        self, key: str, kind: type[Any], attr: str = "deployment"
    ) -> dict[str, Any] | None:
        raw = await self.link.run("reconcile", lambda r: r.hgetall(key))
        if raw is None:
            return None
        out: dict[str, Any] = {}
        for field, value in raw.items():
            record = decode(value)
            name = field.decode() if isinstance(field, bytes) else str(field)
            if not isinstance(record, kind) or getattr(record, attr, None) != name:
                self.junk.junk(f"{key}[{name!r}]", value)
                continue
            out[name] = record
        return out
