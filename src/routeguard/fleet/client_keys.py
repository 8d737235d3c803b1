"""Client-key revocations, shared across the fleet.

A revocation (or its undoing) on one replica travels as an admin record, like a breaker reset:
every other replica applies it and writes the origin's decisions-log line once with
``ORIGIN=<replica>``. The newest record per key id is also persisted in one Redis hash, so a
replica that starts later, or restarts, or missed the message while Redis was away, adopts it
at its next sync; the newer decision wins. Records this replica decided are remembered and
written again after an outage or a ``FLUSHDB``, so a revocation is not lost to Redis.

Unlike a revocation without ``redis:``, a fleet revocation outlives the process: it stays until
someone unrevokes the key (or removes it from ``clients:``).
"""

from __future__ import annotations

from collections.abc import Callable

from routeguard.clients.guard import ClientGuard
from routeguard.fleet.codec import AdminRecord, Record
from routeguard.fleet.keys import Keys

__all__ = ["KEY_ACTIONS", "RevocationSync"]

KEY_ACTIONS = frozenset({"revoke_client_key", "unrevoke_client_key"})


class RevocationSync:
    def __init__(
        self,
        member_id: str,
        guard: Callable[[], ClientGuard],
        keys: Keys,
        send: Callable[[Record, str | None], None],
    ) -> None:
        self.member_id = member_id
        self.guard = guard
        self.keys = keys
        self.send = send
        self.current: dict[str, AdminRecord] = {}
        """The newest record seen per key id (ours or another replica's)."""

    def publish(self, record: AdminRecord) -> None:
        """Persist and broadcast a decision already applied here."""
        assert record.key_id is not None
        self.current[record.key_id] = record
        self.send(record, self.keys.revoked_keys)

    def apply(self, record: AdminRecord) -> bool:
        """Adopt a newer decision about a key; False when it is older than what we know."""
        kid = record.key_id
        if kid is None or record.action not in KEY_ACTIONS:
            return False
        known = self.current.get(kid)
        if known is not None and record.at <= known.at:
            return False
        self.current[kid] = record
        revoked = self.guard().revoked
        if record.action == "revoke_client_key":
            revoked.add(kid)
        else:
            revoked.discard(kid)
        return True

    def reconcile(self, remote: dict[str, AdminRecord]) -> None:
        """Adopt what Redis holds; write back our newer decisions it lacks (outage, FLUSHDB)."""
        for record in remote.values():
            self.apply(record)
        for kid, mine in self.current.items():
            stored = remote.get(kid)
            if mine.origin == self.member_id and (stored is None or stored.at < mine.at):
                self.send(mine, self.keys.revoked_keys)
