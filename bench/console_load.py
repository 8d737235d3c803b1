"""Does an open console slow the data plane? Throughput with N consoles polling vs none.

    .venv/bin/python bench/console_load.py [--consoles 3] [--rounds 5] [--duration 6]

Starts the static nginx upstream and the simulator (the bench's upstreams), one RouteGuard
(1 worker, shipped defaults plus an admin token) pinned to core 0, and N headless Chromium
windows (Debian's chromium + chromium-driver) on core 1 with wrk. Each window signs in to the
real console page at ``/console`` and is then parked on ``about:blank``.

Then, round by round, wrk drives RouteGuard (``--connections``, default 16, against the
zero-delay static upstream, where RouteGuard's own CPU is the limit and any extra work shows)
once with every console page open and polling and once with none, in ABBA order so drift on
the shared machine hits both alike. Printed and written to bench/results/console-load-*.json:
median requests/s and CPU per request for each condition, their difference, the spread of
the rounds (the noise the difference is judged against), and the admin request rate the
pages actually made.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from gateways import BENCH_DIR, GATEWAY_CORE, LOAD_CORE, REPO_DIR, render, start_upstreams
from loadgen import run_wrk
from procs import Proc, Supervisor, free_port, tree_cpu_s, wait_for_port
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

TOKEN = "rg-bench-console-" + os.urandom(8).hex()
API_KEY = "sk-bench"
COUNT_ADMIN = (
    "return performance.getEntriesByType('resource')"
    ".filter((e) => e.name.includes('/admin/')).length"
)


def _on_term(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def start_routeguard(
    sup: Supervisor, tmp: Path, static_port: int, sim_port: int
) -> tuple[Proc, int]:
    port = free_port()
    conf = render(
        "routeguard.yaml",
        tmp / "routeguard.yaml",
        PORT=port,
        STATIC_PORT=static_port,
        SIM_PORT=sim_port,
        ACCESS_LOG="true",
    )
    with conf.open("a") as out:
        out.write(
            f'admin:\n  tokens:\n    bench: "{TOKEN}"\n  audit_log: "{tmp / "DECISIONS.log"}"\n'
        )
    proc = sup.start(
        "routeguard",
        [
            str(REPO_DIR / ".venv/bin/routeguard"),
            "serve",
            "--config",
            str(conf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        core=GATEWAY_CORE,
        cwd=tmp,
    )
    wait_for_port(proc, port, 30)
    return proc, port


class ConsolePages:
    """N headless Chromium windows signed in to the console; open() starts polling, park() stops."""

    def __init__(self, count: int, base: str) -> None:
        self.base = base
        self.drivers = []
        for _ in range(count):
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for arg in (
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-first-run",
                "--window-size=1366,900",
            ):
                options.add_argument(arg)
            self.drivers.append(
                webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            )
        self.opened_at = 0.0
        for driver in self.drivers:
            driver.get(f"{base}/console")
            driver.execute_script(
                "sessionStorage.setItem('routeguard.console.token', arguments[0])", TOKEN
            )
        self.open()
        self.park()

    def open(self) -> None:
        for driver in self.drivers:
            driver.get(f"{self.base}/console")  # the tab keeps its sessionStorage: signed in
        deadline = time.monotonic() + 30
        for driver in self.drivers:
            while not driver.execute_script(
                "return document.querySelectorAll('tr[data-deployment]').length > 0"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("a console page did not show the deployments")
                time.sleep(0.2)
        self.opened_at = time.monotonic()

    def admin_requests(self) -> int:
        return sum(int(d.execute_script(COUNT_ADMIN)) for d in self.drivers)

    def park(self) -> None:
        for driver in self.drivers:
            driver.get("about:blank")

    def quit(self) -> None:
        for driver in self.drivers:
            driver.quit()


def measure(args: argparse.Namespace, sup: Supervisor, tmp: Path) -> dict[str, object]:
    ups = start_upstreams(sup, tmp)
    gateway, port = start_routeguard(sup, tmp, ups.static_port, ups.sim_port)
    base = f"http://127.0.0.1:{port}"
    script = render("post.lua", tmp / "post.lua", MODEL="bench-static", API_KEY=API_KEY)
    url = f"{base}/v1/chat/completions"
    run_wrk(
        sup, url=url, script=script, connections=args.connections, duration_s=3, core=LOAD_CORE
    )  # warm-up
    pages = ConsolePages(args.consoles, base)
    rows: list[dict[str, object]] = []
    try:
        for round_ in range(args.rounds):
            order = ("none", "consoles") if round_ % 2 == 0 else ("consoles", "none")
            for condition in order:
                if condition == "consoles":
                    pages.open()
                    time.sleep(2)  # every page past its sign-in burst, into steady polling
                    before_admin = pages.admin_requests()
                    before_t = time.monotonic()
                cpu_before = tree_cpu_s(gateway.pid)
                result = run_wrk(
                    sup,
                    url=url,
                    script=script,
                    connections=args.connections,
                    duration_s=args.duration,
                    core=LOAD_CORE,
                )
                cpu_s = tree_cpu_s(gateway.pid) - cpu_before
                row: dict[str, object] = {
                    "round": round_,
                    "condition": condition,
                    "rps": result.rps,
                    "p50_ms": result.p50_ms,
                    "p99_ms": result.p99_ms,
                    "errors": result.errors,
                    "cpu_us_per_request": cpu_s / max(result.requests, 1) * 1e6,
                }
                if condition == "consoles":
                    admin = pages.admin_requests() - before_admin
                    row["admin_requests_per_s"] = admin / (time.monotonic() - before_t)
                    pages.park()
                rows.append(row)
                print(
                    f"  round {round_} {condition:8s} {result.rps:9.0f} req/s"
                    + (
                        f"  (consoles made {row['admin_requests_per_s']:.2f} admin req/s)"
                        if condition == "consoles"
                        else ""
                    ),
                    file=sys.stderr,
                )
    finally:
        pages.quit()
    return summarise(args, rows)


def summarise(args: argparse.Namespace, rows: list[dict[str, object]]) -> dict[str, object]:
    def pick(condition: str, key: str) -> list[float]:
        return [float(r[key]) for r in rows if r["condition"] == condition]  # type: ignore[arg-type]

    none, cons = pick("none", "rps"), pick("consoles", "rps")
    # Each round measured both conditions back to back: their ratio cancels slow drift.
    paired = [c / n for c, n in zip(cons, none, strict=True)]
    median_none, median_cons = statistics.median(none), statistics.median(cons)
    return {
        "consoles": args.consoles,
        "connections": args.connections,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "upstream": "static nginx (zero delay)",
        "rps_median_none": round(median_none),
        "rps_median_consoles": round(median_cons),
        "difference_pct": round((median_cons - median_none) / median_none * 100, 2),
        "paired_difference_pct_median": round((statistics.median(paired) - 1) * 100, 2),
        "paired_difference_pct_range": [
            round((min(paired) - 1) * 100, 1),
            round((max(paired) - 1) * 100, 1),
        ],
        "spread_none_pct": round((max(none) - min(none)) / median_none * 100, 2),
        "spread_consoles_pct": round((max(cons) - min(cons)) / median_cons * 100, 2),
        "cpu_us_per_request_none": round(statistics.median(pick("none", "cpu_us_per_request")), 1),
        "cpu_us_per_request_consoles": round(
            statistics.median(pick("consoles", "cpu_us_per_request")), 1
        ),
        "admin_requests_per_s_total": round(
            statistics.median(pick("consoles", "admin_requests_per_s")), 2
        ),
        "errors": sum(int(r["errors"]) for r in rows),  # type: ignore[call-overload]
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consoles", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6, help="pairs of measurements (ABBA)")
    parser.add_argument("--duration", type=float, default=6, help="seconds per wrk step")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        print("needs 2 cores (RouteGuard on 0, load and browsers on 1)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {LOAD_CORE})  # the browsers this process starts inherit it
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_term)
    signal.signal(signal.SIGALRM, _on_term)
    signal.alarm(int(args.rounds * 2 * (args.duration + 15) + 180))  # SIGALRM ends a stuck run
    tmp = Path(tempfile.mkdtemp(prefix="routeguard-console-bench-"))
    sup = Supervisor(tmp)
    try:
        summary = measure(args, sup, tmp)
    finally:
        signal.alarm(0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        sup.stop_all()
    summary["loadavg_after"] = os.getloadavg()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH_DIR / "results" / f"console-load-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    shown = {k: v for k, v in summary.items() if k != "rows"}
    print(json.dumps(shown, indent=2))
    print(f"results: {out.relative_to(REPO_DIR)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
