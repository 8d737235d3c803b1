"""Who is in the fleet: heartbeats in one hash, and named leases for "exactly one replica".

Each process writes its heartbeat (identity, config fingerprint, in-flight, breaker view) every
sync interval; a member whose heartbeat is older than three intervals is not listed, and one
older than ten is deleted by whoever notices. Heartbeats carry wall-clock times, so a member's
age is only as exact as the hosts' clocks agree (NTP: milliseconds).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from typing import Any

import orjson

from routeguard.config.schema import Config
from routeguard.fleet.codec import JunkFilter
from routeguard.fleet.host import FleetHost
from routeguard.fleet.keys import ACQUIRE_SCRIPT, RELEASE_SCRIPT, Keys
from routeguard.fleet.link import RedisLink

__all__ = ["Membership", "new_member_id", "routing_fingerprint"]


def routing_fingerprint(config: Config) -> str:
    """What must match across a fleet: everything but per-replica settings (listener, audit
    log path, admin tokens, Redis connection), so a half-finished rollout shows as a mismatch
    while two replicas with different log paths do not."""
    dumped = config.model_dump_json(exclude={"server", "admin", "redis"})
    return hashlib.sha256(dumped.encode()).hexdigest()[:12]


def new_member_id() -> str:
    """Unique per process start: host, pid and a random tail (a restarted pid is new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Membership:
    def __init__(
        self, member_id: str, host: FleetHost, link: RedisLink, keys: Keys, interval_s: float
    ) -> None:
        self.member_id = member_id
        self.host = host
        self.link = link
        self.keys = keys
        self.interval_s = interval_s
        self.members: list[dict[str, Any]] = []
        self.junk = JunkFilter()

    def heartbeat(self, breakers: dict[str, str]) -> dict[str, Any]:
        host = self.host
        return {
            "id": self.member_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": host.version,
            "config_version": host.config_version,
            "routing_version": routing_fingerprint(host.config),
            "started_at": host.started_at,
            "heartbeat_at": time.time(),
            "in_flight": host.in_flight.in_flight,
            "breakers": breakers,
        }

    async def beat(self, breakers: dict[str, str]) -> None:
        """Write our heartbeat and refresh the member list (one round trip each)."""
        payload = orjson.dumps(self.heartbeat(breakers))
        key, member = self.keys.members, self.member_id
        await self.link.run("heartbeat", lambda r: r.hset(key, member, payload))
        raw = await self.link.run("heartbeat", lambda r: r.hgetall(key))
        if raw is None:
            return
        now = time.time()
        live, dead = [], []
        for field, value in raw.items():
            beat = _decode_beat(value)
            if beat is None:
                self.junk.junk(f"{key}[{field!r}]", value)
                continue
            age = now - beat["heartbeat_at"]
            if age > 10 * self.interval_s + 5:
                dead.append(field)
            elif age <= 3 * self.interval_s + 1:
                beat["heartbeat_age_s"] = round(max(0.0, age), 3)
                mine = routing_fingerprint(self.host.config)
                beat["config_mismatch"] = beat.get("routing_version") != mine
                live.append(beat)
        if dead:
            await self.link.run("heartbeat", lambda r: r.hdel(key, *dead))
        live.sort(key=lambda b: str(b["id"]))
        self.members = live

    async def leave(self) -> None:
        key, member = self.keys.members, self.member_id
        await self.link.run("heartbeat", lambda r: r.hdel(key, member))

    def live_count(self) -> int:
        return max(1, len(self.members))

    async def try_lease(self, name: str, ttl_s: float) -> bool:
        """True when this process holds (or just renewed) the lease; False when another does,
        or when Redis is unreachable (a fleet that cannot agree does not act twice)."""
        key, ttl = self.keys.lease(name), str(max(1, int(ttl_s * 1000)))
        result = await self.link.run(
            "lease",
            lambda r: r.eval(ACQUIRE_SCRIPT, 1, key, self.member_id, ttl),
        )
        return bool(result)

    async def release_lease(self, name: str) -> None:
        key = self.keys.lease(name)
        await self.link.run(
            "lease",
            lambda r: r.eval(RELEASE_SCRIPT, 1, key, self.member_id),
        )


_BEAT_FIELDS = {"id": str, "host": str, "pid": int, "version": str, "config_version": str}


def _decode_beat(value: object) -> dict[str, Any] | None:
    try:
        beat = orjson.loads(value)  # type: ignore[arg-type]
    except (orjson.JSONDecodeError, TypeError):
        return None
    if not isinstance(beat, dict):
        return None
    for name, kind in _BEAT_FIELDS.items():
        if not isinstance(beat.get(name), kind):
            return None
    for name in ("started_at", "heartbeat_at"):
        if not isinstance(beat.get(name), int | float):
            return None
    if not isinstance(beat.get("breakers", {}), dict):
        return None
    beat.setdefault("in_flight", 0)
    return beat
