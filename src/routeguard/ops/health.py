"""The router's judgement of its own health, kept current by a small background evaluator.

Every ``incidents.evaluate_interval_s`` the monitor reads the rolling windows and the breakers,
applies the ``for:`` durations (:mod:`routeguard.ops.classify`), sets ``router_incident_class``,
and lets the incident book follow the class (auto-open on P1/P0, a note on the way back to OK).
``GET /admin/status`` evaluates once more on demand, so an answer is never a tick old; evaluating
more often changes nothing in ``for:`` semantics.

Times: the app's clock is monotonic (and a test's ManualClock); wall time for people is that
clock shifted by its offset from ``time.time()`` at start-up, so a test that moves the clock
moves incident times and MTTR with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from routeguard.ops.classify import (
    CLIENT_CAUSED_REASONS,
    ClassEvaluator,
    Topology,
    Verdict,
    conditions,
)
from routeguard.ops.incidents import AUTO_OPERATOR, Incident, IncidentBook
from routeguard.ops.report import (
    Report,
    audit_entries_since,
    build_report,
    decision_fields,
    write_report,
)
from routeguard.resilience import BreakerState

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["HealthMonitor"]

log = logging.getLogger("routeguard.health")

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class HealthMonitor:
    """Incident class, incidents and the evidence behind them, for one app."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self._offset = time.time() - app.clock()
        self.evaluator = ClassEvaluator(app.clock)
        self.incidents = IncidentBook(self.wall, self._audit_size)
        self.rss: deque[tuple[float, float]] = deque(maxlen=400)  # (clock, MB)
        self._task: asyncio.Task[None] | None = None

    def wall(self, t: float | None = None) -> float:
        """Wall-clock seconds for a reading of the app's clock (now if None)."""
        return self._offset + (self.app.clock() if t is None else t)

    def _audit_size(self) -> int:
        try:
            return self.app.audit_log.path.stat().st_size
        except OSError:
            return 0

    # -- evaluation ----------------------------------------------------------------------------
    def topology(self) -> Topology:
        runtimes = self.app.runtimes.deployments
        return Topology(
            deployments={
                name: (rt.provider, rt.breaker.state is not BreakerState.CLOSED)
                for name, rt in runtimes.items()
            },
            groups={group: list(members) for group, members in self.app.config.weights.items()},
            churned=len(
                {
                    e.deployment
                    for e in self.app.reporter.breaker_history.since(self.app.clock() - 900)
                }
            ),
        )

    def evaluate(self) -> Verdict:
        app = self.app
        cfg = app.config.incidents
        verdict = self.evaluator.evaluate(conditions(app.windows, self.topology(), cfg))
        app.metrics.incident_class.set(int(verdict.cls))
        book = self.incidents
        was_recovered = book.current is not None and book.current.recovered_at is not None
        opened = book.observe(
            verdict.cls.name, verdict.reasons, self._rates(), auto_open=cfg.enabled
        )
        if opened is not None:
            self._backfill(opened)
            app.audit(
                AUTO_OPERATOR,
                "open_incident",
                INCIDENT=opened.id,
                CLASS=opened.cls,
                EVIDENCE=opened.summary,
            )
            log.warning("incident %s opened automatically (%s)", opened.id, opened.cls)
        current = book.current
        if current is not None and current.recovered_at is not None and not was_recovered:
            app.audit(
                AUTO_OPERATOR,
                "incident_recovered",
                INCIDENT=current.id,
                MTTR=f"{current.mttr_minutes()}m",
            )
        return verdict

    def _rates(self) -> tuple[float | None, float | None]:
        """The last minute's upstream and client error rates, for the incident chart."""
        windows = self.app.windows
        attempts = windows.stats(60)
        clients = windows.client_stats(60)
        upstream = None
        if attempts.requests:
            errors = sum(
                n for r, n in attempts.errors_by_reason.items() if r not in CLIENT_CAUSED_REASONS
            )
            upstream = errors / attempts.requests
        return upstream, (clients.error_rate if clients.requests else None)

    def _backfill(self, incident: Incident) -> None:
        """Put the lead-up (up to 15 minutes of 10 s buckets) in front of the incident's chart."""
        now = self.app.clock()
        points = [
            (self.wall(now - p.age_s), p.errors / p.requests if p.requests else None, None, 0)
            for p in self.app.windows.series(900)
        ]
        incident.samples[:0] = [p for p in points if p[0] < incident.opened_at]

    def sample_memory(self) -> None:
        try:
            with open("/proc/self/statm", encoding="ascii") as handle:
                pages = int(handle.read().split()[1])
        except (OSError, ValueError, IndexError):
            return
        self.rss.append((self.app.clock(), pages * _PAGE / 1e6))

    # -- resolve and report --------------------------------------------------------------------
    def resolve(self, operator: str, cause: str, impact: str, prevention: str) -> Incident:
        """Close the open incident: the runbook's decisions line, then its report on disk."""
        incident = self.incidents.resolve(operator, cause, impact, prevention)
        try:
            incident.decision_line = self.app.audit_log.append_fields(
                operator, decision_fields(incident)
            )
        except OSError:
            log.exception("cannot write the decisions log", extra={"incident": incident.id})
        report = self.report(incident)
        try:
            path = write_report(report, self.app.config.incidents.reports_dir)
            incident.report_path = str(path)
        except OSError:
            log.exception("cannot write the incident report", extra={"incident": incident.id})
        return incident

    def report(self, incident: Incident) -> Report:
        cfg = self.app.config.incidents
        return build_report(
            incident,
            audit_entries=audit_entries_since(self.app.audit_log, incident.audit_offset),
            events=self.events_since(incident.opened_at),
            thresholds={"P0": cfg.p0_error_rate, "P1": cfg.p1_error_rate},
        )

    def events_since(self, wall_t: float) -> list[tuple[float, str]]:
        """Breaker transitions and rollout events since ``wall_t`` (wall time), oldest first."""
        since = wall_t - self._offset
        events = [
            (
                self.wall(e.at),
                f"breaker {e.deployment} ({e.provider}): {e.old} -> {e.new} ({e.reason})",
            )
            for e in self.app.reporter.breaker_history.since(since)
        ]
        events += [e for e in _rollout_events(self.app) if e[0] >= wall_t]
        return sorted(events)

    # -- background ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.app.config.incidents.evaluate_interval_s)
            try:
                self.evaluate()
                self.sample_memory()
            except Exception:  # the evaluator must outlive any one bad evaluation
                log.exception("incident class evaluation failed")


def _rollout_events(app: RouteGuardApp) -> list[tuple[float, str]]:
    """Events of the rollouts section, if the rollouts work registered one (shape per contract:
    ``{"rollouts": [{"id", "kind", "deployment", "events": [{"ts", "event"|...}]}]}``)."""
    section = app.status_sections.get("rollouts")
    if section is None:
        return []
    try:
        data: Any = section()
    except Exception:
        return []
    rollouts = data.get("rollouts", []) if isinstance(data, dict) else data
    out: list[tuple[float, str]] = []
    for rollout in rollouts if isinstance(rollouts, list) else []:
        if not isinstance(rollout, dict):
            continue
        label = f"{rollout.get('kind', 'rollout')} {rollout.get('deployment', '')}".strip()
        for event in rollout.get("events", []) or []:
            if not isinstance(event, dict):
                continue
            ts = _parse_ts(event.get("ts"))
            text = event.get("event") or event.get("message") or event.get("state")
            if ts is not None and text:
                out.append((ts, f"{label}: {text}"))
    return out


def _parse_ts(value: object) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None
