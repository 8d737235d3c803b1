"""What travels through Redis: versioned JSON records, and a decoder that never raises.

Everything read back from Redis is untrusted: another fleet's keys, an older RouteGuard,
an operator's ``redis-cli SET``, a half-written value. :func:`decode` returns a typed record or
``None``; :class:`JunkFilter` logs one warning per distinct bad value, so a key written once
with garbage is reported once, not once per sync interval.

Times are wall-clock seconds (``time.time()``): monotonic clocks do not compare across
processes. A breaker's cooldown travels as the wall-clock instant it ends plus the sender's
"seconds left" at sending time, so a receiver with a skewed clock can bound the error.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = [
    "VERSION",
    "AdminRecord",
    "BreakerRecord",
    "CooldownRecord",
    "JunkFilter",
    "Record",
    "WeightsRecord",
    "decode",
    "encode",
]

log = logging.getLogger("routeguard.fleet")

VERSION = 1
_Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # newer fields: ignored, not junk

    v: Literal[1] = 1
    origin: str = Field(min_length=1, max_length=200)
    at: _Finite
    """When the origin decided this (wall clock); the newer decision wins."""


class BreakerRecord(_Record):
    """A breaker decision: opened (until a wall-clock instant) or closed (probe passed, reset)."""

    t: Literal["breaker"] = "breaker"
    deployment: str = Field(min_length=1, max_length=200)
    state: Literal["open", "closed"]
    until: _Finite | None = None
    """For ``open``: the wall-clock instant the cooldown ends at the origin."""
    left_s: _Finite | None = Field(default=None, ge=0)
    """For ``open``: the seconds of cooldown left when the origin sent it."""


class CooldownRecord(_Record):
    """A 429's ``Retry-After``: nobody sends to this deployment before ``until``."""

    t: Literal["cooldown"] = "cooldown"
    deployment: str = Field(min_length=1, max_length=200)
    until: _Finite
    left_s: _Finite = Field(ge=0)


class WeightsRecord(_Record):
    """The whole set of runtime weight overrides (empty after ``DELETE /admin/weights``)."""

    t: Literal["weights"] = "weights"
    overrides: dict[str, dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]]]


class AdminRecord(_Record):
    """An operator's action taken on one replica, for every other replica to apply and audit."""

    t: Literal["admin"] = "admin"
    id: str = Field(min_length=1, max_length=64)
    action: Literal[
        "circuit_breaker_reset",
        "set_weights",
        "clear_weight_overrides",
        "config_reload",
        "revoke_client_key",
        "unrevoke_client_key",
    ]
    operator: str = Field(max_length=200)
    deployment: str | None = None
    """For a reset: the one deployment, or ``None`` for all."""
    key_id: str | None = Field(default=None, min_length=1, max_length=64)
    """For a client-key revocation: the key id (the newest record per key id is persisted)."""
    audit: list[dict[str, str]] = Field(default_factory=list, max_length=100)
    """The origin's decisions-log lines (fields), which every replica writes once."""
    weights: WeightsRecord | None = None
    """For weight changes: the overrides as they are after the action."""


Record = BreakerRecord | CooldownRecord | WeightsRecord | AdminRecord
_ADAPTER: TypeAdapter[Record] = TypeAdapter(Annotated[Record, Field(discriminator="t")])


def encode(record: Record) -> bytes:
    return orjson.dumps(record.model_dump(mode="json"))


def decode(raw: bytes | str | None) -> Record | None:
    """The record in ``raw``, or ``None`` for anything that is not one of ours."""
    if raw is None:
        return None
    try:
        return _ADAPTER.validate_json(raw)
    except (ValidationError, ValueError, TypeError):
        return None


class JunkFilter:
    """Warns once per distinct junk value (keys are few and bounded; junk is remembered)."""

    def __init__(self, limit: int = 1000) -> None:
        self._seen: set[str] = set()
        self._limit = limit
        self.count = 0

    def junk(self, where: str, raw: object) -> None:
        self.count += 1
        digest = hashlib.blake2b(repr(raw).encode(), digest_size=8).hexdigest()
        key = f"{where}:{digest}"
        if key in self._seen or len(self._seen) >= self._limit:
            return
        self._seen.add(key)
        log.warning("ignoring a value in redis that is not RouteGuard state", extra={"key": where})
