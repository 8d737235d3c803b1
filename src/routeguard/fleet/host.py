"""What the fleet needs from the app it serves, as a protocol: the fleet never imports the
server package, so dependencies keep pointing down (server -> fleet -> routing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from routeguard.clients.guard import ClientGuard
from routeguard.config.schema import Config
from routeguard.resilience import InFlightLimit
from routeguard.routing.runtime import RuntimeRegistry

__all__ = ["FleetHost", "Weights"]

Weights = dict[str, dict[str, float]]


class FleetHost(Protocol):
    version: str
    started_at: float
    config: Config
    config_version: str
    runtimes: RuntimeRegistry
    in_flight: InFlightLimit
    weight_overrides: Weights
    clients: ClientGuard

    def validate_weights(self, update: Mapping[str, object], *, force: bool) -> Weights: ...

    def set_weight_overrides(self, overrides: Weights, *, replace: bool = False) -> None: ...

    def reload(self, source: str) -> str: ...

    def audit(self, operator: str, action: str, **fields: str | int | float) -> None: ...
