"""Durations as operators write them: ``"15m"``, ``"90s"``, ``"1h"``, ``"1h30m"``, or seconds.

The runbook says "monitor for 15 minutes"; the commands and the rollouts API take the same words,
so one parser serves the CLI's options and the admin API's JSON.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds in ``value``; a bare number is seconds. Raises ``ValueError`` with the reason."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or text like 15m, 90s, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_units(text, value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration {value!r} must be a finite number of seconds >= 0")
    return seconds


def _parse_units(text: str, original: str) -> float:
    total, position = 0.0, 0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(
            f"cannot read duration {original!r}: use seconds or units like 15m, 90s, 1h, 1h30m"
        )
    return total


def format_duration(seconds: float) -> str:
    """``900.0`` as ``15m``, ``90`` as ``1m30s``, ``1.5`` as ``1.5s``: short, for people."""
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{rest}s" if rest else "",
    ]
    return "".join(parts)
