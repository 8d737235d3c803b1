"""The ``redis:`` section: where a fleet of RouteGuard processes keeps its shared state.

Absent, a process is an island exactly as before. Present, the fleet (``routeguard.fleet``)
syncs breakers, cooldowns, weight overrides and admin actions through it in the background;
Redis is never on the request path, so every setting here bounds background work only.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["RedisConfig", "SentinelConfig"]

_Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SentinelConfig(_Frozen):
    """Redis Sentinel: the fleet asks these sentinels which server is the master."""

    hosts: list[str] = Field(min_length=1)
    """``host:port`` of each sentinel."""
    master_name: str = Field(min_length=1)
    password: SecretStr | None = None
    """The sentinels' own password, if they have one (the master's is ``redis.password``)."""

    @field_validator("hosts")
    @classmethod
    def _host_port(cls, hosts: list[str]) -> list[str]:
        for entry in hosts:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{entry!r} is not host:port")
        return hosts

    def addresses(self) -> list[tuple[str, int]]:
        return [(h.rpartition(":")[0], int(h.rpartition(":")[2])) for h in self.hosts]


class RedisConfig(_Frozen):
    """Connection and sync settings. Exactly one of ``url`` and ``sentinel``."""

    url: SecretStr | None = None
    """``redis://``, ``rediss://`` (TLS) or ``unix://``; secret because it may hold a password."""
    sentinel: SentinelConfig | None = None
    password: SecretStr | None = None
    password_file: str | None = None
    """A file holding the password (a mounted Secret), read when connecting."""
    key_prefix: str = Field(default="routeguard:", min_length=1, max_length=64)
    """Every key and channel starts with this, so two fleets can share one Redis."""
    sync_interval_s: _Seconds = 1.0
    """Reconciliation, heartbeat and rpm/tpm flush period; pub/sub is faster than this."""
    max_connections: int = Field(default=8, ge=2, le=1024)
    """The pool's hard bound per process (one of them is held by the pub/sub subscriber)."""
    socket_timeout_s: _Seconds = 0.5
    connect_timeout_s: _Seconds = 0.5

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @model_validator(mode="after")
    def _one_source(self) -> RedisConfig:
        if (self.url is None) == (self.sentinel is None):
            raise ValueError("give exactly one of url and sentinel")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self
