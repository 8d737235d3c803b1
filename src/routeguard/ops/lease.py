"""Who drives a rollout: a lease, so exactly one replica of a fleet changes weights step by step.

A rollout is a loop that sets weights, waits and judges; two replicas running the same loop would
fight over the weights. The loop holds a named lease and renews it every tick; a replica that
cannot renew stops driving. With no fleet (no ``redis:`` configured) the only replica always holds
it (:class:`LocalLease`); with one, the fleet's Redis lease decides (:class:`FleetLease`).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["FleetLease", "Lease", "LeaseProvider", "LocalLease", "lease_for"]


class Lease(Protocol):
    """Named, expiring leadership: ``acquire`` also renews a lease this replica holds."""

    async def acquire(self, name: str, ttl_s: float) -> bool: ...

    async def release(self, name: str) -> None: ...


class LeaseProvider(Protocol):
    """What the fleet offers (ADMIN_CONTRACT: ``app.fleet``)."""

    async def try_lease(self, name: str, ttl_s: float) -> bool: ...

    async def release_lease(self, name: str) -> None: ...


class LocalLease:
    """A single replica: it always holds every lease."""

    async def acquire(self, name: str, ttl_s: float) -> bool:
        return True

    async def release(self, name: str) -> None:
        return None


class FleetLease:
    """A lease in the fleet's Redis; a Redis failure means "not held", never an exception."""

    def __init__(self, fleet: LeaseProvider) -> None:
        self._fleet = fleet

    async def acquire(self, name: str, ttl_s: float) -> bool:
        try:
            return bool(await self._fleet.try_lease(name, ttl_s))
        except Exception:  # a lost Redis must stop the rollout's steps, not crash its task
            return False

    async def release(self, name: str) -> None:
        try:
            await self._fleet.release_lease(name)
        except Exception:  # the lease expires on its own
            return None


def lease_for(fleet: object | None) -> Lease:
    """The lease for an app's fleet: local when there is none."""
    if fleet is None or not hasattr(fleet, "try_lease"):
        return LocalLease()
    return FleetLease(fleet)  # type: ignore[arg-type]
