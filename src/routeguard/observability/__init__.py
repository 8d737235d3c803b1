"""What operators see of RouteGuard: Prometheus metrics, structured logs, the decisions log.

Each concept has its module: :mod:`.metrics` (the runbook's ``router_*`` series on an injected
registry), :mod:`.logs` (JSON or key=value lines with secret redaction) and :mod:`.audit` (the
runbook's ``DECISIONS.log``).
"""

from __future__ import annotations

from routeguard.observability.access import AccessLog
from routeguard.observability.audit import AuditLog
from routeguard.observability.logs import (
    configure_logging,
    log_breaker_transition,
    redact,
)
from routeguard.observability.metrics import (
    UNKNOWN_GROUP,
    DeploymentMetrics,
    GroupMetrics,
    RouterMetrics,
)

__all__ = [
    "UNKNOWN_GROUP",
    "AccessLog",
    "AuditLog",
    "DeploymentMetrics",
    "GroupMetrics",
    "RouterMetrics",
    "configure_logging",
    "log_breaker_transition",
    "redact",
]
