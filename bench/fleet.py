"""Fleet bench: what Redis costs the request path (nothing, by design) and how fast a breaker
opening on one replica reaches the others.

    .venv/bin/python bench/fleet.py              # ~1.5 minutes
    .venv/bin/python bench/fleet.py --quick      # ~40 s

Part 1, overhead: two RouteGuard processes with the same config on core 0, one with a
``redis:`` section and one without, each against the simulator's zero-delay target; wrk on
core 1, in interleaved rounds (off, on, off, on, ...). Reported per side: the median over rounds
of RPS, p50 and p99, and the on/off ratios. Target: no measurable difference.

Part 2, propagation: three replicas on one Redis. Each trial makes one replica's upstream fail
until that replica's breaker opens, then times how long the other two take to show it open,
two ways: the decision-to-apply lag each replica reports (``sync_lag_s`` in ``GET /admin/fleet``:
the wall-clock age of the record when it applied it; all on one host, so one clock) and the
time the bench itself saw it by polling ``/admin/deployments`` (an upper bound including the
polling). Then an admin reset closes it everywhere and the next trial starts. Target: p99 <= 1 s.

Results: printed, and written to ``bench/results/fleet-<UTC stamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from loadgen import run_wrk
from procs import Supervisor, free_port, tree_cpu_s, wait_for_port

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
TOKEN = "bench-admin-token"
SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": "bench", "messages":[{"role":"user","content":"hello"}], "max_tokens": 16}'
"""


def _config(sim_port: int, redis_port: int | None, audit: Path, cooldown_s: float = 60) -> str:
    text = (
        "server: {access_log: false, watch_config_s: 0}\n"
        f'admin: {{audit_log: "{audit}", tokens: {{bench: "{TOKEN}"}}}}\n'
        "routing: {num_retries: 2, retry_backoff_s: 0, circuit_breaker_min_requests: 3, "
        f"circuit_breaker_error_rate: 0.5, cooldown_s: {cooldown_s}}}\n"
        "deployments:\n"
        f'  fast: {{provider: openai, model: m, api_base: "http://127.0.0.1:{sim_port}/fast/v1", '
        "api_key: sk}\n"
        f'  flaky: {{provider: openai, model: m, api_base: "http://127.0.0.1:{sim_port}/flaky/v1", '
        "api_key: sk}\n"
        "weights:\n  bench: {fast: 100}\n  outage: {flaky: 1, fast: 1}\n"
    )
    if redis_port is not None:
        text += f'redis: {{url: "redis://127.0.0.1:{redis_port}/0"}}\n'
    return text


def _http(method: str, url: str, body: Any = None, auth: bool = False) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"null")


def _router(sup: Supervisor, name: str, config: Path, core: int | None) -> tuple[int, int]:
    """Start a router; (its port, its pid for CPU accounting)."""
    port = free_port()
    argv = [PYTHON, "-m", "routeguard.cli", "serve", "--config", str(config), "--port", str(port)]
    proc = sup.start(name, argv, core=core)
    wait_for_port(proc, port, 60)
    return port, proc.pid


def overhead(sup: Supervisor, tmp: Path, sim_port: int, redis_port: int, args: Any) -> dict:
    ports, pids = {}, {}
    for side, redis in (("off", None), ("on", redis_port)):
        config = tmp / f"overhead-{side}.yaml"
        config.write_text(_config(sim_port, redis, tmp / f"D-{side}.log"))
        ports[side], pids[side] = _router(sup, f"router-{side}", config, core=0)
    script = tmp / "post.lua"
    script.write_text(SCRIPT)
    results: dict[str, list[Any]] = {"off": [], "on": []}
    for port in ports.values():  # warm both
        run_wrk(
            sup,
            url=f"http://127.0.0.1:{port}/v1/chat/completions",
            script=script,
            connections=16,
            duration_s=1,
            core=1,
        )
    cpu_us: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(args.rounds):
        order = list(ports) if round_ % 2 == 0 else list(reversed(ports))  # no order bias
        for side in order:
            before = tree_cpu_s(pids[side])
            run = run_wrk(
                sup,
                url=f"http://127.0.0.1:{ports[side]}/v1/chat/completions",
                script=script,
                connections=args.connections,
                duration_s=args.duration,
                core=1,
            )
            results[side].append(run)
            cpu_us[side].append(1e6 * (tree_cpu_s(pids[side]) - before) / max(1, run.requests))
    summary: dict[str, Any] = {}
    for side, runs in results.items():
        summary[side] = {
            "rps": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "cpu_us_per_req": statistics.median(cpu_us[side]),
            "errors": sum(r.errors for r in runs),
            "rounds": [
                {"rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "cpu_us_per_req": c}
                for r, c in zip(runs, cpu_us[side], strict=True)
            ],
        }
    summary["ratio_on_off"] = {
        k: summary["on"][k] / summary["off"][k]
        for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")
    }
    return summary


def propagation(sup: Supervisor, tmp: Path, sim_port: int, redis_port: int, trials: int) -> dict:
    ports = []
    for index in range(3):
        config = tmp / f"replica-{index}.yaml"
        config.write_text(_config(sim_port, redis_port, tmp / f"D-r{index}.log", cooldown_s=600))
        ports.append(_router(sup, f"replica-{index}", config, core=None)[0])
    base = [f"http://127.0.0.1:{p}" for p in ports]
    sim = f"http://127.0.0.1:{sim_port}"

    def state(url: str) -> str:
        deployments = _http("GET", f"{url}/admin/deployments", auth=True)["deployments"]
        return next(d["breaker"] for d in deployments if d["deployment"] == "flaky")

    deadline = time.monotonic() + 30
    while len(_http("GET", f"{base[0]}/admin/fleet", auth=True)["members"]) < 3:
        if time.monotonic() > deadline:
            raise RuntimeError("the 3 replicas did not see each other")
        time.sleep(0.2)
    applied, polled = [], []
    chat = {"model": "outage", "messages": [{"role": "user", "content": "hi"}]}
    for trial in range(trials):
        origin, others = base[trial % 3], [u for u in base if u != base[trial % 3]]
        _http("PUT", f"{sim}/_sim/faults/flaky", {"error_rate": 1.0})
        while state(origin) != "open":
            _http("POST", f"{origin}/v1/chat/completions", chat)
        seen_at = time.monotonic()
        for url in others:
            while state(url) != "open":
                if time.monotonic() - seen_at > 30:
                    raise RuntimeError("a replica never followed")
            polled.append(time.monotonic() - seen_at)
            applied.append(_http("GET", f"{url}/admin/fleet", auth=True)["sync_lag_s"])
        _http("DELETE", f"{sim}/_sim/faults/flaky")
        _http("POST", f"{origin}/admin/circuit-breaker/reset", {}, auth=True)
        for url in base:
            while state(url) != "closed":
                time.sleep(0.01)

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "trials": trials,
        "samples": len(applied),
        "applied_lag_s": {
            "p50": statistics.median(applied),
            "p99": pct(applied, 0.99),
            "max": max(applied),
        },
        "polled_s": {
            "p50": statistics.median(polled),
            "p99": pct(polled, 0.99),
            "max": max(polled),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--trials", type=int, default=None)
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    trials = args.trials or (10 if args.quick else 30)
    for tool in ("wrk", "redis-server", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH")
    tmp = Path(tempfile.mkdtemp(prefix="rg-fleet-bench-"))
    sup = Supervisor(tmp)
    try:
        redis_port = free_port()
        redis = sup.start(
            "redis",
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            core=1,
        )
        wait_for_port(redis, redis_port, 10)
        sim_port = free_port()
        sim = sup.start(
            "simulator",
            [PYTHON, "-m", "routeguard.cli", "simulate", "--port", str(sim_port)],
            core=1,
        )
        wait_for_port(sim, sim_port, 30)
        result = {
            "overhead": overhead(sup, tmp, sim_port, redis_port, args),
            "propagation": propagation(sup, tmp, sim_port, redis_port, trials),
        }
    finally:
        sup.stop_all()
    out_dir = BENCH_DIR / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (out_dir / f"fleet-{stamp}.json").write_text(json.dumps(result, indent=2))
    o, p = result["overhead"], result["propagation"]
    print(f"overhead, c{args.connections}, {args.rounds} round(s) x {args.duration:g} s:")
    for side in ("off", "on"):
        s = o[side]
        print(
            f"  redis {side:3}: {s['rps']:8.0f} rps  p50 {s['p50_ms']:.2f} ms  "
            f"p99 {s['p99_ms']:.2f} ms  CPU {s['cpu_us_per_req']:.0f} us/req  errors {s['errors']}"
        )
    r = o["ratio_on_off"]
    print(
        f"  on/off: rps x{r['rps']:.3f}  p50 x{r['p50_ms']:.3f}  p99 x{r['p99_ms']:.3f}  "
        f"CPU/req x{r['cpu_us_per_req']:.3f}"
    )
    print(f"propagation across 3 replicas, {p['samples']} samples:")
    a, q = p["applied_lag_s"], p["polled_s"]
    print(
        f"  decision->applied: p50 {a['p50'] * 1000:.1f} ms  p99 {a['p99'] * 1000:.1f} ms  "
        f"max {a['max'] * 1000:.1f} ms"
    )
    print(
        f"  seen by polling:   p50 {q['p50'] * 1000:.1f} ms  p99 {q['p99'] * 1000:.1f} ms  "
        f"max {q['max'] * 1000:.1f} ms"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
