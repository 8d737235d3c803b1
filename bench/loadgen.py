"""Run ``wrk --latency`` and read its report into numbers.

wrk is pinned to the load core with one thread (a second thread on the same core only adds
switches). Its report is parsed for throughput, the latency distribution, and every kind of
failure it counts: non-2xx/3xx responses and socket errors (connect, read, write, timeout).
"""

from __future__ import annotations

import re
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from procs import Supervisor

__all__ = ["WrkResult", "combine", "parse_wrk", "run_wrk"]

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class WrkResult:
    """One wrk run: latencies in milliseconds."""

    requests: int = 0
    duration_s: float = 0.0
    rps: float = 0.0
    p50_ms: float = float("nan")
    p75_ms: float = float("nan")
    p90_ms: float = float("nan")
    p99_ms: float = float("nan")
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    raw: str = ""
    rounds: list[dict[str, float]] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("raw")
        data["errors"] = self.errors
        return data


def combine(results: list[WrkResult]) -> WrkResult:
    """Several interleaved rounds of one cell: counts add up, rates and percentiles are medians.

    The median of per-round figures resists a neighbour's burst on a shared machine better
    than one long run would.
    """
    merged = WrkResult(
        requests=sum(r.requests for r in results),
        duration_s=sum(r.duration_s for r in results),
        rps=statistics.median(r.rps for r in results),
        non_2xx=sum(r.non_2xx for r in results),
    )
    for pct in ("p50_ms", "p75_ms", "p90_ms", "p99_ms"):
        setattr(merged, pct, statistics.median(getattr(r, pct) for r in results))
    for r in results:
        for kind, count in r.socket_errors.items():
            merged.socket_errors[kind] = merged.socket_errors.get(kind, 0) + count
    merged.rounds = [
        {"requests": r.requests, "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms}
        for r in results
    ]
    return merged


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(text: str) -> WrkResult:
    """Read a ``wrk --latency`` report."""
    result = WrkResult(raw=text)
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if found:
            setattr(result, f"p{pct}_ms", _ms(found.group(1), found.group(2)))
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if found:
        result.requests = int(found.group(1))
        result.duration_s = _ms(found.group(2), found.group(3)) / 1e3
    found = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if found:
        result.rps = float(found.group(1))
    found = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if found:
        result.non_2xx = int(found.group(1))
    found = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if found:
        result.socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, found.groups()), strict=True)
        )
    return result


def run_wrk(
    sup: Supervisor, *, url: str, script: Path, connections: int, duration_s: float, core: int,
    timeout_s: float = 5.0,
) -> WrkResult:
    """Run wrk once and return its parsed report (raises if wrk itself fails)."""
    argv = [
        "wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", f"--timeout={timeout_s:g}s",
        "--latency", "-s", str(script), url,
    ]
    proc = sup.start(f"wrk-c{connections}", argv, core=core)
    try:
        proc.popen.wait(duration_s + timeout_s + 15)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"wrk did not finish: {' '.join(argv)}") from None
    finally:
        sup.stop(proc, timeout_s=1.0)
    text = proc.log.read_text(errors="replace")
    if proc.popen.returncode != 0 or "requests in" not in text:
        raise RuntimeError(f"wrk failed ({proc.popen.returncode}): {text[-500:]}")
    return parse_wrk(text)
