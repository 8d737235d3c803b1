"""Incidents: opened when the class turns P1/P0 (or by hand), closed by a person with a cause.

The runbook's documentation step is written after the fact, from memory, with shell heredocs.
Here the router keeps the record while the incident runs: when it opened and why (the class
evidence), every class change, every operator note, and when the class came back to OK, so MTTR
is measured, not remembered. ``resolve`` then writes the runbook's DECISIONS.log line in its
exact field order and the report (see :mod:`routeguard.ops.report`).

MTTR runs from the opening to the recovery the router observed (class back to OK); when the
router never saw one (an incident opened by hand for something it cannot see), to the resolve.
Incidents live in this replica's memory; with a fleet, each replica keeps its own record.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from routeguard.errors import RouteGuardError

__all__ = ["Incident", "IncidentBook", "IncidentError", "iso"]

AUTO_OPERATOR = "routeguard"
_CLASSES = ("P0", "P1", "P2")


class IncidentError(RouteGuardError):
    """An incident call that cannot be done now: 404 (none open / unknown id) or 409."""

    error_type = "invalid_request_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class Incident:
    """One incident; times are wall-clock Unix seconds."""

    id: str
    cls: str
    opened_at: float
    opened_by: str
    summary: str
    auto: bool
    audit_offset: int
    timeline: list[tuple[float, str]] = field(default_factory=list)
    # (time, upstream error rate, client 5xx rate, class value) sampled at each evaluation
    samples: list[tuple[float, float | None, float | None, int]] = field(default_factory=list)
    worst: str = ""
    recovered_at: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    cause: str = ""
    impact: str = ""
    prevention: str = ""
    report_path: str | None = None
    decision_line: str | None = None

    @property
    def end(self) -> float | None:
        return self.recovered_at if self.recovered_at is not None else self.resolved_at

    def mttr_minutes(self, now: float | None = None) -> int | None:
        """Whole minutes, rounded up: a 20-second incident still took "1m" to recover from."""
        end = self.end if self.end is not None else now
        if end is None:
            return None
        return max(1, math.ceil((end - self.opened_at) / 60 - 1e-9))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": self.cls,
            "worst_class": self.worst or self.cls,
            "opened_at": iso(self.opened_at),
            "opened_by": self.opened_by,
            "auto": self.auto,
            "summary": self.summary,
            "timeline": [{"ts": iso(ts), "event": event} for ts, event in self.timeline],
            "recovered_at": iso(self.recovered_at),
            "resolved_at": iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "cause": self.cause or None,
            "impact": self.impact or None,
            "prevention": self.prevention or None,
            "mttr_minutes": self.mttr_minutes(),
            "report_path": self.report_path,
        }


def _worse(a: str, b: str) -> str:
    """The more severe of two class names ("P0" beats "P1"; "" and "OK" lose to both)."""
    rank = {name: i for i, name in enumerate(("P0", "P1", "P2", "OK", ""))}
    return a if rank.get(a, 9) <= rank.get(b, 9) else b


class IncidentBook:
    """The open incident (at most one per replica) and the recent closed ones."""

    def __init__(self, wall: Callable[[], float], audit_size: Callable[[], int]) -> None:
        self.wall = wall
        self._audit_size = audit_size
        self.current: Incident | None = None
        self.recent: deque[Incident] = deque(maxlen=50)
        self._class = "OK"

    def find(self, incident_id: str | None) -> Incident:
        if incident_id in (None, ""):
            if self.current is not None:
                return self.current
            if self.recent:
                return self.recent[-1]
            raise IncidentError(404, "There is no incident yet.")
        for incident in [*([self.current] if self.current else []), *reversed(self.recent)]:
            if incident.id == incident_id:
                return incident
        raise IncidentError(404, f"Unknown incident {incident_id!r}.")

    # -- by hand -------------------------------------------------------------------------------
    def open(
        self,
        operator: str,
        *,
        incident_id: str | None = None,
        cls: str | None = None,
        summary: str = "",
        auto: bool = False,
    ) -> Incident:
        if self.current is not None:
            raise IncidentError(
                409, f"Incident {self.current.id} is open; note or resolve it first."
            )
        cls = cls or (self._class if self._class in _CLASSES else "P1")
        if cls not in _CLASSES:
            raise IncidentError(400, f"class must be one of {', '.join(_CLASSES)}.")
        now = self.wall()
        ident = incident_id or time.strftime("INC-%Y%m%d-%H%M%S", time.gmtime(now))
        if any(i.id == ident for i in self.recent):
            raise IncidentError(409, f"Incident id {ident!r} was already used.")
        incident = Incident(
            id=ident,
            cls=cls,
            opened_at=now,
            opened_by=operator,
            summary=summary,
            auto=auto,
            audit_offset=self._audit_size(),
            worst=cls,
        )
        how = "automatically" if auto else f"by {operator}"
        incident.timeline.append(
            (now, f"opened {how} as {cls}" + (f": {summary}" if summary else ""))
        )
        self.current = incident
        return incident

    def note(self, operator: str, text: str) -> Incident:
        incident = self._open_one()
        incident.timeline.append((self.wall(), f"{operator}: {text}"))
        return incident

    def resolve(self, operator: str, cause: str, impact: str, prevention: str) -> Incident:
        incident = self._open_one()
        now = self.wall()
        incident.resolved_at, incident.resolved_by = now, operator
        incident.cause, incident.impact, incident.prevention = cause, impact, prevention
        incident.timeline.append((now, f"resolved by {operator}: {cause}"))
        self.current = None
        self.recent.append(incident)
        return incident

    def _open_one(self) -> Incident:
        if self.current is None:
            raise IncidentError(404, "No incident is open.")
        return self.current

    # -- automatic -----------------------------------------------------------------------------
    def observe(
        self,
        cls: str,
        reasons: list[str],
        sample: tuple[float | None, float | None],
        *,
        auto_open: bool,
    ) -> Incident | None:
        """Follow the class after each evaluation; returns an incident opened just now."""
        previous, self._class = self._class, cls
        now = self.wall()
        opened = None
        incident = self.current
        if incident is None and auto_open and cls in ("P0", "P1"):
            opened = incident = self.open(
                AUTO_OPERATOR, cls=cls, summary="; ".join(reasons[:3]), auto=True
            )
        if incident is None:
            return None
        incident.samples.append((now, sample[0], sample[1], _CLASS_VALUE.get(cls, 0)))
        if opened is None and cls != previous:
            if cls == "OK":
                incident.recovered_at = now
                incident.timeline.append(
                    (now, f"class back to OK; MTTR {incident.mttr_minutes()}m (resolve to close)")
                )
            else:
                incident.recovered_at = None
                why = f": {reasons[0]}" if reasons else ""
                incident.timeline.append((now, f"class {previous} -> {cls}{why}"))
        incident.worst = _worse(incident.worst, cls)
        return opened


_CLASS_VALUE = {"OK": 0, "P2": 1, "P1": 2, "P0": 3}
