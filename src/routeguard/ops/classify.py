"""The runbook's incident classes, decided by the router from its own recent traffic.

"Error rate > 50 % for > 5 minutes" has two halves: a condition read from the rolling windows
("the 5-minute error rate is above 50 %"), and a duration over which it must keep holding. The
second half is evaluated like a Prometheus ``for:`` clause: :class:`ClassEvaluator` remembers
since when each condition has held at every evaluation, and a condition counts ("fires") only
once it has held for its duration. A condition that stops holding starts over. The class is the
highest class among firing conditions, and its evidence is their descriptions.

Conditions and durations are those of ``deploy/prometheus/alerts.yml`` (which implements the
same runbook section), with numbers from the ``incidents:`` config section:

====  =====================================================================================
P0    upstream or client (5xx) error rate above 50 % for 5m; every provider with traffic
      failing above 50 % for 2m; no breaker closed for 1m
P1    upstream or client error rate above 5 % for 10m; a provider failing above 25 % for a
      model group whose clients see more than 5 % 5xx, for 10m; 2+ breakers not closed, 5m;
      breakers of 3+ deployments changed state in the last 15m
P2    upstream error rate above 1 % for 15m; a model group's client p95 above 10 s for 15m
====  =====================================================================================

The band conditions (P1's "5-50 %") are written as "above 5 %": the class is the highest firing
condition, so a P1 keeps firing while a P0's duration runs, as the alert rules do with
``unless ALERTS{...}``, and an escalation leaves no gap. "Router unresponsive" cannot be judged
from inside the router; the CLI reports it (exit code 4) when the router does not answer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from routeguard.config.incidents import IncidentsConfig
from routeguard.observability.windows import TrafficWindows

__all__ = [
    "CLIENT_CAUSED_REASONS",
    "ClassEvaluator",
    "Condition",
    "IncidentClass",
    "Topology",
    "Verdict",
    "conditions",
]

# Errors the client caused are passed back as 4xx; they are not an outage (as in alerts.yml).
CLIENT_CAUSED_REASONS = frozenset({"bad_request", "context_window", "content_policy"})

ALL_BREAKERS_OPEN_FOR_S = 60.0  # alerts.yml RouteGuardAllCircuitBreakersOpen: functionally down


class IncidentClass(enum.IntEnum):
    """The class; the values are those of the ``router_incident_class`` gauge."""

    OK = 0
    P2 = 1
    P1 = 2
    P0 = 3


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition that holds right now; ``key`` identifies it across evaluations."""

    key: str
    cls: IncidentClass
    for_s: float
    evidence: str


@dataclass(frozen=True, slots=True)
class Topology:
    """What the conditions need to know about the configuration and breakers right now."""

    # deployment -> (provider, breaker not closed)
    deployments: Mapping[str, tuple[str, bool]]
    # model group -> its deployments
    groups: Mapping[str, list[str]]
    # distinct deployments whose breaker changed state in the last 15 minutes
    churned: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation's outcome."""

    cls: IncidentClass
    since: float
    reasons: list[str]
    pending: list[str] = field(default_factory=list)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _dur(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _outage_errors(reasons: Mapping[str, int]) -> int:
    return sum(n for reason, n in reasons.items() if reason not in CLIENT_CAUSED_REASONS)


def conditions(
    windows: TrafficWindows, topology: Topology, cfg: IncidentsConfig
) -> list[Condition]:
    """Every classification condition that holds at this instant (durations not applied)."""
    window = cfg.error_window_s
    span = _dur(window)
    out: list[Condition] = []
    attempts = windows.stats(window)
    if attempts.requests >= cfg.min_requests:
        rate = _outage_errors(attempts.errors_by_reason) / attempts.requests
        out.extend(_rate_conditions("upstream", "upstream error rate", rate, span, cfg))
    clients = windows.client_stats(window)
    if clients.requests >= cfg.min_requests:
        out.extend(
            c
            for c in _rate_conditions("client", "client 5xx rate", clients.error_rate, span, cfg)
            if c.cls is not IncidentClass.P2  # alerts.yml has no client P2 rule either
        )
    out.extend(_provider_conditions(windows, topology, cfg, span))
    out.extend(_breaker_conditions(topology, cfg))
    for group in topology.groups:
        stats = windows.client_stats(window, group=group)
        if stats.requests >= cfg.min_requests and (stats.p95_ms or 0) > cfg.latency_p95_ms:
            out.append(
                Condition(
                    f"latency:{group}",
                    IncidentClass.P2,
                    cfg.latency_for_s,
                    f"{group} client p95 {stats.p95_ms:.0f} ms over {span} "
                    f"above {cfg.latency_p95_ms:.0f} ms",
                )
            )
    return out


def _rate_conditions(
    key: str, label: str, rate: float, span: str, cfg: IncidentsConfig
) -> Iterable[Condition]:
    bands = (
        (IncidentClass.P0, cfg.p0_error_rate, cfg.p0_for_s),
        (IncidentClass.P1, cfg.p1_error_rate, cfg.p1_for_s),
        (IncidentClass.P2, cfg.p2_error_rate, cfg.p2_for_s),
    )
    for cls, threshold, for_s in bands:
        if rate > threshold:
            yield Condition(
                f"{key}:{cls.name}",
                cls,
                for_s,
                f"{label} {_pct(rate)} over {span} above {_pct(threshold)}",
            )


def _provider_conditions(
    windows: TrafficWindows, topology: Topology, cfg: IncidentsConfig, span: str
) -> Iterable[Condition]:
    window = cfg.error_window_s
    providers = sorted({p for p, _ in topology.deployments.values()})
    rates: dict[str, float] = {}
    for provider in providers:
        stats = windows.stats(window, provider=provider)
        if stats.requests:
            rates[provider] = _outage_errors(stats.errors_by_reason) / stats.requests
    total = sum(windows.stats(window, provider=p).requests for p in rates)
    threshold = cfg.all_providers_error_rate
    if rates and total >= cfg.min_requests and all(r > threshold for r in rates.values()):
        yield Condition(
            "all_providers",
            IncidentClass.P0,
            cfg.all_providers_for_s,
            f"all {len(rates)} providers with traffic fail above {_pct(threshold)} over {span} ("
            + ", ".join(f"{p} {_pct(r)}" for p, r in sorted(rates.items()))
            + ")",
        )
    for group, members in topology.groups.items():
        clients = windows.client_stats(window, group=group)
        if clients.requests < cfg.min_requests or clients.error_rate <= cfg.p1_error_rate:
            continue
        by_provider: dict[str, list[str]] = {}
        for name in members:
            if name in topology.deployments:
                by_provider.setdefault(topology.deployments[name][0], []).append(name)
        for provider, names in sorted(by_provider.items()):
            requests = errors = 0
            for name in names:
                stats = windows.stats(window, deployment=name)
                requests += stats.requests
                errors += _outage_errors(stats.errors_by_reason)
            if requests and errors / requests > cfg.provider_failing_error_rate:
                yield Condition(
                    f"provider_fallback:{group}:{provider}",
                    IncidentClass.P1,
                    cfg.provider_failing_for_s,
                    f"{provider} fails {_pct(errors / requests)} of {group} attempts and "
                    f"fallback does not cover it (clients get {_pct(clients.error_rate)} 5xx)",
                )


def _breaker_conditions(topology: Topology, cfg: IncidentsConfig) -> Iterable[Condition]:
    deployments = topology.deployments
    tripped = sorted(name for name, (_, open_) in deployments.items() if open_)
    if deployments and len(tripped) == len(deployments):
        yield Condition(
            "all_breakers",
            IncidentClass.P0,
            ALL_BREAKERS_OPEN_FOR_S,
            f"no circuit breaker is closed ({len(tripped)} open or half-open)",
        )
    # No "unless the P0 fires" as in alerts.yml: the class is the highest firing condition.
    if topology.churned >= cfg.churn_breakers:
        yield Condition(
            "breaker_churn",
            IncidentClass.P1,
            0.0,  # the 15-minute look-back is the duration, as in alerts.yml
            f"circuit breakers of {topology.churned} deployments changed state in 15m",
        )
    if len(tripped) >= cfg.cascade_breakers:
        yield Condition(
            "breaker_cascade",
            IncidentClass.P1,
            cfg.cascade_for_s,
            f"circuit breaker cascade: {len(tripped)} open or half-open ({', '.join(tripped)})",
        )


class ClassEvaluator:
    """Applies ``for:`` durations to conditions and tracks the class and since when it holds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._active_since: dict[str, float] = {}
        self.cls = IncidentClass.OK
        self.since = clock()
        self.last = Verdict(IncidentClass.OK, self.since, [])

    def evaluate(self, current: Iterable[Condition]) -> Verdict:
        now = self.clock()
        held = {c.key: c for c in current}
        self._active_since = {
            key: self._active_since.get(key, now) for key in held
        }  # a condition that stopped holding starts over next time
        firing: list[Condition] = []
        pending: list[str] = []
        for key, cond in held.items():
            lasted = now - self._active_since[key]
            if lasted >= cond.for_s:
                firing.append(cond)
            else:
                pending.append(
                    f"{cond.evidence} for {_dur(round(lasted))} of {_dur(cond.for_s)} (pending)"
                )
        cls = max((c.cls for c in firing), default=IncidentClass.OK)
        if cls is not self.cls:
            self.cls, self.since = cls, now
        firing.sort(key=lambda c: -c.cls)
        reasons = [f"{c.evidence} for {_dur(c.for_s)}" for c in _highest_per_signal(firing)]
        self.last = Verdict(cls, self.since, reasons, pending)
        return self.last


def _highest_per_signal(firing: list[Condition]) -> list[Condition]:
    """One line per signal: "above 50 %" makes "above 5 %" and "above 1 %" of it redundant."""
    seen: set[str] = set()
    out = []
    for cond in firing:  # highest class first
        family, _, band = cond.key.rpartition(":")
        if band in ("P0", "P1", "P2"):
            if family in seen:
                continue
            seen.add(family)
        out.append(cond)
    return out
