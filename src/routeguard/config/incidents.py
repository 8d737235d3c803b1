"""The ``incidents:`` section: the runbook's alert classification as tunable numbers.

The defaults are the runbook's own ("Alert Classification"): P0 above 50 % errors for 5 minutes,
P1 5-50 % for 10 minutes, P2 1-5 % for 15 minutes; the conditions the runbook names without a
number (a failing provider, a breaker cascade, elevated latency) take the numbers of
``deploy/prometheus/alerts.yml`` so the router's own class and Prometheus' alerts agree.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["IncidentsConfig"]

Ratio = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Duration = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class IncidentsConfig(BaseModel):
    """Incident classes (``GET /admin/status``, ``router_incident_class``) and auto-incidents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Open an incident when the class becomes P1 or P0, note it when the class is back to OK.
    enabled: bool = True
    # Where `incident resolve` writes the runbook's report (router_incident_YYYYmmdd_HHMM.md).
    reports_dir: str = "reports"
    # How often the class is re-evaluated (the `for:` clock ticks at this resolution).
    evaluate_interval_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    # The error rate is measured over this window, like the runbook's `rate(...[5m])`.
    error_window_s: Annotated[float, Field(ge=10, le=900)] = 300.0
    # Fewer upstream attempts than this in the window say nothing about an error rate.
    min_requests: Annotated[int, Field(ge=1)] = 10
    p0_error_rate: Ratio = 0.50
    p0_for_s: Duration = 300.0
    p1_error_rate: Ratio = 0.05
    p1_for_s: Duration = 600.0
    p2_error_rate: Ratio = 0.01
    p2_for_s: Duration = 900.0
    # "All providers failing": every provider with traffic fails more than this share.
    all_providers_error_rate: Ratio = 0.50
    all_providers_for_s: Duration = 120.0
    # "Single provider failure with inadequate fallback": a provider fails this share of its
    # attempts AND clients get 5xx above p1_error_rate.
    provider_failing_error_rate: Ratio = 0.25
    provider_failing_for_s: Duration = 600.0
    # "Circuit breaker cascade": this many breakers not closed at once.
    cascade_breakers: Annotated[int, Field(ge=2)] = 2
    cascade_for_s: Duration = 300.0
    # ...or breakers of this many distinct deployments changed state in the last 15 minutes.
    churn_breakers: Annotated[int, Field(ge=2)] = 3
    # "Elevated latency": client p95 above this.
    latency_p95_ms: Annotated[float, Field(gt=0)] = 10_000.0
    latency_for_s: Duration = 900.0

    @model_validator(mode="after")
    def _ordered(self) -> IncidentsConfig:
        if not self.p2_error_rate < self.p1_error_rate < self.p0_error_rate:
            raise ValueError("error rates must rise with the class: p2 < p1 < p0")
        return self
