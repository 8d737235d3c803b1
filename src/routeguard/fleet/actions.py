"""Weight overrides and operator actions, shared across the fleet.

Weight overrides are one record (the whole override set plus when it was decided) persisted in
Redis, so a replica that starts later, or restarts, adopts them; the newest record wins. Any
change of ``app.weight_overrides`` (the admin API, drain, rollouts, the console: they all go
through ``app.set_weight_overrides``) is noticed within one tick and published, so every
caller is covered without knowing about the fleet.

Operator actions (breaker reset, weights, reload, client-key revocations) taken on one replica
are broadcast; every other replica applies the action, writes the origin's decisions-log lines
once with ``ORIGIN=<replica>``, and acknowledges by incrementing the action's counter, which the
origin reads to answer ``acknowledged_by``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable

from routeguard.errors import ConfigError, InvalidRequestError
from routeguard.fleet.codec import AdminRecord, Record, WeightsRecord
from routeguard.fleet.host import FleetHost, Weights
from routeguard.fleet.keys import Keys
from routeguard.fleet.link import RedisLink

__all__ = ["AdminSync", "WeightsSync"]

log = logging.getLogger("routeguard.fleet")

_ACK_TTL_MS = 60_000


class WeightsSync:
    def __init__(
        self,
        member_id: str,
        host: FleetHost,
        keys: Keys,
        send: Callable[[Record, str | None], None],
    ) -> None:
        self.member_id = member_id
        self.host = host
        self.keys = keys
        self.send = send
        self.current: WeightsRecord | None = None
        self._seen: Weights = host.weight_overrides

    def local_record(self) -> WeightsRecord | None:
        """A record of the local overrides if they changed since we last looked, else None."""
        overrides = self.host.weight_overrides
        if overrides is self._seen or overrides == self._seen:
            self._seen = overrides
            return None
        self._seen = overrides
        self.current = WeightsRecord(origin=self.member_id, at=time.time(), overrides=overrides)
        return self.current

    def poll(self) -> None:
        record = self.local_record()
        if record is not None:
            self.send(record, self.keys.weights)

    def apply(self, record: WeightsRecord) -> bool:
        """Adopt newer overrides, keeping only what is valid against our own config."""
        if self.current is not None and record.at <= self.current.at:
            return False
        self.poll()  # a local change not yet published must not be lost to an older remote one
        if self.current is not None and record.at <= self.current.at:
            return False
        self.current = record
        if record.origin == self.member_id:
            return False
        valid: Weights = {}
        for group, members in record.overrides.items():
            try:
                merged = self.host.validate_weights({group: dict(members)}, force=True)
            except InvalidRequestError as exc:
                log.warning(
                    "ignoring a fleet weight override this config cannot take",
                    extra={"group": group, "reason": exc.message},
                )
                continue
            valid.update(merged)
        self.host.set_weight_overrides(valid, replace=True)
        self._seen = self.host.weight_overrides
        return True

    def reconcile(self, remote: WeightsRecord | None) -> None:
        if remote is not None:
            self.apply(remote)
        mine = self.current
        if mine is not None and (remote is None or remote.at < mine.at):
            self.send(mine, self.keys.weights)


class AdminSync:
    def __init__(
        self,
        member_id: str,
        host: FleetHost,
        *,
        link: RedisLink,
        keys: Keys,
        weights: WeightsSync,
        send: Callable[[Record, str | None], None],
    ) -> None:
        self.member_id = member_id
        self.host = host
        self.link = link
        self.keys = keys
        self.weights = weights
        self.send = send
        self._done: deque[str] = deque(maxlen=256)

    def record(
        self,
        action: str,
        operator: str,
        audit: list[dict[str, str]],
        deployment: str | None = None,
        key_id: str | None = None,
    ) -> AdminRecord:
        weights = None
        if action in ("set_weights", "clear_weight_overrides"):
            self.weights.local_record()
            weights = self.weights.current
        return AdminRecord(
            origin=self.member_id,
            at=time.time(),
            id=os.urandom(8).hex(),
            action=action,  # type: ignore[arg-type]
            operator=operator,
            deployment=deployment,
            key_id=key_id,
            audit=audit,
            weights=weights,
        )

    async def wait_for_acks(self, record: AdminRecord, expected: int, timeout_s: float) -> int:
        """Acknowledgements from other replicas, waiting up to ``timeout_s`` for ``expected``."""
        key = self.keys.ack(record.id)
        deadline = time.monotonic() + timeout_s
        acks = 0
        while True:
            raw = await self.link.run("admin", lambda r: r.get(key))
            with contextlib.suppress(TypeError, ValueError):
                acks = int(raw) if raw is not None else acks
            if acks >= expected or time.monotonic() >= deadline or not self.link.up:
                return acks
            await asyncio.sleep(0.02)

    async def apply(self, record: AdminRecord) -> None:
        if record.origin == self.member_id or record.id in self._done:
            return
        self._done.append(record.id)
        host = self.host
        try:
            if record.action == "circuit_breaker_reset":
                runtimes = host.runtimes.deployments
                names = [record.deployment] if record.deployment else list(runtimes)
                for name in names:
                    if name in runtimes:  # a deployment we do not have: nothing to reset
                        runtimes[name].breaker.reset()
            elif record.action in ("set_weights", "clear_weight_overrides"):
                if record.weights is not None:
                    self.weights.apply(record.weights)
            elif record.action == "config_reload":
                with contextlib.suppress(ConfigError):  # logged and counted by reload
                    host.reload(source=f"fleet:{record.origin}")
        finally:
            for fields in record.audit or [{}]:
                host.audit(record.operator, record.action, **fields, ORIGIN=record.origin)
        key = self.keys.ack(record.id)

        async def ack(r: object) -> object:
            pipe = r.pipeline(transaction=False)  # type: ignore[attr-defined]
            pipe.incr(key)
            pipe.pexpire(key, _ACK_TTL_MS)
            return await pipe.execute()

        await self.link.run("admin", ack)
