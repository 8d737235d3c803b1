"""The decisions log of the runbook ("Incident Documentation"): one line per operator action.

A line looks like the runbook's ``echo ... >> DECISIONS.log``::

    2026-11-24T14:03:11Z | OPERATOR=alice | ACTION=resolve_outage | INCIDENT=INC-42 | MTTR=17m

so lines written by RouteGuard and lines written by hand during an incident read (and parse)
alike.

Appends are atomic across threads and processes: each line is written by a single
``os.write`` on a file descriptor opened with ``O_APPEND``, which on a local POSIX filesystem
places and writes the whole buffer as one unit, so two routers (or a router and an operator's
``echo``) never interleave inside a line. A lock serialises this process's threads as well. The
guarantee does not hold on NFS, which emulates ``O_APPEND``; keep the log on local disk.

Values are sanitised so a line stays one line of ``KEY=VALUE`` fields: newlines and other control
characters become spaces and ``|`` becomes ``/``. Anything that looks like a credential is
masked; the decisions log is read by many people and kept for years.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from routeguard.observability.logs import redact, redact_field

__all__ = ["LINE_PATTERN", "MAX_VALUE_CHARS", "AuditLog", "parse_line"]

LINE_PATTERN: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
    r" \| OPERATOR=[^|\n]*"
    r"(?: \| [A-Z][A-Z0-9_]*=[^|\n]*)+$"
)
"""What a line written by :meth:`AuditLog.append` always matches."""

MAX_VALUE_CHARS: Final = 1024
"""Longer values are cut: a decision log line is a summary, and one write should stay small."""

_FIELD_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_SEPARATOR = " | "
_RESERVED_KEYS = frozenset({"OPERATOR", "ACTION"})


def _clean(value: str | int | float) -> str:
    text = _CONTROL.sub(" ", str(value)).replace("|", "/").strip()
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def _safe(key: str, value: str | int | float) -> str:
    masked = redact_field(key, value)
    text = masked if isinstance(masked, str) else str(masked)
    # redact() runs again after cleaning: joining lines can form a `key: value` pair.
    return redact(_clean(text))


class AuditLog:
    """Appends to, and reads back, a runbook-format decisions log.

    ``clock`` returns Unix seconds (``time.time`` by default); tests pass a fixed one.
    """

    def __init__(
        self,
        path: Path | str = "DECISIONS.log",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()

    def format(self, operator: str, action: str, /, **fields: str | int | float) -> str:
        """The line ``append`` would write for these arguments (without its newline)."""
        for key in fields:
            if key.upper() in _RESERVED_KEYS:
                raise ValueError(f"invalid audit field name: {key!r}")
        return self.format_fields(operator, [("ACTION", action), *fields.items()])

    def format_fields(self, operator: str, fields: Sequence[tuple[str, str | int | float]]) -> str:
        """A line with ``fields`` in exactly this order after OPERATOR; one must be ACTION.

        For lines whose order is prescribed elsewhere, such as the runbook's
        ``OPERATOR= | CHAPTER=38 | ACTION=resolve_outage | ...``.
        """
        action = [value for key, value in fields if key.upper() == "ACTION"]
        if not _clean(operator) or len(action) != 1 or not _clean(action[0]):
            raise ValueError("an audit line needs an operator and exactly one action")
        parts = [
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())),
            f"OPERATOR={_safe('operator', operator)}",
        ]
        seen = {"OPERATOR"}
        for key, value in fields:
            name = key.upper()
            if not _FIELD_KEY.fullmatch(key) or name in seen:
                raise ValueError(f"invalid or repeated audit field name: {key!r}")
            seen.add(name)
            parts.append(f"{name}={_safe(key, value)}")
        return _SEPARATOR.join(parts)

    def append(self, operator: str, action: str, /, **fields: str | int | float) -> str:
        """Append one line recording ``operator`` doing ``action``; returns the line written.

        Field names are written upper-case, in the order given, after OPERATOR and ACTION.
        """
        return self._write(self.format(operator, action, **fields))

    def append_fields(self, operator: str, fields: Sequence[tuple[str, str | int | float]]) -> str:
        """Append a line with ``fields`` in the given order (see :meth:`format_fields`)."""
        return self._write(self.format_fields(operator, fields))

    def _write(self, line: str) -> str:
        data = (line + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, data)
            finally:
                os.close(fd)
        if written != len(data):
            # Only a full disk or a quota ends a regular-file write early; say so rather than
            # write the rest separately and risk an interleaved line.
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
        return line

    def read(self, limit: int | None = None) -> list[dict[str, str]]:
        """The last ``limit`` entries (all if ``None``), oldest first.

        Each entry maps ``ts`` to the timestamp and every ``KEY`` (``OPERATOR``, ``ACTION``,
        then the fields) to its value. Lines that are not in the format (a stray hand edit)
        are skipped. A missing file reads as empty.
        """
        if limit is not None and limit <= 0:
            return []
        try:
            handle = self.path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        entries: deque[dict[str, str]] = deque(maxlen=limit)
        with handle:
            for raw in handle:
                entry = parse_line(raw.rstrip("\n"))
                if entry is not None:
                    entries.append(entry)
        return list(entries)


_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def parse_line(line: str) -> dict[str, str] | None:
    """One decisions-log line as ``{"ts": ..., "OPERATOR": ..., ...}``; ``None`` if malformed."""
    ts, *pairs = line.split(_SEPARATOR)
    if not _TS.fullmatch(ts.strip()) or not pairs:
        return None
    entry = {"ts": ts.strip()}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _FIELD_KEY.fullmatch(key.strip()):
            return None
        entry[key.strip()] = value.strip()
    return entry
