"""What the servers said while under load: errors, warnings, and RouteGuard's access log.

RouteGuard writes one JSON line per request (``server.access_log``, on by default), so a full
run leaves hundreds of megabytes of log. The scan reads each log once, counts error and warning
lines and the statuses of access-log lines, and keeps a small copy: every line that is not a
successful access-log line, up to a cap.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LogFindings", "keep_logs"]

KEEP_LINES = 2000
_ERROR_MARKS = ('"level":"ERROR"', '"level":"CRITICAL"', " ERROR ", "Traceback", "[error]",
                "[crit]", "[alert]", "[emerg]", "ERROR:")
_WARNING_MARKS = ('"level":"WARNING"', " WARNING ", "[warn]", "WARNING:")


@dataclass
class LogFindings:
    """One log's counts, and the first error line seen."""

    lines: int = 0
    errors: int = 0
    warnings: int = 0
    access_statuses: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "errors": self.errors, "warnings": self.warnings,
                "access_statuses": self.access_statuses, "first_error": self.first_error}


def _access_status(line: str) -> str | None:
    if '"event":"request"' not in line:
        return None
    try:
        return str(json.loads(line).get("status"))
    except ValueError:
        return None


def scan(log: Path, keep: Path) -> LogFindings:
    """Count what ``log`` says and write its interesting lines to ``keep``."""
    found = LogFindings()
    kept = 0
    with log.open(errors="replace") as src, keep.open("w") as out:
        for line in src:
            found.lines += 1
            status = _access_status(line)
            if status is not None:
                found.access_statuses[status] = found.access_statuses.get(status, 0) + 1
                if status == "200":
                    continue
            if any(mark in line for mark in _ERROR_MARKS):
                found.errors += 1
                found.first_error = found.first_error or line.strip()[:300]
            elif any(mark in line for mark in _WARNING_MARKS):
                found.warnings += 1
            if kept < KEEP_LINES:
                out.write(line)
                kept += 1
        if kept >= KEEP_LINES:
            out.write(f"... (kept the first {KEEP_LINES} lines that were not access-log 200s)\n")
    return found


def keep_logs(tmp: Path, dest: Path) -> dict[str, LogFindings]:
    """Scan every server log in ``tmp`` into ``dest`` (wrk's are parsed already), drop ``tmp``."""
    dest.mkdir(parents=True, exist_ok=True)
    findings = {}
    for log in sorted(tmp.glob("*.log")):
        if not log.name.startswith("wrk-"):
            findings[log.stem] = scan(log, dest / log.name)
    shutil.rmtree(tmp, ignore_errors=True)
    return findings
