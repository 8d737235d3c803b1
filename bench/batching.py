"""Embedding micro-batching on vs off: upstream calls per client request, throughput, latency.

    .venv/bin/python bench/batching.py [--duration S] [--clients N] [--upstream-ms MS]

Starts the simulator and two RouteGuard processes in front of the same simulated vLLM
embedding target, one with ``batching: {max_batch_size: 32, max_wait_ms: 5}`` and one without,
and drives each in turn with N concurrent clients (one single-input ``/v1/embeddings`` request
after another) for S seconds. The upstream costs a fixed ``--upstream-ms`` per call, whatever
its batch size, and computes at most ``--upstream-slots`` calls at once (the simulator's
``max_concurrency`` fault), which is how a GPU embedding server behaves well below its batch
limit: the case batching is for. Upstream calls come from the simulator's ``/_sim/stats``.

The router runs on core 0, the simulator and the client on core 1 (as in run.py). Every
process started is stopped on exit, failure or Ctrl-C. Prints a table and writes
``bench/results/batching-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from procs import Supervisor, free_port, wait_for_port

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
TARGET = "emb"


def _config(sim_port: int, batching: bool) -> str:
    extra = ", batching: {max_batch_size: 32, max_wait_ms: 5}" if batching else ""
    return (
        "server: {access_log: false}\n"
        "routing: {num_retries: 0, timeout_s: 30}\n"
        "deployments:\n"
        f"  emb: {{provider: vllm, model: bge-m3, "
        f'api_base: "http://127.0.0.1:{sim_port}/{TARGET}/v1"{extra}}}\n'
        "weights:\n  embed: {emb: 1}\n"
    )


async def _drive(port: int, clients: int, duration_s: float) -> tuple[int, int, list[float]]:
    """Closed-loop load: each client sends its next request when the last one is answered."""
    url = f"http://127.0.0.1:{port}/v1/embeddings"
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient, n: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            body = {
                "model": "embed",
                "input": f"client {n} text {i}",
                "encoding_format": "base64",
                "dimensions": 64,
            }
            started = time.perf_counter()
            response = await http.post(url, json=body)
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            i += 1

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http, n) for n in range(clients)))
    return len(latencies), errors, latencies


def _upstream_calls(sim_port: int) -> int:
    stats = httpx.get(f"http://127.0.0.1:{sim_port}/_sim/stats").json()["targets"]
    return int(stats.get(TARGET, {}).get("requests", 0))


def _measure(
    sup: Supervisor, workdir: Path, sim_port: int, batching: bool, args: argparse.Namespace
) -> dict[str, float | int | str]:
    config = workdir / f"router-{'on' if batching else 'off'}.yaml"
    config.write_text(_config(sim_port, batching))
    port = free_port()
    name = "routeguard-batching" if batching else "routeguard-plain"
    argv = [PYTHON, "-m", "routeguard.cli", "serve", "-c", str(config), "--port", str(port)]
    router = sup.start(name, argv, core=0)
    try:
        wait_for_port(router, port, 30)
        asyncio.run(_drive(port, args.clients, 1.0))  # warm-up, not counted
        httpx.post(f"http://127.0.0.1:{sim_port}/_sim/stats/reset")
        started = time.perf_counter()
        done, errors, latencies = asyncio.run(_drive(port, args.clients, args.duration))
        elapsed = time.perf_counter() - started
        calls = _upstream_calls(sim_port)
    finally:
        sup.stop(router)
    latencies.sort()
    return {
        "mode": "batching on (32, 5 ms)" if batching else "batching off",
        "requests": done,
        "errors": errors,
        "upstream_calls": calls,
        "calls_per_request": round(calls / done, 3) if done else float("nan"),
        "throughput_rps": round(done / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else float("nan"),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 2) if latencies else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per mode")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--upstream-ms", type=float, default=20.0, help="upstream cost per call")
    parser.add_argument(
        "--upstream-slots", type=int, default=2, help="calls the upstream computes at once"
    )
    args = parser.parse_args(argv)
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rg-batching-") as tmp:
        workdir = Path(tmp)
        sup = Supervisor(workdir)
        try:
            sim_port = free_port()
            argv_sim = [PYTHON, "-m", "routeguard.cli", "simulate", "--port", str(sim_port)]
            sim = sup.start("simulator", argv_sim, core=1)
            wait_for_port(sim, sim_port, 30)
            fault = {"latency_ms": args.upstream_ms, "max_concurrency": args.upstream_slots}
            httpx.put(f"http://127.0.0.1:{sim_port}/_sim/faults/{TARGET}", json=fault)
            rows = [_measure(sup, workdir, sim_port, on, args) for on in (False, True)]
        finally:
            sup.stop_all()
    print(
        f"{args.clients} clients, {args.duration:.0f} s per mode, upstream {args.upstream_ms} "
        f"ms/call, {args.upstream_slots} at once"
    )
    header = (
        "mode",
        "requests",
        "errors",
        "calls_per_request",
        "throughput_rps",
        "p50_ms",
        "p95_ms",
    )
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(row[key]) for key in header))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results_dir / f"batching-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
