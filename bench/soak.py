"""Soak: a million mixed requests through one router, its RSS and open descriptors sampled.

The runbook's scenario 3 (memory leak) proven absent, or caught: one ``routeguard serve``
process and one simulator process; a raw-socket load generator (cheap, so the two cores go to
the router) sends a mix that exercises every path that allocates and frees per request::

    55 % chat              12 % streamed chat       5 % stream the client abandons mid-answer
     8 % failing upstream   2 % embeddings          4 % malformed JSON (400)
     3 % unknown model      3 % oversized header (431, connection closed)
     8 % pipelined pairs of health checks

Every ``--sample-s`` seconds it reads the router's RSS (``/proc/PID/status``) and open
descriptors (``/proc/PID/fd``). After the run it reports the curve (PNG + Markdown table), the
RSS slope after warm-up (least squares, MiB per 100k requests and per hour), the spread around
the post-warm-up median (goal: within +-10 %), and descriptors once the clients have gone
(goal: back to the baseline).

    python bench/soak.py                          # 1,000,000 requests, results in bench/results/
    python bench/soak.py --requests 20000 --sample-s 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import uvloop

REPO = Path(__file__).resolve().parents[1]
CHAT = b'{"model": "soak", "messages": [{"role": "user", "content": "soak test %d"}]}'
STREAM = (
    b'{"model": "soak", "stream": true, "stream_options": {"include_usage": true}, '
    b'"messages": [{"role": "user", "content": "stream %d"}]}'
)
FAILING = b'{"model": "failing", "messages": [{"role": "user", "content": "x"}]}'
EMBED = b'{"model": "soak", "input": "embed %d"}'
UNKNOWN = b'{"model": "no-such-group", "messages": [{"role": "user", "content": "x"}]}'
MIX = (
    ("chat", 55),
    ("stream", 12),
    ("abandon", 5),
    ("failing", 8),
    ("embed", 2),
    ("bad_json", 4),
    ("unknown", 3),
    ("big_header", 3),
    ("pipelined", 8),
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def _router_config(sim_port: int) -> str:
    base = f"http://127.0.0.1:{sim_port}"
    return (
        "server:\n  host: 127.0.0.1\n  access_log: true\n  watch_config_s: 0\n"
        "routing:\n  timeout_s: 10\n  num_retries: 1\n  retry_backoff_s: 0.001\n"
        "  circuit_breaker_min_requests: 1000000\n"  # failing stays failing: no breaker shortcut
        "deployments:\n"
        f"  sim-a: {{provider: openai, model: m, api_base: '{base}/sim-a/v1', api_key: sk-a,"
        " input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}\n"
        f"  sim-b: {{provider: openai, model: m, api_base: '{base}/sim-b/v1', api_key: sk-b}}\n"
        f"  sim-bad: {{provider: openai, model: m, api_base: '{base}/sim-bad/v1', api_key: sk-c}}\n"
        "weights:\n  soak: {sim-a: 1, sim-b: 1}\n  failing: {sim-bad: 1}\n"
    )


# -- the load generator ----------------------------------------------------------------------
class _Reader:
    """httptools callbacks for one response at a time on a client connection."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done = 0
        self.status = 0
        self.body_bytes = 0
        self.keep_alive = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        self.done += 1
        self.keep_alive = bool(self.parser.should_keep_alive())


@dataclass
class Tally:
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    transport_errors: int = 0


class _Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, data: bytes, answers: int = 1, abandon: bool = False) -> list[int]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(data)
        reader = _Reader()
        statuses: list[int] = []
        while reader.done < answers:
            chunk = await self.reader.read(65536)
            if not chunk:
                self.close()
                break
            before = reader.done
            reader.parser.feed_data(chunk)
            if abandon and reader.status and reader.body_bytes:
                self.close()  # gone mid-stream, as a client that crashed
                return [499]
            if reader.done > before:
                statuses.extend([reader.status] * (reader.done - before))
        if not reader.keep_alive:
            self.close()
        return statuses


def _request(kind: str, n: int) -> tuple[bytes, int, bool]:  # noqa: PLR0911 - one per kind
    def post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
        return (
            b"POST %b HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\n%b"
            b"Content-Length: %d\r\n\r\n%b" % (path, extra, len(body), body)
        )

    chat = b"/v1/chat/completions"
    if kind == "chat":
        return post(chat, CHAT % n), 1, False
    if kind == "stream":
        return post(chat, STREAM % n), 1, False
    if kind == "abandon":
        return post(chat, STREAM % n), 1, True
    if kind == "failing":
        return post(chat, FAILING), 1, False
    if kind == "embed":
        return post(b"/v1/embeddings", EMBED % n), 1, False
    if kind == "bad_json":
        return post(chat, b'{"model": "soak", "messages": [}'), 1, False
    if kind == "unknown":
        return post(chat, UNKNOWN), 1, False
    if kind == "big_header":
        return post(chat, CHAT % n, b"X-Big: " + b"b" * 20_000 + b"\r\n"), 1, False
    health = b"GET /health HTTP/1.1\r\nHost: soak\r\n\r\n"
    return health * 2, 2, False


async def _worker(port: int, kinds: list[str], todo: list[int], tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    conn = _Conn(port)
    while todo[0] > 0:
        todo[0] -= 1
        kind = rng.choice(kinds)
        data, answers, abandon = _request(kind, rng.randrange(1_000_000))
        try:
            statuses = await conn.exchange(data, answers, abandon)
        except (OSError, httptools.HttpParserError):
            tally.transport_errors += 1
            conn.close()
            continue
        tally.sent += 1
        tally.by_kind[kind] = tally.by_kind.get(kind, 0) + 1
        for status in statuses:
            tally.by_status[status] = tally.by_status.get(status, 0) + 1
    conn.close()


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _drive(  # noqa: PLR0917
    port: int,
    pid: int,
    requests: int,
    concurrency: int,
    sample_s: float,
    seed: int,
    checkpoint: Any = None,
) -> tuple[list[dict[str, float]], Tally]:
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    todo, tally = [requests], Tally()
    samples: list[dict[str, float]] = []
    started = time.monotonic()

    def sample() -> None:
        samples.append(
            {
                "t_s": round(time.monotonic() - started, 1),
                "requests": tally.sent,
                "rss_mib": round(_rss_mib(pid), 2),
                "fds": _fds(pid),
            }
        )

    sample()
    workers = [
        asyncio.create_task(_worker(port, kinds, todo, tally, seed + i)) for i in range(concurrency)
    ]
    waiting = asyncio.gather(*workers)
    while not waiting.done():
        await asyncio.wait([waiting], timeout=sample_s)
        sample()
        if checkpoint is not None:
            checkpoint(samples, tally)
    await waiting
    return samples, tally


# -- analysis --------------------------------------------------------------------------------
def _slope(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def analyse(
    samples: list[dict[str, float]], baseline_fds: int, final_fds: int, warmup: float = 0.2
) -> dict[str, Any]:
    total = samples[-1]["requests"] or 1
    after = [s for s in samples if s["requests"] >= warmup * total] or samples[-2:]
    rss = [s["rss_mib"] for s in after]
    median = statistics.median(rss)
    per_request = _slope([s["requests"] for s in after], rss)
    per_second = _slope([s["t_s"] for s in after], rss)
    return {
        "rss_baseline_mib": samples[0]["rss_mib"],
        "rss_after_warmup_median_mib": round(median, 2),
        "rss_after_warmup_min_mib": min(rss),
        "rss_after_warmup_max_mib": max(rss),
        "rss_spread_pct": round(100 * max(abs(r - median) for r in rss) / median, 2),
        "rss_slope_mib_per_100k_requests": round(per_request * 100_000, 3),
        "rss_slope_mib_per_hour": round(per_second * 3600, 3),
        "fds_baseline": baseline_fds,
        "fds_peak": max(int(s["fds"]) for s in samples),
        "fds_after_clients_left": final_fds,
        "flat_within_10pct": max(abs(r - median) for r in rss) <= 0.10 * median,
        # Pooled upstream connections come and go with load; a leak grows without bound.
        "fds_back_to_baseline": final_fds <= baseline_fds + 8,
    }


def write_report(out: Path, result: dict[str, Any], *, chart: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    summary, samples = result["summary"], result["samples"]
    lines = [
        f"# Soak: {result['requests']:,} requests, concurrency {result['concurrency']}",
        "",
        f"Duration {result['duration_s']:.0f} s "
        f"({result['requests'] / max(result['duration_s'], 0.1):.0f} req/s "
        "on a shared 2-core machine). Statuses: "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(result["by_status"].items())),
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in summary.items()),
        "",
        "| t (s) | requests | RSS (MiB) | fds |",
        "|---:|---:|---:|---:|",
        *(f"| {s['t_s']} | {s['requests']:,} | {s['rss_mib']} | {s['fds']} |" for s in samples),
    ]
    (out / "soak.md").write_text("\n".join(lines) + "\n")
    if not chart:
        return
    try:
        import matplotlib  # noqa: PLC0415 - bench-only dependency (the bench extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return
    fig, rss_ax = plt.subplots(figsize=(10, 5))
    xs = [s["requests"] for s in samples]
    rss_ax.plot(xs, [s["rss_mib"] for s in samples], color="tab:blue", label="RSS (MiB)")
    rss_ax.set_xlabel("requests answered")
    rss_ax.set_ylabel("RSS (MiB)", color="tab:blue")
    rss_ax.set_ylim(bottom=0)
    fd_ax = rss_ax.twinx()
    fd_ax.plot(xs, [s["fds"] for s in samples], color="tab:orange", label="open fds")
    fd_ax.set_ylabel("open file descriptors", color="tab:orange")
    fd_ax.set_ylim(bottom=0)
    rss_ax.set_title(
        f"RouteGuard soak: slope {summary['rss_slope_mib_per_100k_requests']} MiB/100k requests, "
        f"spread {summary['rss_spread_pct']} % after warm-up"
    )
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=90)
    plt.close(fig)


# -- the run ---------------------------------------------------------------------------------
def run_soak(
    requests: int,
    concurrency: int = 16,
    sample_s: float = 10.0,
    out: Path | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """Start a simulator and a router, drive ``requests`` through, return the result."""
    sim_port, router_port = _free_port(), _free_port()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "soak.yaml"
        config.write_text(_router_config(sim_port))
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        sim = subprocess.Popen(
            [python, "-m", "routeguard.simulator", "--port", str(sim_port), "--seed", "7"],
            **quiet,  # type: ignore[call-overload]
        )
        router = None
        try:
            _wait_port(sim_port, sim)
            fault = json.dumps({"error_rate": 1.0, "error_status": 503}).encode()
            _http("PUT", sim_port, "/_sim/faults/sim-bad", fault)
            router = subprocess.Popen(
                [
                    python,
                    "-m",
                    "routeguard.cli",
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(router_port),
                ],
                **quiet,  # type: ignore[call-overload]
            )
            _wait_port(router_port, router)
            # Warm-up: the upstream keep-alive pool fills to what this concurrency needs; the
            # descriptor baseline is taken after it, with the warm-up clients gone.
            uvloop.run(_drive(router_port, router.pid, min(2000, requests), concurrency, 60, seed))
            time.sleep(2.0)
            baseline_fds = _fds(router.pid)
            began = time.monotonic()

            def checkpoint(samples: list[dict[str, float]], tally: Tally) -> None:
                if out is not None:
                    partial = _result(
                        tally,
                        concurrency,
                        time.monotonic() - began,
                        samples,
                        baseline_fds,
                        int(samples[-1]["fds"]),
                    )
                    partial["partial"] = True
                    write_report(out, partial, chart=False)

            samples, tally = uvloop.run(
                _drive(
                    router_port,
                    router.pid,
                    requests,
                    concurrency,
                    sample_s,
                    seed + 1000,
                    checkpoint,
                )
            )
            duration = time.monotonic() - began
            time.sleep(2.0)  # closed client sockets reach the router
            final_fds = _fds(router.pid)
            samples.append(
                {
                    "t_s": round(samples[-1]["t_s"] + 2, 1),
                    "requests": tally.sent,
                    "rss_mib": round(_rss_mib(router.pid), 2),
                    "fds": final_fds,
                }
            )
        finally:
            for proc in (router, sim):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    result = _result(tally, concurrency, duration, samples, baseline_fds, final_fds)
    if out is not None:
        write_report(out, result)
    return result


def _result(  # noqa: PLR0917
    tally: Tally,
    concurrency: int,
    duration: float,
    samples: list[dict[str, float]],
    baseline_fds: int,
    final_fds: int,
) -> dict[str, Any]:
    return {
        "requests": tally.sent,
        "concurrency": concurrency,
        "duration_s": round(duration, 1),
        "by_status": {str(k): v for k, v in tally.by_status.items()},
        "by_kind": tally.by_kind,
        "transport_errors": tally.transport_errors,
        "summary": analyse(samples, baseline_fds, final_fds),
        "samples": samples,
    }


def _http(method: str, port: int, path: str, body: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        answer = sock.recv(65536)
    if not answer.startswith(b"HTTP/1.1 2"):
        raise RuntimeError(f"{method} {path}: {answer[:200]!r}")


def main() -> None:  # pragma: no cover - the test suite runs run_soak directly
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or REPO / "bench" / "results" / time.strftime(
        "soak-%Y%m%dT%H%M%SZ", time.gmtime()
    )
    result = run_soak(args.requests, args.concurrency, args.sample_s, out)
    print(json.dumps(result["summary"], indent=2))
    print(f"report: {out}/soak.md, chart: {out}/soak.png")


if __name__ == "__main__":
    main()
