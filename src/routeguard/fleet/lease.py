""" "Exactly one replica does X": the lease protocol, with a local stand-in for a lone process.

Rollouts, incident timers and the like ask ``lease_for(app.fleet).try_lease(name, ttl_s)``
before acting and act only on ``True``; the holder renews by asking again within ``ttl_s``. With
a fleet, the lease is a Redis key (``<prefix>lease:<name>``, ``SET NX PX`` by script); while
Redis is unreachable nobody holds a new lease (a fleet that cannot agree does not act twice).
Without a fleet the process is alone, and :class:`LocalLease` always grants.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Lease", "LocalLease", "lease_for"]


class Lease(Protocol):
    async def try_lease(self, name: str, ttl_s: float) -> bool: ...

    async def release_lease(self, name: str) -> None: ...


class LocalLease:
    """The lease of a process that is its own fleet: always held."""

    async def try_lease(self, name: str, ttl_s: float) -> bool:
        return True

    async def release_lease(self, name: str) -> None:
        return None


_LOCAL = LocalLease()


def lease_for(fleet: Lease | None) -> Lease:
    """``app.fleet`` when there is one, else the local lease."""
    return _LOCAL if fleet is None else fleet
