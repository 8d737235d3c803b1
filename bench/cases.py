"""The bench cases beyond one request at a time: concurrent streams, scale-out, memory, failover.

Each ``measure_*`` runs one case and adds a :class:`Section` (a table for the terminal and the
Markdown, the same rows for the JSON) and its target verdicts to the report:

* **Concurrent streams** (``stream_clients``, default 16 and 64): every client keeps one
  connection and streams back to back; two upstream cases: ``gap`` (20 events 20 ms apart:
  what users feel, TTFB) and ``sim`` (the same 20 events in one piece: CPU and streams/s).
* **Scale-out**: ``serve --workers 1`` on core 0 against ``--workers 2`` on cores 0-1, wrk
  at 64 connections on the static upstream. On a 2-core box the load (wrk, the static nginx)
  must share core 1 with the second worker; with 3+ cores it moves to core 2.
* **Memory per connection**: RSS (``VmRSS`` summed over the process tree) with 1,000 and
  5,000 streams held open at once (events 1 s apart), per stream; again once they ended; and
  per idle keep-alive connection (one answered request each, then silence).
* **Failover under load**: wrk at 16 connections on a group of three deployments while the
  simulator's ``/_sim/faults`` API turns one of them to 100 % errors, then to hanging, then
  heals it; throughput and client-visible errors per phase against the steady phase.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concurrency import hold_idle, hold_streams, run_concurrent_streams
from gateways import (
    CASES,
    GATEWAY_CORE,
    HOLD_GAP_MS,
    LOAD_CORE,
    Gateway,
    Upstreams,
    render,
    set_fault,
    start_routeguard,
)
from loadgen import run_wrk
from procs import Supervisor, rss_kib, tree_cpu_s
from streaming import StreamResult

__all__ = [
    "CHUNKS_PER_STREAM",
    "Section",
    "measure_concurrent_streams",
    "measure_failover",
    "measure_memory",
    "measure_scaleout",
]

CHUNKS_PER_STREAM = 20  # role, 18 words, finish (then data: [DONE])
BASELINE = "nginx"
GATEWAY = "routeguard"


@dataclass
class Section:
    """One case's results: a titled table, the same data as JSON, its verdicts and a chart feed."""

    key: str
    title: str
    head: list[str]
    rows: list[list[str]] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def _verdict(target: str, scope: str, limit: float, value: float,
             others: dict[str, float] | None = None, *, higher_is_better: bool = False,
             ) -> dict[str, Any]:
    if math.isnan(value):
        verdict = "n/a"
    else:
        verdict = "PASS" if (value >= limit if higher_is_better else value <= limit) else "MISS"
    return {"target": target, "scope": scope, "limit": limit, "routeguard": _num(value),
            "verdict": verdict, "others": {k: _num(v) for k, v in (others or {}).items()}}


def _num(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _f(value: float, digits: int, sign: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _cpu(g: Gateway) -> float:
    return tree_cpu_s(g.proc.pid) if g.proc is not None else math.nan


# -- concurrent streams -------------------------------------------------------------------------

def measure_concurrent_streams(
    *, gateways: list[Gateway], ups: Upstreams, api_key: str, clients: tuple[int, ...],
    duration_s: float, rounds: int, log: Callable[[str], None],
) -> Section:
    section = Section(
        "concurrent_streams", "Concurrent streams (20 events each; gap: 20 ms between events, "
        "sim: all at once)",
        ["case", "clients", "gateway", "streams/s", "x nginx", "TTFB p50 ms", "TTFB p99 ms",
         "+TTFB p50 ms", "total p50 ms", "CPU µs/stream", "CPU µs/chunk", "CPU x nginx",
         "errors"])
    for key in ("gap", "sim"):
        case = CASES[key]
        for n in clients:
            results = {g.name: StreamResult() for g in gateways}
            seconds = dict.fromkeys(results, 0.0)
            cpu = dict.fromkeys(results, 0.0)
            rates: dict[str, list[float]] = {g.name: [] for g in gateways}
            for round_ in range(rounds):
                for g in gateways:
                    before = _cpu(g)
                    part, took = run_concurrent_streams(g.url(case, ups), Gateway.model(case),
                                                        api_key, clients=n, duration_s=duration_s)
                    cpu[g.name] += _cpu(g) - before
                    seconds[g.name] += took
                    rates[g.name].append(len(part.ttfb_ms) / took)
                    results[g.name].extend(part)
                    log(f"  streams {key:3} x{n:<3} r{round_ + 1} {g.name:11} "
                        f"{rates[g.name][-1]:8,.0f} streams/s  ttfb p50 "
                        f"{part.summary()['ttfb_p50_ms']:.3f} ms  errors {part.errors}")
            rows = {}
            for g in gateways:
                summary = results[g.name].summary()
                streams = summary["streams"]
                cpu_stream = cpu[g.name] / streams * 1e6 if streams else math.nan
                rows[g.name] = {
                    "case": key, "clients": n, "gateway": g.name,
                    "streams_per_s": statistics.median(rates[g.name]),
                    "cpu_s": cpu[g.name] if g.proc is not None else None,
                    "cpu_us_per_stream": cpu_stream,
                    "cpu_us_per_chunk": cpu_stream / CHUNKS_PER_STREAM,
                    **summary,
                }
            direct, base = rows.get("direct"), rows.get(BASELINE)
            for name, row in rows.items():
                row["ttfb_added_p50_ms"] = (row["ttfb_p50_ms"] - direct["ttfb_p50_ms"]
                                            if direct and name != "direct" else math.nan)
                row["streams_ratio_to_nginx"] = (row["streams_per_s"] / base["streams_per_s"]
                                                 if base else math.nan)
                row["cpu_ratio_to_nginx"] = (row["cpu_us_per_stream"] / base["cpu_us_per_stream"]
                                             if base and name != "direct" else math.nan)
                section.rows.append([
                    key, str(n), name, f"{row['streams_per_s']:,.0f}",
                    _f(row["streams_ratio_to_nginx"], 2), _f(row["ttfb_p50_ms"], 3),
                    _f(row["ttfb_p99_ms"], 3), _f(row["ttfb_added_p50_ms"], 3, sign=True),
                    _f(row["total_p50_ms"], 2), _f(row["cpu_us_per_stream"], 0),
                    _f(row["cpu_us_per_chunk"], 1), _f(row["cpu_ratio_to_nginx"], 2),
                    str(row["errors"]),
                ])
                section.data.append({k: _num(v) for k, v in row.items()} | {
                    "ttfb_ms_sample": sorted(results[name].ttfb_ms)[:: max(
                        1, len(results[name].ttfb_ms) // 400)]})
            rg, ng = rows.get(GATEWAY), rows.get(BASELINE)
            if rg is None or ng is None:
                continue
            if key == "gap" and n == 16:
                section.verdicts.append(_verdict(
                    "stream TTFB p50 at 16 streams <= 1 ms above nginx's", "gap x16", 1.0,
                    rg["ttfb_p50_ms"] - ng["ttfb_p50_ms"]))
            if key == "sim":
                section.verdicts.append(_verdict(
                    "streams/s >= 80 % of nginx's", f"sim x{n}", 0.8,
                    rg["streams_ratio_to_nginx"], higher_is_better=True))
            if key == "gap":
                section.verdicts.append(_verdict(
                    "own CPU per relayed chunk <= 3x nginx", f"gap x{n}", 3.0,
                    rg["cpu_ratio_to_nginx"]))
    return section


# -- scale-out ----------------------------------------------------------------------------------

def measure_scaleout(
    *, sup: Supervisor, tmp: Path, ups: Upstreams, api_key: str, duration_s: float,
    rounds: int, log: Callable[[str], None],
) -> Section:
    cpus = os.cpu_count() or 1
    load_core = 2 if cpus >= 3 else 1
    placement = (f"workers=1 on core {GATEWAY_CORE}; workers=2 on cores 0-1; wrk and the static "
                 f"upstream on core {load_core}"
                 + (" (shared with the second worker: only 2 cores)" if load_core == 1 else ""))
    section = Section(
        "scaleout", "Scale-out: serve --workers 1 vs 2 (static upstream, 64 connections)",
        ["gateway", "RPS", "x workers=1", "p50 ms", "p99 ms", "CPU µs/req",
         "RPS per CPU-second", "errors"], note=placement)
    w1 = start_routeguard(sup, tmp, ups, "routeguard-w1", workers=1, cores=str(GATEWAY_CORE))
    w2 = start_routeguard(sup, tmp, ups, "routeguard-w2", workers=2, cores="0,1")
    case = CASES["static"]
    script = render("post.lua", tmp / "post-scaleout.lua", MODEL=Gateway.model(case),
                    API_KEY=api_key)
    runs: dict[str, list[Any]] = {"workers=1": [], "workers=2": []}
    cpu = dict.fromkeys(runs, 0.0)
    for g, _name in ((w1, "workers=1"), (w2, "workers=2")):
        run_wrk(sup, url=g.url(case, ups), script=script, connections=64, duration_s=2,
                core=load_core)
    for round_ in range(rounds):
        for g, name in ((w1, "workers=1"), (w2, "workers=2")):
            before = _cpu(g)
            result = run_wrk(sup, url=g.url(case, ups), script=script, connections=64,
                             duration_s=duration_s, core=load_core)
            cpu[name] += _cpu(g) - before
            runs[name].append(result)
            log(f"  scale-out r{round_ + 1} {name}: {result.rps:,.0f} rps")
    rps1 = statistics.median(r.rps for r in runs["workers=1"])
    for name, results in runs.items():
        requests = sum(r.requests for r in results)
        rps = statistics.median(r.rps for r in results)
        cpu_us = cpu[name] / requests * 1e6 if requests else math.nan
        row = {"gateway": name, "rps": rps, "ratio_to_workers_1": rps / rps1,
               "p50_ms": statistics.median(r.p50_ms for r in results),
               "p99_ms": statistics.median(r.p99_ms for r in results),
               "cpu_us_per_request": cpu_us, "rps_per_cpu_s": 1e6 / cpu_us,
               "errors": sum(r.errors for r in results), "placement": placement}
        section.data.append({k: _num(v) for k, v in row.items()})
        section.rows.append([name, f"{rps:,.0f}", _f(row["ratio_to_workers_1"], 2),
                             _f(row["p50_ms"], 3), _f(row["p99_ms"], 3), _f(cpu_us, 1),
                             f"{row['rps_per_cpu_s']:,.0f}", str(row["errors"])])
    ratio = section.data[-1]["ratio_to_workers_1"] or math.nan
    section.verdicts.append(_verdict("workers=2 RPS >= 1.8x workers=1", "static x64", 1.8, ratio,
                                     higher_is_better=True))
    sup.stop(w1.proc)  # type: ignore[arg-type]
    sup.stop(w2.proc)  # type: ignore[arg-type]
    return section


# -- memory per connection ----------------------------------------------------------------------

def measure_memory(
    *, gateways: list[Gateway], ups: Upstreams, api_key: str, streams: tuple[int, ...],
    idle: int, log: Callable[[str], None], hold_gap_ms: float = HOLD_GAP_MS,
) -> Section:
    set_fault(ups, "hold", {"chunk_delay_ms": hold_gap_ms})
    section = Section(
        "memory", "Memory per connection (RSS of the gateway's process tree)",
        ["gateway", "what", "count", "RSS before MB", "RSS open MB", "KB each",
         "RSS after end MB", "retained KB each", "opened", "completed", "errors"],
        note="KB = 1,000 bytes; 'after end' is read 1 s after every stream ended or every "
             "idle connection closed")
    case = CASES["hold"]
    for g in gateways:
        if g.proc is None:
            continue
        pid = g.proc.pid
        # Idle connections first: after the stream waves the heap has room to spare (freed by
        # the streams), and 1,000 idle connections would fit in it without a new page.
        before = rss_kib(pid)
        at_open: list[int] = []
        result = hold_idle(g.url(CASES["sim"], ups), Gateway.model(CASES["sim"]), api_key, idle,
                           lambda pid=pid, at_open=at_open: at_open.append(rss_kib(pid)))
        time.sleep(1.0)
        _memory_row(section, g.name, "idle keep-alive", idle, before, at_open[0], rss_kib(pid),
                    result.opened, result.opened, result.errors)
        log(f"  memory {g.name:11} {idle} idle connections: "
            f"{(at_open[0] - before) * 1.024 / max(1, result.opened):.1f} KB each")
        # The smallest wave again at the end: memory not given back is fine, memory that grows
        # with every wave is a leak.
        waves = [*streams, min(streams)] if streams else []
        for index, count in enumerate(waves):
            repeat = index == len(waves) - 1
            before = rss_kib(pid)
            at_open = []
            result = hold_streams(g.url(case, ups), Gateway.model(case), api_key, count,
                                  lambda pid=pid, at_open=at_open: at_open.append(rss_kib(pid)))
            time.sleep(1.0)
            after = rss_kib(pid)
            _memory_row(section, g.name, "open stream (again)" if repeat else "open stream",
                        count, before, at_open[0], after, result.opened, result.completed,
                        result.errors)
            log(f"  memory {g.name:11} {count} streams: "
                f"{(at_open[0] - before) * 1.024 / max(1, result.opened):.1f} KB each "
                f"({result.opened} opened, {result.completed} completed, {result.errors} errors"
                f"{'; ' + result.first_error if result.first_error else ''})")
    # Growth = (RSS after the repeated wave ended - RSS before it) per stream. A leak keeps a
    # stream's whole cost (10+ KB) per wave; allocator noise measured 0-2.5 KB either way.
    repeated = {d["gateway"]: d for d in section.data if d["what"] == "open stream (again)"}
    if GATEWAY in repeated:
        section.verdicts.append(_verdict(
            "no growth after streams end (KB per stream kept by a repeated wave) <= 4",
            f"{repeated[GATEWAY]['count']} again", 4.0,
            math.nan if repeated[GATEWAY]["retained_kb_each"] is None
            else repeated[GATEWAY]["retained_kb_each"],
            {g: d["retained_kb_each"] for g, d in repeated.items() if g != GATEWAY}))
    for what, limit, text in (("open stream", 32.0, "KB per concurrent stream <= 32"),
                              ("idle keep-alive", 8.0, "KB per idle keep-alive connection <= 8")):
        rows = [d for d in section.data if d["what"] == what]
        for count in sorted({d["count"] for d in rows}):
            cells = {d["gateway"]: d["kb_each"] for d in rows if d["count"] == count}
            section.verdicts.append(_verdict(
                text, f"{count}", limit, cells.get(GATEWAY, math.nan),
                {k: v for k, v in cells.items() if k != GATEWAY}))
    return section


def _memory_row(section: Section, gateway: str, what: str, count: int, before: int,
                at_open: int, after: int, opened: int, completed: int, errors: int) -> None:
    kb_each = (at_open - before) * 1.024 / opened if opened else math.nan
    retained = (after - before) * 1.024 / opened if opened else math.nan
    section.data.append({"gateway": gateway, "what": what, "count": count,
                         "rss_before_kib": before, "rss_open_kib": at_open,
                         "rss_after_kib": after, "kb_each": _num(kb_each),
                         "retained_kb_each": _num(retained), "opened": opened,
                         "completed": completed, "errors": errors})
    section.rows.append([gateway, what, f"{count:,}", _f(before / 1024, 1),
                         _f(at_open / 1024, 1), _f(kb_each, 1), _f(after / 1024, 1),
                         _f(retained, 1), str(opened), str(completed), str(errors)])


# -- failover under load ------------------------------------------------------------------------

PHASES = (
    ("steady", {}),
    ("fo-b 100 % errors", {"error_rate": 1.0}),
    ("fo-b healed", {}),
    ("fo-b hangs", {"hang": True}),
    ("fo-b healed again", {}),
)


def measure_failover(
    *, sup: Supervisor, tmp: Path, gateway: Gateway, ups: Upstreams, api_key: str,
    duration_s: float, log: Callable[[str], None],
) -> Section:
    section = Section(
        "failover", "Failover under load: group of 3 deployments, fo-b broken (wrk, 16 "
        "connections)",
        ["phase", "RPS", "x healthy", "p50 ms", "p99 ms", "client errors"],
        note="each phase is its own wrk run; the fault is set just before it starts; 'x "
             "healthy' is against the median RPS of the fault-free phases")
    script = render("post.lua", tmp / "post-failover.lua", MODEL="bench-failover",
                    API_KEY=api_key)
    url = f"http://127.0.0.1:{gateway.port}/v1/chat/completions"
    set_fault(ups, "fo-b", {})
    run_wrk(sup, url=url, script=script, connections=16, duration_s=2, core=LOAD_CORE)
    results = []
    try:
        for phase, fault in PHASES:
            set_fault(ups, "fo-b", fault)
            results.append((phase, fault, run_wrk(sup, url=url, script=script, connections=16,
                                                  duration_s=duration_s, core=LOAD_CORE)))
            log(f"  failover {phase:18} {results[-1][2].rps:8,.0f} rps  "
                f"errors {results[-1][2].errors}")
    finally:
        set_fault(ups, "fo-b", {})
    # The reference is the median of the healthy phases (before, between and after the faults),
    # not the first one alone: a neighbour's burst during one phase would skew every ratio.
    healthy = statistics.median(r.rps for _, fault, r in results if not fault)
    for phase, fault, result in results:
        row = {"phase": phase, "fault": fault, "rps": result.rps,
               "ratio_to_healthy": result.rps / healthy, "p50_ms": result.p50_ms,
               "p99_ms": result.p99_ms, "errors": result.errors, "requests": result.requests}
        section.data.append(row)
        section.rows.append([phase, f"{result.rps:,.0f}", _f(row["ratio_to_healthy"], 2),
                             _f(result.p50_ms, 2), _f(result.p99_ms, 2), str(result.errors)])
    broken = [d for d in section.data if d["fault"]]
    section.verdicts.append(_verdict("0 client errors while one deployment fails or hangs",
                                     "failover", 0, float(sum(d["errors"] for d in broken))))
    section.verdicts.append(_verdict(
        "throughput >= 90 % of healthy while one deployment fails or hangs", "failover", 0.9,
        min((d["ratio_to_healthy"] for d in broken), default=math.nan), higher_is_better=True))
    return section
