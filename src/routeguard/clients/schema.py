"""The ``clients:`` configuration section: client keys, their limits and budgets.

::

    clients:
      keys:
        search-prod:
          key_hash: sha256:9f86d08...        # routeguard keys hash (never the key itself)
          models: [gpt-4-turbo]               # allowed model groups; omitted: all
          rpm: 600
          tpm: 200000
          max_parallel: 20
          budget_usd: 50
          budget_period: day                  # hour | day | week | month (UTC calendar)
          metadata: {team: search}
        batch:
          key_hash_file: /run/secrets/batch-key-hash   # a Secret holding the hash
      anomaly: {factor: 5, window_s: 300, baseline_s: 3600, min_spend_usd: 0.5, throttle: false}
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AnomalyConfig", "BudgetPeriod", "ClientKeyConfig", "ClientsConfig"]

BudgetPeriod = Literal["hour", "day", "week", "month"]

_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientKeyConfig(_Frozen):
    """One client key: its hash and what it may do."""

    key_hash: str | None = None
    key_hash_file: str | None = None
    models: list[str] | None = None
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_parallel: int | None = Field(default=None, ge=1)
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    budget_period: BudgetPeriod = "month"
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("key_hash")
    @classmethod
    def _hash_shape(cls, value: str | None) -> str | None:
        if value is not None and not _HASH.match(value):
            raise ValueError(
                "must be 'sha256:' and 64 lower-case hex digits (run: routeguard keys hash); "
                "never put the key itself in the config"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ClientKeyConfig:
        if (self.key_hash is None) == (self.key_hash_file is None):
            raise ValueError("give exactly one of key_hash or key_hash_file")
        return self


class AnomalyConfig(_Frozen):
    """Spend-rate anomaly: a key spending ``factor`` times faster than its trailing baseline."""

    factor: float = Field(default=5.0, gt=1, allow_inf_nan=False)
    window_s: float = Field(default=300.0, gt=0)
    baseline_s: float = Field(default=3600.0, gt=0)
    # Below this spend in the short window nothing is anomalous (a first request is not a spike).
    min_spend_usd: float = Field(default=0.5, ge=0)
    # Refuse the key's requests (429) while its spend rate is anomalous.
    throttle: bool = False

    @model_validator(mode="after")
    def _baseline_longer(self) -> AnomalyConfig:
        if self.baseline_s <= self.window_s:
            raise ValueError("baseline_s must be longer than window_s")
        return self


class ClientsConfig(_Frozen):
    """Client keys by name. With at least one key, every data-plane request needs one."""

    keys: dict[str, ClientKeyConfig] = Field(default_factory=dict)
    anomaly: AnomalyConfig = AnomalyConfig()
