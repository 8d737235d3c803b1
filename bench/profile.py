"""Profile the pinned gateway under wrk: a flame graph and the hottest frames, in one command.

    .venv/bin/python bench/profile.py [--seconds 15] [--connections 64] [--case static|sim]
                                      [--stream]

Starts the upstreams and one RouteGuard (shipped defaults, core 0), drives it with wrk from
core 1 and attaches ``py-spy record --native`` (sampling, so the gateway runs at full speed).
Writes ``bench/results/profile-<stamp>.svg`` (the flame graph) and ``.txt`` (the frames with
the most samples, self and inclusive). py-spy needs ptrace rights over the gateway: it runs as
the same user, which is enough where ``kernel.yama.ptrace_scope`` is 0 or py-spy is root.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from gateways import BENCH_DIR, CASES, LOAD_CORE, REPO_DIR, Gateway, render, start_upstreams
from gateways import _start_routeguard as start_routeguard
from loadgen import run_wrk
from procs import Supervisor

RESULTS = BENCH_DIR / "results"


def _top(collapsed: Path, limit: int = 40) -> str:
    """The frames with the most samples, self and inclusive, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    out = [f"{total} samples", "", "self %   frame"]
    out += [f"{100 * n / total:6.1f}   {f}" for f, n in own.most_common(limit)]
    out += ["", "incl %   frame"]
    out += [f"{100 * n / total:6.1f}   {f}" for f, n in incl.most_common(limit)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--case", choices=["static", "sim"], default="static")
    parser.add_argument("--native", action="store_true", help="include C frames (slower)")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(REPO_DIR / ".venv/bin/py-spy")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="routeguard-profile-"))
    sup = Supervisor(tmp)
    try:
        ups = start_upstreams(sup, tmp)
        gateway = start_routeguard(sup, tmp, ups, "routeguard", access_log=True)
        case = CASES[args.case]
        script = render("post.lua", tmp / "post.lua", MODEL=Gateway.model(case), API_KEY="sk-x")
        run_wrk(sup, url=gateway.url(case, ups), script=script, connections=16, duration_s=2,
                core=LOAD_CORE)
        assert gateway.proc is not None
        base = RESULTS / f"profile-{stamp}"
        record = [py_spy, "record", "--pid", str(gateway.proc.pid), "--rate", "250",
                  "--duration", str(int(args.seconds))]
        # --native stops the process at each sample (accurate C frames, slower gateway);
        # without it py-spy reads the stacks without stopping it.
        record.append("--native" if args.native else "--nonblocking")
        svg = subprocess.Popen([*record, "--format", "flamegraph", "-o", f"{base}.svg"])
        result = run_wrk(sup, url=gateway.url(case, ups), script=script,
                         connections=args.connections, duration_s=args.seconds + 1,
                         core=LOAD_CORE)
        svg.wait(60)
        raw = subprocess.Popen([*record, "--format", "raw", "-o", f"{base}.collapsed"])
        run_wrk(sup, url=gateway.url(case, ups), script=script, connections=args.connections,
                duration_s=args.seconds + 1, core=LOAD_CORE)
        raw.wait(60)
        text = f"wrk: {result.rps:,.0f} rps, p50 {result.p50_ms:.3f} ms\n" + _top(
            Path(f"{base}.collapsed"))
        Path(f"{base}.txt").write_text(text)
        print(text)
        print(f"flame graph: {base}.svg", file=sys.stderr)
    finally:
        sup.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
