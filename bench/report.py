"""From measurements to verdicts: added latency, CPU ratios to nginx, targets, tables, files.

Everything compared here was measured in the same run: added latency is a gateway's
percentile minus the direct percentile for the same upstream and connection count; ratios are
to nginx's figure for the same cell. A pooled CPU figure is total CPU seconds over total
requests across a case's connection counts (more requests, less clock-tick rounding).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateways import CASES
from loadgen import WrkResult
from rich.console import Console
from rich.table import Table

__all__ = ["TARGETS", "LoadRow", "Report", "StreamRow"]

GATEWAY = "routeguard"
BASELINE = "nginx"
# name -> (limit, description); the verdict code below reads the limits from here.
TARGETS = {
    "cpu_ratio": (4.0, "own CPU per request <= 4x nginx (pooled over 1/16/64 conns)"),
    "added_p50_c1": (0.4, "added p50 latency at 1 connection <= 0.4 ms"),
    "added_p99_c1": (1.5, "added p99 latency at 1 connection <= 1.5 ms"),
    "ttfb_added": (0.5, "streaming time-to-first-byte added (p50) <= 0.5 ms"),
    "rss_mb": (80.0, "peak RSS < 80 MB"),
}


@dataclass
class LoadRow:
    case: str
    connections: int
    gateway: str
    wrk: WrkResult
    cpu_s: float | None  # None for direct (no gateway process)
    sched_s: float | None = None  # the same CPU by the scheduler's ns clock (cross-check)
    added_p50_ms: float = math.nan
    added_p99_ms: float = math.nan
    cpu_ratio: float = math.nan

    @property
    def cpu_us(self) -> float:
        if self.cpu_s is None or not self.wrk.requests:
            return math.nan
        return self.cpu_s / self.wrk.requests * 1e6

    @property
    def sched_us(self) -> float:
        if self.sched_s is None or not self.wrk.requests:
            return math.nan
        return self.sched_s / self.wrk.requests * 1e6

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case, "connections": self.connections, "gateway": self.gateway,
            **self.wrk.to_json(), "cpu_s": self.cpu_s, "cpu_us_per_request": _num(self.cpu_us),
            "sched_s": self.sched_s, "sched_us_per_request": _num(self.sched_us),
            "added_p50_ms": _num(self.added_p50_ms), "added_p99_ms": _num(self.added_p99_ms),
            "cpu_ratio_to_nginx": _num(self.cpu_ratio),
        }


@dataclass
class StreamRow:
    gateway: str
    summary: dict[str, Any]
    cpu_s: float | None
    ttfb_added_ms: float = math.nan
    total_added_ms: float = math.nan

    @property
    def cpu_us(self) -> float:
        streams = self.summary["streams"]
        if self.cpu_s is None or not streams:
            return math.nan
        return float(self.cpu_s / streams * 1e6)

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway, **{k: _num(v) for k, v in self.summary.items()},
            "cpu_s": self.cpu_s, "cpu_us_per_stream": _num(self.cpu_us),
            "ttfb_added_p50_ms": _num(self.ttfb_added_ms),
            "total_added_p50_ms": _num(self.total_added_ms),
        }


def _num(value: Any) -> Any:
    """JSON has no NaN: write null instead."""
    return None if isinstance(value, float) and math.isnan(value) else value


@dataclass
class Report:
    meta: dict[str, Any]
    load: list[LoadRow] = field(default_factory=list)
    streams: list[StreamRow] = field(default_factory=list)
    rss_kib: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    sections: list[Any] = field(default_factory=list)  # cases.Section, in run order

    # -- analysis -------------------------------------------------------------------------

    def gateways(self) -> list[str]:
        names: list[str] = []
        for row in self.load:
            if row.gateway not in names:
                names.append(row.gateway)
        return names

    def cases(self) -> list[str]:
        return [key for key in CASES if any(row.case == key for row in self.load)]

    def _cell(self, case: str, conns: int, gateway: str) -> LoadRow | None:
        for row in self.load:
            if (row.case, row.connections, row.gateway) == (case, conns, gateway):
                return row
        return None

    def pooled_cpu_us(self, case: str, gateway: str, *, sched: bool = False) -> float:
        rows = [r for r in self.load if r.case == case and r.gateway == gateway]
        values = [r.sched_s if sched else r.cpu_s for r in rows]
        requests = sum(r.wrk.requests for r in rows)
        if not rows or None in values or not requests:
            return math.nan
        cpu = sum(v for v in values if v is not None)
        return cpu / requests * 1e6

    def errors(self, gateway: str) -> int:
        load = sum(r.wrk.errors for r in self.load if r.gateway == gateway)
        return load + sum(int(s.summary["errors"]) for s in self.streams if s.gateway == gateway)

    def analyse(self) -> None:
        for row in self.load:
            direct = self._cell(row.case, row.connections, "direct")
            base = self._cell(row.case, row.connections, BASELINE)
            if direct is not None and row.gateway != "direct":
                row.added_p50_ms = row.wrk.p50_ms - direct.wrk.p50_ms
                row.added_p99_ms = row.wrk.p99_ms - direct.wrk.p99_ms
            if base is not None and base.cpu_us > 0:
                row.cpu_ratio = row.cpu_us / base.cpu_us
        direct_stream = next((s for s in self.streams if s.gateway == "direct"), None)
        for stream in self.streams:
            if direct_stream is not None and stream.gateway != "direct":
                stream.ttfb_added_ms = (
                    stream.summary["ttfb_p50_ms"] - direct_stream.summary["ttfb_p50_ms"]
                )
                stream.total_added_ms = (
                    stream.summary["total_p50_ms"] - direct_stream.summary["total_p50_ms"]
                )
        self.targets = self._verdicts()
        for section in self.sections:
            self.targets += section.verdicts

    def _verdicts(self) -> list[dict[str, Any]]:
        others = [g for g in self.gateways() if g not in ("direct", GATEWAY)]
        verdicts: list[dict[str, Any]] = []

        def add(key: str, scope: str, values: dict[str, float], strict: bool = False) -> None:
            limit, text = TARGETS[key]
            value = values.get(GATEWAY, math.nan)
            if math.isnan(value):
                verdict = "n/a"
            else:
                verdict = "PASS" if (value < limit if strict else value <= limit) else "MISS"
            verdicts.append({
                "target": text, "scope": scope, "limit": limit,
                "routeguard": _num(value), "verdict": verdict,
                "others": {g: _num(values.get(g, math.nan)) for g in others},
            })

        for case in self.cases():
            base = self.pooled_cpu_us(case, BASELINE)
            add("cpu_ratio", case, {g: self.pooled_cpu_us(case, g) / base
                                    for g in self.gateways() if g != "direct"})
        for case in self.cases():
            cells = {g: self._cell(case, 1, g) for g in self.gateways()}
            add("added_p50_c1", case,
                {g: c.added_p50_ms for g, c in cells.items() if c is not None})
            add("added_p99_c1", case,
                {g: c.added_p99_ms for g, c in cells.items() if c is not None})
        if self.streams:
            add("ttfb_added", "sim stream", {s.gateway: s.ttfb_added_ms for s in self.streams})
        add("rss_mb", "whole run", {g: kib * 1024 / 1e6 for g, kib in self.rss_kib.items()},
            strict=True)
        return verdicts

    # -- output ---------------------------------------------------------------------------

    def load_table(self, case: str) -> tuple[list[str], list[list[str]]]:
        head = ["gateway", "conns", "RPS", "p50 ms", "p99 ms", "+p50 ms", "+p99 ms",
                "CPU µs/req", "CPU x nginx", "sched µs/req", "errors"]
        rows = []
        for conns in sorted({r.connections for r in self.load if r.case == case}):
            for gateway in self.gateways():
                row = self._cell(case, conns, gateway)
                if row is None:
                    continue
                rows.append([
                    gateway, str(conns), f"{row.wrk.rps:,.0f}", _f(row.wrk.p50_ms, 3),
                    _f(row.wrk.p99_ms, 3), _f(row.added_p50_ms, 3, sign=True),
                    _f(row.added_p99_ms, 3, sign=True), _f(row.cpu_us, 1),
                    _f(row.cpu_ratio, 2), _f(row.sched_us, 1), str(row.wrk.errors),
                ])
        return head, rows

    def summary_table(self) -> tuple[list[str], list[list[str]]]:
        head = ["gateway", *(f"CPU µs/req {c}" for c in self.cases()), "CPU x nginx (static)",
                "sched x nginx (static)", "peak RSS MB", "stream TTFB p50 ms", "+TTFB ms",
                "stream total p50 ms", "CPU µs/stream", "errors"]
        rows = []
        base = self.pooled_cpu_us("static", BASELINE)
        base_sched = self.pooled_cpu_us("static", BASELINE, sched=True)
        for gateway in self.gateways():
            stream = next((s for s in self.streams if s.gateway == gateway), None)
            rss = self.rss_kib.get(gateway)
            rows.append([
                gateway, *(_f(self.pooled_cpu_us(c, gateway), 1) for c in self.cases()),
                _f(self.pooled_cpu_us("static", gateway) / base, 2),
                _f(self.pooled_cpu_us("static", gateway, sched=True) / base_sched, 2),
                _f(rss * 1024 / 1e6, 1) if rss else "-",
                _f(stream.summary["ttfb_p50_ms"], 3) if stream else "-",
                _f(stream.ttfb_added_ms, 3, sign=True) if stream else "-",
                _f(stream.summary["total_p50_ms"], 3) if stream else "-",
                _f(stream.cpu_us, 1) if stream else "-",
                str(self.errors(gateway)),
            ])
        return head, rows

    def target_table(self) -> tuple[list[str], list[list[str]]]:
        others = [g for g in self.gateways() if g not in ("direct", GATEWAY)]
        head = ["target (RouteGuard, 1 worker)", "case", "RouteGuard", "verdict",
                *(f"{g} (ref.)" for g in others)]
        rows = [
            [t["target"], t["scope"], _f(t["routeguard"], 3), t["verdict"],
             *(_f(t["others"].get(g), 3) for g in others)]
            for t in self.targets
        ]
        return head, rows

    def print(self, console: Console) -> None:
        for case in self.cases():
            self._print_table(console, f"Load: {CASES[case].title}", *self.load_table(case))
        self._print_table(console, "Per gateway (CPU pooled over connection counts)",
                          *self.summary_table())
        for section in self.sections:
            self._print_table(console, section.title, section.head, section.rows)
            if section.note:
                console.print(f"  {section.note}")
        self._print_table(console, "Targets", *self.target_table())
        for note in self.notes:
            console.print(f"[yellow]note:[/] {note}")

    @staticmethod
    def _print_table(console: Console, title: str, head: list[str], rows: list[list[str]]) -> None:
        table = Table(title=title, title_justify="left")
        for index, name in enumerate(head):
            table.add_column(name, justify="left" if index == 0 else "right")
        for row in rows:
            styled = [f"[green]{c}[/]" if c == "PASS" else f"[red]{c}[/]" if c == "MISS" else c
                      for c in row]
            table.add_row(*styled)
        console.print(table)

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta, "notes": self.notes, "targets": self.targets,
            "load": [r.to_json() for r in self.load],
            "streaming": [s.to_json() for s in self.streams],
            "peak_rss_kib": self.rss_kib,
            **{section.key: {"note": section.note, "rows": section.data}
               for section in self.sections},
            "pooled_cpu_us_per_request": {
                c: {g: _num(self.pooled_cpu_us(c, g)) for g in self.gateways()}
                for c in self.cases()
            },
            "pooled_sched_us_per_request": {
                c: {g: _num(self.pooled_cpu_us(c, g, sched=True)) for g in self.gateways()}
                for c in self.cases()
            },
        }

    def to_markdown(self) -> str:
        meta = self.meta
        lines = [f"# RouteGuard benchmark, {meta['started']}", "",
                 f"`{meta['command']}` — {meta['rounds']} interleaved round(s) of "
                 f"{meta['duration_s']} s per load step (medians of rounds), "
                 f"{meta['streams']} streams per gateway; gateway on core {meta['gateway_core']}, "
                 f"wrk and upstreams on core {meta['load_core']}. RouteGuard source: "
                 f"`{meta.get('routeguard_source', '?')}`; load average before/after: "
                 f"{meta['loadavg_before'][0]:.2f}/{meta.get('loadavg_after', [math.nan])[0]:.2f}.",
                 ""]
        sections = [(f"Load: {CASES[c].title}", self.load_table(c)) for c in self.cases()]
        sections.append(("Per gateway", self.summary_table()))
        sections += [(s.title, (s.head, s.rows)) for s in self.sections]
        sections.append(("Targets", self.target_table()))
        notes = {s.title: s.note for s in self.sections if s.note}
        for title, (head, rows) in sections:
            lines += [f"## {title}", "", "| " + " | ".join(head) + " |",
                      "|" + "|".join("---" for _ in head) + "|"]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines += ["", notes[title], ""] if title in notes else [""]
        if self.notes:
            lines += ["## Notes", "", *(f"- {n}" for n in self.notes), ""]
        return "\n".join(lines)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
        json_path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        md_path.write_text(self.to_markdown())
        return json_path, md_path


def _f(value: float | None, digits: int, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"

