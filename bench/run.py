"""The whole comparison in one command: direct vs nginx vs RouteGuard (vs LiteLLM).

    .venv/bin/python bench/run.py [--quick] [--duration S] [--with-litellm]

Starts the upstreams (a static nginx and the RouteGuard simulator) and the gateways (nginx as a
keep-alive reverse proxy, RouteGuard with one worker, LiteLLM with one worker when installed),
pins the gateways to core 0 and everything else to core 1, drives each with wrk at 1, 16 and
64 connections per upstream case, then with sequential streams, and prints and writes the
results (bench/results/). Every process it started is stopped on exit, Ctrl-C or failure, and
the run as a whole is bounded by an alarm. See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from cases import (
    measure_concurrent_streams,
    measure_failover,
    measure_memory,
    measure_scaleout,
)
from chart import write_chart
from gateways import (
    BENCH_DIR,
    CASES,
    GATEWAY_CORE,
    LITELLM_VENV,
    LOAD_CORE,
    Gateway,
    Upstreams,
    litellm_installed,
    render,
    start_gateways,
    start_upstreams,
)
from loadgen import WrkResult, combine, run_wrk
from logscan import LogFindings, keep_logs
from procs import Supervisor, peak_rss_kib, tree_cpu_s, tree_sched_s
from report import LoadRow, Report, StreamRow
from rich.console import Console
from streaming import StreamResult, run_streams

CONNECTIONS = (1, 16, 64)
RESULTS = BENCH_DIR / "results"
console = Console(stderr=True, width=max(shutil.get_terminal_size((160, 40)).columns, 150))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short steps, no zero-delay simulator case (~1-2 minutes)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per load step (default 8, or 3 with --quick)")
    parser.add_argument("--with-litellm", action="store_true",
                        help=f"install litellm[proxy] into {LITELLM_VENV.name} if missing")
    parser.add_argument("--routeguard-no-log", action="store_true",
                        help="also run a RouteGuard with server.access_log: false")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per load step, medians taken (default 3, "
                        "or 1 with --quick)")
    parser.add_argument("--streams", type=int, default=None,
                        help="measured streams per gateway (default 1200, or 200 with --quick)")
    parser.add_argument("--tiny", action="store_true",
                        help="seconds, not minutes: every case at toy sizes (the CI smoke test)")
    parser.add_argument("--only", default=None,
                        help="comma-separated parts to run: load, streams, concurrent, "
                        "scaleout, memory, failover (default: all)")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"directory for the results (default {RESULTS})")
    return parser.parse_args(argv)


PARTS = ("load", "streams", "concurrent", "scaleout", "memory", "failover")


class Plan:
    """What one run does, and how long it may take at most."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.duration_s = args.duration or 3.0
        self.rounds = args.rounds or (1 if args.quick else 3)
        self.warmup_s = 1.0 if args.quick else 2.0
        self.streams = args.streams or (200 if args.quick else 1200)
        self.stream_warmup = 50
        self.cases = ["static", "sim50"] if args.quick else ["static", "sim", "sim50"]
        self.connections = CONNECTIONS
        self.stream_clients: tuple[int, ...] = (16, 64)
        self.memory_streams: tuple[int, ...] = (1000, 5000) if not args.quick else (1000,)
        self.idle_connections = 1000
        self.failover_s = 10.0 if not args.quick else 4.0
        self.hold_gap_ms = 1000.0
        self.parts = tuple(args.only.split(",")) if args.only else PARTS
        if args.tiny:
            self.duration_s, self.rounds, self.warmup_s = 1.0, 1, 1.0
            self.streams, self.stream_warmup = 20, 5
            self.cases, self.connections = ["static"], (1, 4)
            self.stream_clients, self.memory_streams = (4,), (50,)
            self.idle_connections, self.failover_s = 50, 1.0
            self.hold_gap_ms = 50.0
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise SystemExit(f"--only: unknown parts {sorted(unknown)}; choose from {PARTS}")

    def budget_s(self, gateways: int) -> int:
        per_case = len(self.connections) * self.rounds * self.duration_s + self.warmup_s
        steps = len(self.cases) * gateways * per_case
        concurrent = 2 * len(self.stream_clients) * self.rounds * gateways * (self.duration_s + 1)
        extra = concurrent + 4 * self.rounds * self.duration_s + 4 * self.failover_s
        extra += 2 * 40 * len(self.memory_streams) + 60
        # Startup (LiteLLM takes ~10-30 s), streams, and slack for a slow, shared machine.
        return int(2 * (steps + extra) + 240 + self.streams * gateways * 0.05)


class Timeout(Exception):
    pass


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise Timeout("the run exceeded its time budget")


def _on_term(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def install_litellm(notes: list[str]) -> None:
    """``pip install litellm[proxy]`` into its own venv; on failure, note it and go on."""
    if litellm_installed():
        return
    console.print(f"installing litellm[proxy] into {LITELLM_VENV} (a few minutes)...")
    log = BENCH_DIR / "results" / "litellm-install.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("wb") as out:
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True,
                           stdout=out, stderr=subprocess.STDOUT, timeout=120)
            subprocess.run([str(LITELLM_VENV / "bin/pip"), "install", "litellm[proxy]"],
                           check=True, stdout=out, stderr=subprocess.STDOUT, timeout=1200)
    except (subprocess.SubprocessError, OSError) as exc:
        notes.append(f"LiteLLM: pip install failed ({exc}); see {log}")
    if not litellm_installed():
        notes.append("LiteLLM: not available after install attempt; compared without it")


class CpuMeter:
    """Adds up a gateway's CPU over the ``with`` blocks it is used in (None for direct)."""

    def __init__(self, gateway: Gateway) -> None:
        self._pid = gateway.proc.pid if gateway.proc else None
        self.stat_s: float | None = 0.0 if self._pid else None
        self.sched_s: float | None = 0.0 if self._pid else None
        self._before = (0.0, 0.0)

    def __enter__(self) -> None:
        if self._pid:
            self._before = (tree_cpu_s(self._pid), tree_sched_s(self._pid))

    def __exit__(self, *_exc: object) -> None:
        if self._pid and self.stat_s is not None and self.sched_s is not None:
            self.stat_s += tree_cpu_s(self._pid) - self._before[0]
            self.sched_s += tree_sched_s(self._pid) - self._before[1]


def measure_load(
    sup: Supervisor, tmp: Path, plan: Plan, *, gateways: list[Gateway], ups: Upstreams,
    api_key: str, report: Report,
) -> None:
    """Each case: warm every gateway, then each connection count, gateways side by side."""
    for key in plan.cases:
        case = CASES[key]
        scripts = {
            g.name: render("post.lua", tmp / f"post-{g.name}-{key}.lua",
                           MODEL=Gateway.model(case), API_KEY=api_key)
            for g in gateways
        }
        for g in gateways:
            run_wrk(sup, url=g.url(case, ups), script=scripts[g.name], connections=16,
                    duration_s=plan.warmup_s, core=LOAD_CORE)
        for conns in plan.connections:
            results: dict[str, list[WrkResult]] = {g.name: [] for g in gateways}
            cpu = {g.name: CpuMeter(g) for g in gateways}
            for round_ in range(plan.rounds):
                for g in gateways:  # interleaved: neighbours' noise hits every gateway alike
                    with cpu[g.name]:
                        result = run_wrk(sup, url=g.url(case, ups), script=scripts[g.name],
                                         connections=conns, duration_s=plan.duration_s,
                                         core=LOAD_CORE)
                    results[g.name].append(result)
                    _sample_rss(report, g)
                    console.print(
                        f"  {key:6} c={conns:<3} r{round_ + 1} {g.name:11} "
                        f"{result.rps:9,.0f} rps  p50 {result.p50_ms:7.3f} ms  "
                        f"p99 {result.p99_ms:7.3f} ms  errors {result.errors}"
                    )
            for g in gateways:
                report.load.append(LoadRow(key, conns, g.name, combine(results[g.name]),
                                           cpu[g.name].stat_s, cpu[g.name].sched_s))


def measure_streams(plan: Plan, gateways: list[Gateway], ups: Upstreams, api_key: str,
                    report: Report) -> None:
    """Sequential streams per gateway, in interleaved rounds, against the fast simulator."""
    case = CASES["sim"]
    results = {g.name: StreamResult() for g in gateways}
    cpu = {g.name: CpuMeter(g) for g in gateways}
    per_round = max(1, plan.streams // plan.rounds)
    for _ in range(plan.rounds):
        for g in gateways:
            with cpu[g.name]:
                part = run_streams(g.url(case, ups), Gateway.model(case), api_key, per_round,
                                   plan.stream_warmup)
            results[g.name].extend(part)
            _sample_rss(report, g)
    for g in gateways:
        summary = results[g.name].summary()
        report.streams.append(StreamRow(g.name, summary, cpu[g.name].stat_s))
        console.print(
            f"  stream {g.name:11} ttfb p50 {summary['ttfb_p50_ms']:.3f} ms  "
            f"total p50 {summary['total_p50_ms']:.3f} ms  errors {summary['errors']}"
            + (f" ({summary['first_error']})" if summary["first_error"] else "")
        )


def measure_more(sup: Supervisor, tmp: Path, plan: Plan, gateways: list[Gateway],
                 ups: Upstreams, api_key: str, report: Report) -> None:
    """The cases of bench/cases.py, each adding its section to the report as it finishes."""
    def log(line: str) -> None:
        console.print(line)

    # LiteLLM needs ~10 ms of CPU per request: thousands of streams would take minutes.
    fast = [g for g in gateways if g.name != "litellm"]
    if "concurrent" in plan.parts:
        report.sections.append(measure_concurrent_streams(
            gateways=fast, ups=ups, api_key=api_key, clients=plan.stream_clients,
            duration_s=plan.duration_s, rounds=plan.rounds, log=log))
    if "failover" in plan.parts:
        routeguard = next(g for g in gateways if g.name == "routeguard")
        report.sections.append(measure_failover(
            sup=sup, tmp=tmp, gateway=routeguard, ups=ups, api_key=api_key,
            duration_s=plan.failover_s, log=log))
    if "memory" in plan.parts:
        report.sections.append(measure_memory(
            gateways=[g for g in fast if g.name in ("nginx", "routeguard")], ups=ups,
            api_key=api_key, streams=plan.memory_streams, idle=plan.idle_connections, log=log,
            hold_gap_ms=plan.hold_gap_ms))
    if "scaleout" in plan.parts:
        report.sections.append(measure_scaleout(
            sup=sup, tmp=tmp, ups=ups, api_key=api_key, duration_s=plan.duration_s,
            rounds=plan.rounds, log=log))


def _sample_rss(report: Report, g: Gateway) -> None:
    if g.proc is not None and g.proc.alive():
        report.rss_kib[g.name] = max(report.rss_kib.get(g.name, 0), peak_rss_kib(g.proc.pid))


def _note_logs(report: Report, findings: dict[str, LogFindings]) -> None:
    """Put each server's log counts in the report, and a note for anything that went wrong."""
    report.meta["logs"] = {name: f.to_json() for name, f in findings.items()}
    for name, found in findings.items():
        if name.startswith("upstream-"):
            # The simulator logs a traceback for each request whose client went away, which
            # every wrk step ends with (in-flight requests are cut); counts stay in meta.logs.
            continue
        if found.errors:
            report.notes.append(f"{name} logged {found.errors} error lines; first: "
                                f"{found.first_error}")
        bad = {s: n for s, n in found.access_statuses.items() if s != "200"}
        if bad:
            report.notes.append(f"{name} access log: non-200 statuses {bad}")


def _source_version() -> str:
    """The commit RouteGuard runs from, marked dirty when src/ has uncommitted changes.

    The package is installed in editable mode and changes under the bench's feet: a figure
    is only comparable with another from the same source.
    """
    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=BENCH_DIR.parent, capture_output=True,
                                  text=True, timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "src") else "")


def run(args: argparse.Namespace) -> int:
    plan = Plan(args)
    results = args.results or RESULTS
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    report = Report(meta={
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "duration_s": plan.duration_s, "rounds": plan.rounds, "warmup_s": plan.warmup_s,
        "streams": plan.streams,
        "cases": plan.cases, "connections": list(plan.connections), "parts": list(plan.parts),
        "stream_clients": list(plan.stream_clients),
        "memory_streams": list(plan.memory_streams),
        "idle_connections": plan.idle_connections, "failover_s": plan.failover_s,
        "hold_gap_ms": plan.hold_gap_ms,
        "gateway_core": GATEWAY_CORE, "load_core": LOAD_CORE, "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(), "routeguard_source": _source_version(),
        # Set to run the gateways from another source tree (a before/after comparison).
        "pythonpath": os.environ.get("PYTHONPATH"),
    })
    if (os.cpu_count() or 1) < 2:
        console.print("[red]needs at least 2 cores (gateway on 0, load on 1)[/]")
        return 2
    os.sched_setaffinity(0, {LOAD_CORE})  # this process runs the stream client: load core
    if args.with_litellm:
        install_litellm(report.notes)
    api_key = "sk-bench-" + os.urandom(24).hex()  # LiteLLM rejects weak master keys
    gateways_expected = 3 + int(args.with_litellm or litellm_installed()) + int(
        args.routeguard_no_log)
    budget = plan.budget_s(gateways_expected)
    console.print(f"plan: cases {plan.cases}, {plan.duration_s:g} s per step, "
                  f"{plan.streams} streams; bounded at {budget} s")
    # Explicit, because a shell starting us in the background leaves SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_term)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(budget)
    tmp = Path(tempfile.mkdtemp(prefix="routeguard-bench-"))
    sup = Supervisor(tmp)
    failed: str | None = None
    try:
        console.print("starting upstreams and gateways...")
        ups = start_upstreams(sup, tmp)
        gateways = start_gateways(sup, tmp, ups, with_litellm=args.with_litellm or
                                  litellm_installed(), api_key=api_key, notes=report.notes,
                                  routeguard_no_log=args.routeguard_no_log)
        for g in gateways:
            _sample_rss(report, g)  # at rest, before any load
        report.meta["rss_kib_idle"] = dict(report.rss_kib)
        if "load" in plan.parts:
            measure_load(sup, tmp, plan, gateways=gateways, ups=ups, api_key=api_key,
                         report=report)
        if "streams" in plan.parts:
            measure_streams(plan, gateways, ups, api_key, report)
        measure_more(sup, tmp, plan, gateways, ups, api_key, report)
    except KeyboardInterrupt:
        failed = "interrupted"
    except Exception as exc:
        failed = f"{type(exc).__name__}: {exc}"
    finally:
        signal.alarm(0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        sup.stop_all()
        logs = results / f"logs-{stamp}"
        findings = keep_logs(tmp, logs)
    _note_logs(report, findings)
    report.meta["loadavg_after"] = os.getloadavg()
    report.meta["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    if failed:
        report.notes.insert(0, f"RUN INCOMPLETE: {failed}")
    report.analyse()
    report.print(console)
    json_path, md_path = report.write(results, f"run-{stamp}")
    chart = write_chart(report.to_json(), results / f"run-{stamp}.png")
    if chart is None:
        console.print("no chart: matplotlib is not installed (pip install -e '.[bench]')")
    console.print(f"results: {json_path}, {md_path}, {chart}; logs: {logs}; "
                  f"{report.meta['elapsed_s']} s")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    try:
        return run(args)
    finally:
        console.print(f"done in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
