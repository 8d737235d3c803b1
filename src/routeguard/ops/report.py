"""The runbook's incident report, and the DECISIONS.log line that closes an incident.

Both follow the runbook's "Incident Documentation" step to the letter, so a report written by
RouteGuard reads like one written by hand: the decisions line in the order
``ts | OPERATOR= | CHAPTER=38 | ACTION=resolve_outage | INCIDENT= | CAUSE= | MTTR=Nm | IMPACT=``,
and the Markdown template's sections (Summary, Root Cause, Actions Taken, Prevention Measures).
The router adds what nobody writes down by hand: a timeline and an error-rate chart of the
incident window, and "Actions Taken" filled from the decisions log and the breaker and rollout
events between the opening and the resolve.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from routeguard.observability.audit import AuditLog, parse_line
from routeguard.ops.chart import error_rate_chart
from routeguard.ops.incidents import Incident, iso

__all__ = [
    "DECISION_FIELDS",
    "Report",
    "audit_entries_since",
    "build_report",
    "decision_fields",
    "write_report",
]

DECISION_FIELDS = ("CHAPTER", "ACTION", "INCIDENT", "CAUSE", "MTTR", "IMPACT")
"""The runbook's field order after OPERATOR."""


def decision_fields(incident: Incident) -> list[tuple[str, str | int | float]]:
    """The runbook's resolve line for ``incident`` (AuditLog sanitises the values)."""
    return [
        ("CHAPTER", 38),
        ("ACTION", "resolve_outage"),
        ("INCIDENT", incident.id),
        ("CAUSE", incident.cause),
        ("MTTR", f"{incident.mttr_minutes()}m"),
        ("IMPACT", incident.impact),
    ]


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    markdown: str
    chart_png: bytes

    def to_json(self, incident_id: str) -> dict[str, str]:
        return {
            "id": incident_id,
            "name": self.name,
            "markdown": self.markdown,
            "chart_png_base64": base64.b64encode(self.chart_png).decode(),
        }


def _hm(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _audit_action(entry: Mapping[str, str]) -> str:
    rest = ", ".join(
        f"{k}={v}" for k, v in entry.items() if k not in ("ts", "OPERATOR", "ACTION") and v
    )
    return f"{entry.get('OPERATOR', '?')}: {entry.get('ACTION', '?')}" + (
        f" ({rest})" if rest else ""
    )


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "/")


def build_report(
    incident: Incident,
    *,
    audit_entries: Sequence[Mapping[str, str]],
    events: Sequence[tuple[float, str]],
    thresholds: dict[str, float],
) -> Report:
    """The Markdown report and its chart. ``events`` are breaker/rollout events (wall time)."""
    end = incident.end or incident.resolved_at or time.time()
    written = incident.resolved_at or time.time()
    name = time.strftime("router_incident_%Y%m%d_%H%M", time.gmtime(written))
    chart = error_rate_chart(
        incident.samples, thresholds, f"Error rate during {incident.id} ({incident.worst})"
    )
    actions = [
        (entry.get("ts", ""), _audit_action(entry))
        for entry in audit_entries
        if entry.get("ACTION") != "resolve_outage"
    ]
    actions += [(iso(t) or "", text) for t, text in events if incident.opened_at <= t <= end]
    actions.sort(key=lambda action: action[0])  # stable: same-second events keep their order
    mttr = incident.mttr_minutes()
    lines = [
        f"# Router Incident Report - {_hm(written)}",
        "",
        "## Summary",
        f"- **Incident ID**: {incident.id}",
        f"- **Start Time**: {iso(incident.opened_at)}",
        f"- **End Time**: {iso(end)}",
        f"- **MTTR**: {mttr} minutes",
        f"- **Impact**: {incident.impact or 'not stated'}",
        f"- **Class**: {incident.worst or incident.cls} at worst"
        + (" (opened automatically)" if incident.auto else f" (opened by {incident.opened_by})"),
    ]
    if incident.summary:
        lines.append(f"- **Evidence at opening**: {incident.summary}")
    lines += ["", "## Root Cause", incident.cause or "Not stated.", "", "## Actions Taken"]
    if actions:
        lines += [f"- {ts} — {text}" for ts, text in actions]
    else:
        lines.append("- No operator actions, breaker changes or rollouts were recorded.")
    lines += [
        "",
        "## Prevention Measures",
        incident.prevention or "To be decided at the post-mortem (within 48 hours).",
        "",
        "## Timeline",
        "| time (UTC) | event |",
        "|---|---|",
    ]
    lines += [f"| {iso(ts)} | {_cell(text)} |" for ts, text in incident.timeline]
    lines += [
        "",
        "## Error rate",
        f"![Error rate during {incident.id}]({name}.png)",
        "",
    ]
    return Report(name, "\n".join(lines), chart)


def write_report(report: Report, directory: str | Path) -> Path:
    """Save ``NAME.md`` and ``NAME.png``; a second report in the same minute gets a suffix."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    name, n = report.name, 1
    while (folder / f"{name}.md").exists():
        n += 1
        name = f"{report.name}_{n}"
    markdown = report.markdown.replace(f"]({report.name}.png)", f"]({name}.png)")
    (folder / f"{name}.png").write_bytes(report.chart_png)
    path = folder / f"{name}.md"
    path.write_text(markdown, encoding="utf-8")
    return path


def audit_entries_since(log: AuditLog, offset: int) -> list[dict[str, str]]:
    """Decisions-log entries appended after byte ``offset`` (the file's size at the opening)."""
    try:
        with log.path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return []
    entries = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        entry = parse_line(raw)
        if entry is not None:
            entries.append(entry)
    return entries
