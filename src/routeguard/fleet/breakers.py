"""Breakers and 429 cooldowns shared across a fleet, applied to the local breakers.

The local :class:`~routeguard.resilience.CircuitBreaker` stays the only thing the request path
reads. This module moves decisions between processes in the background:

* A local transition to ``OPEN`` or ``CLOSED`` (not ``"remote"``: that is an applied one) becomes
  a :class:`BreakerRecord` published at once on the channel and written to the breakers hash.
* A record from elsewhere is applied when it is newer (``at``, wall clock) than the newest
  decision this process knows for that deployment: last writer wins, per deployment.
* Reconciliation reads the hash every sync interval, applies what pub/sub missed, and writes
  back any local decision the hash lacks or has older (a ``FLUSHDB`` or an empty restarted Redis
  is refilled within one interval).
* Half-open is coordinated: shortly before an open breaker's cooldown ends, each process tries
  to take the deployment's probe key (``SET NX PX`` by script). The winner half-opens on time;
  the others stay open for one more lease period. So the fleet as a whole sends
  ``half_open_probes`` probes at a time, not that many per process. The probe's outcome is a
  local ``CLOSED`` or ``OPEN`` decision and travels like any other.
* 429 cooldowns are polled from the local breakers each tick and published when they grew.

A record naming a deployment this process does not have is ignored: Redis can only make a
process more careful about deployments it already routes to, never add one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from routeguard.fleet.codec import BreakerRecord, CooldownRecord, Record
from routeguard.fleet.keys import ACQUIRE_SCRIPT, Keys
from routeguard.fleet.link import RedisLink
from routeguard.resilience import BreakerState, Outcome, Permit, PermitKind
from routeguard.routing.runtime import RuntimeRegistry

__all__ = ["BreakerSync"]

# A permit from no epoch: record() applies a 429's cooldown before it checks the epoch, so this
# feeds a remote cooldown in without touching the window or the state.
_FOREIGN = Permit(PermitKind.NORMAL, -1)


@dataclass
class _Known:
    """The newest decision this process knows for one deployment (made here or applied)."""

    record: BreakerRecord | None = None
    contested_until: float | None = None
    holds_probe: bool = False
    cooldown_until: float = float("-inf")
    lag_s: list[float] = field(default_factory=list)


class BreakerSync:
    def __init__(
        self,
        member_id: str,
        runtimes: RuntimeRegistry,
        *,
        link: RedisLink,
        keys: Keys,
        send: Callable[[Record, str | None], None],
        lease_ttl_s: float,
        lead_s: float,
    ) -> None:
        self.member_id = member_id
        self.runtimes = runtimes
        self.link = link
        self.keys = keys
        self.send = send
        """Queue a record for publishing (and for ``hset`` into the named hash, if any)."""
        self.lease_ttl_s = lease_ttl_s
        self.lead_s = lead_s
        self.known: dict[str, _Known] = {}
        self.last_lag_s: float | None = None

    def _known(self, name: str) -> _Known:
        known = self.known.get(name)
        if known is None:
            known = self.known[name] = _Known()
        return known

    # -- local decisions (called from the breaker's transition hook: no I/O here) ------------
    def local_transition(self, name: str, new: BreakerState, reason: str) -> None:
        if reason == "remote" or new is BreakerState.HALF_OPEN:
            return  # applied from elsewhere, or a local timer every process reaches by itself
        runtime = self.runtimes.deployments.get(name)
        if runtime is None:
            return
        now_wall = time.time()
        if new is BreakerState.OPEN:
            retry_at = runtime.breaker.retry_at()
            left = 0.0 if retry_at is None else max(0.0, retry_at - self.runtimes.clock())
            record = BreakerRecord(
                origin=self.member_id,
                at=now_wall,
                deployment=name,
                state="open",
                until=now_wall + left,
                left_s=left,
            )
        else:
            record = BreakerRecord(
                origin=self.member_id, at=now_wall, deployment=name, state="closed"
            )
        self._known(name).record = record
        self.send(record, self.keys.breakers)

    # -- applying what others decided --------------------------------------------------------
    def apply(self, record: BreakerRecord) -> bool:
        """Adopt ``record`` if it is newer than what we know; True when it changed anything."""
        runtime = self.runtimes.deployments.get(record.deployment)
        if runtime is None:
            return False  # not in our config: never let Redis add a deployment
        known = self._known(record.deployment)
        if known.record is not None and record.at <= known.record.at:
            return False
        known.record = record
        if record.origin == self.member_id:
            return False  # our own decision, read back after a restart of the sync
        self.last_lag_s = max(0.0, time.time() - record.at)
        breaker = runtime.breaker
        if record.state == "open":
            left = _left(record.until, record.left_s, breaker.policy.cooldown_s)
            breaker.apply_remote(BreakerState.OPEN, self.runtimes.clock() + left)
        else:
            breaker.apply_remote(BreakerState.CLOSED, None)
        return True

    def apply_cooldown(self, record: CooldownRecord) -> bool:
        runtime = self.runtimes.deployments.get(record.deployment)
        if runtime is None or record.origin == self.member_id:
            return False
        breaker = runtime.breaker
        cap = max(breaker.policy.max_rate_limit_cooldown_s, breaker.policy.rate_limit_cooldown_s)
        left = _left(record.until, record.left_s, cap)
        if left <= 0:
            return False
        breaker.record(_FOREIGN, Outcome.RATE_LIMITED, left)
        until = breaker.snapshot().rate_limited_until
        known = self._known(record.deployment)
        if until is not None:
            known.cooldown_until = max(known.cooldown_until, until)
        self.last_lag_s = max(0.0, time.time() - record.at)
        return True

    def reconcile(self, entries: dict[str, BreakerRecord]) -> None:
        """Apply the hash's newer records; queue ours where the hash lacks them or is older."""
        for record in entries.values():
            self.apply(record)
        for name, known in self.known.items():
            mine = known.record
            if (
                mine is None
                or mine.origin != self.member_id
                or name not in self.runtimes.deployments
            ):
                continue
            remote = entries.get(name)
            if remote is None or remote.at < mine.at:
                self.send(_refreshed(mine), self.keys.breakers)

    def republish_all(self) -> None:
        """After Redis came back: offer every decision we know (the hash merge keeps newest)."""
        for name, known in self.known.items():
            if known.record is not None and name in self.runtimes.deployments:
                self.send(_refreshed(known.record), self.keys.breakers)

    # -- periodic local polling: 429 cooldowns -----------------------------------------------
    def poll_cooldowns(self) -> None:
        clock_now = self.runtimes.clock()
        for name, runtime in self.runtimes.deployments.items():
            until = runtime.breaker.snapshot().rate_limited_until
            known = self._known(name)
            if until is None or until <= known.cooldown_until + 0.05:
                continue
            known.cooldown_until = until
            left = max(0.0, until - clock_now)
            now_wall = time.time()
            record = CooldownRecord(
                origin=self.member_id,
                at=now_wall,
                deployment=name,
                until=now_wall + left,
                left_s=left,
            )
            self.send(record, self.keys.cooldowns)

    # -- half-open coordination --------------------------------------------------------------
    async def probe_tick(self) -> None:
        for name, runtime in list(self.runtimes.deployments.items()):
            breaker = runtime.breaker
            state = breaker.state
            known = self._known(name)
            if state is BreakerState.CLOSED:
                known.holds_probe = False
                known.contested_until = None
                continue
            now = self.runtimes.clock()
            if state is BreakerState.OPEN:
                retry_at = breaker.retry_at()
                if retry_at is None or retry_at - now > self.lead_s:
                    continue
                if known.contested_until == retry_at:
                    continue
                known.contested_until = retry_at
                won = await self._acquire(name)
                if won is False:
                    breaker.apply_remote(BreakerState.OPEN, retry_at + self.lease_ttl_s)
                known.holds_probe = won is not False
                continue
            # HALF_OPEN: the holder keeps its key while a probe is out; anyone else stands down.
            if breaker.snapshot().probes_in_flight > 0:
                won = await self._acquire(name)
            else:
                won = await self._owner_is_us_or_nobody(name)
            if won is False:
                known.holds_probe = False
                breaker.apply_remote(BreakerState.OPEN, now + self.lease_ttl_s)
            else:
                known.holds_probe = True

    async def _acquire(self, name: str) -> bool | None:
        ttl_ms = str(int(self.lease_ttl_s * 1000))
        key = self.keys.probe(name)
        result = await self.link.run(
            "probe_lease",
            lambda r: r.eval(ACQUIRE_SCRIPT, 1, key, self.member_id, ttl_ms),
        )
        return None if result is None else bool(result)

    async def _owner_is_us_or_nobody(self, name: str) -> bool | None:
        key = self.keys.probe(name)
        owner = await self.link.run("probe_lease", lambda r: r.get(key))
        if owner is None:
            return None if not self.link.up else True
        return bool(owner == self.member_id.encode() or owner == self.member_id)

    def view(self) -> dict[str, str]:
        """Each deployment's breaker state by name, for heartbeats."""
        names = {0: "closed", 1: "half_open", 2: "open"}
        return {n: names[int(r.breaker.state)] for n, r in self.runtimes.deployments.items()}


def _left(until: float | None, left_s: float | None, cap: float) -> float:
    """Seconds of cooldown left here, from the origin's wall-clock ``until``.

    Clock skew between hosts shifts ``until - now``; the origin's own "seconds left" at sending
    time caps it, so a receiver whose clock lags never holds a deployment longer than the origin
    meant. A receiver whose clock runs ahead ends early, and the probe key then decides who
    probes, so skew can cost at most an earlier probe, never a longer outage.
    """
    if until is None:
        return cap
    left = until - time.time()
    if left_s is not None:
        left = min(left, left_s)
    return max(0.0, min(left, cap))


def _refreshed(record: BreakerRecord) -> BreakerRecord:
    if record.state != "open" or record.until is None:
        return record
    return record.model_copy(update={"left_s": max(0.0, record.until - time.time())})
