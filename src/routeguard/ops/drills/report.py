"""A drill's report: what happened, how fast, against which targets; printed and saved.

Targets are the issue's: detect in under 10 s; no client-visible error where a fallback exists;
recovery within the breaker cooldown + 5 s. A target that does not apply to a scenario is not
listed. The report is saved as JSON (for CI and scripts) and Markdown (for people).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Check", "DrillReport"]


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    measured: str
    passed: bool


@dataclass
class DrillReport:
    scenario: str
    duration_s: float
    started_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    detect_s: float | None = None
    mitigated_by: list[str] = field(default_factory=list)
    client_requests: int = 0
    client_errors: int = 0
    recover_s: float | None = None
    mttr_s: float | None = None
    cooldown_s: float | None = None
    checks: list[Check] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    class_over_time: list[tuple[float, str]] | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return self.skipped is None and all(c.passed for c in self.checks)

    def event(self, t: float, text: str) -> None:
        self.timeline.append((round(t, 2), text))

    def check(self, name: str, target: str, measured: str, passed: bool) -> None:
        self.checks.append(Check(name, target, measured, passed))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def markdown(self) -> str:
        verdict = "SKIPPED" if self.skipped else ("PASS" if self.passed else "FAIL")
        lines = [
            f"# Drill: {self.scenario} — {verdict}",
            "",
            f"Started {self.started_at}, load phases {self.duration_s:g} s.",
        ]
        if self.skipped:
            return "\n".join([*lines, "", self.skipped, ""])
        lines += [
            "",
            "| measure | value |",
            "|---|---|",
            f"| time to detect | {_s(self.detect_s)} |",
            f"| mitigated by | {', '.join(self.mitigated_by) or '-'} |",
            f"| client requests / errors | {self.client_requests} / {self.client_errors} |",
            f"| time to recover | {_s(self.recover_s)} |",
            f"| MTTR | {_s(self.mttr_s)} |",
            "",
            "| check | target | measured | result |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {c.name} | {c.target} | {c.measured} | {'pass' if c.passed else 'FAIL'} |"
            for c in self.checks
        ]
        lines += ["", "## Timeline", ""]
        lines += [f"- {t:7.2f} s  {text}" for t, text in self.timeline]
        lines += ["", "## Incident class over time", ""]
        if self.class_over_time is None:
            lines.append("n/a: this router has no GET /admin/status")
        else:
            lines += [f"- {t:7.2f} s  {cls}" for t, cls in self.class_over_time]
        if self.figures:
            lines += ["", "## Figures", "", "```json", json.dumps(self.figures, indent=2), "```"]
        return "\n".join(lines) + "\n"

    def save(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"drill-{self.scenario}-{time.strftime('%Y%m%dT%H%M%S')}"
        json_path = directory / f"{stem}.json"
        md_path = directory / f"{stem}.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        md_path.write_text(self.markdown())
        return json_path, md_path


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
