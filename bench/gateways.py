"""The upstreams and the gateways under test: render their configs, start them, address them.

Upstreams run on the load generator's core; gateways on their own core. Every gateway reaches
the same upstreams:

* ``static``: nginx answering a fixed ``chat.completion`` (zero delay, no Python);
* ``sim``: the RouteGuard simulator, target ``fast`` (zero delay);
* ``sim50``: the simulator, target ``slow``, with the fault ``latency_ms: 50``.

A case names its upstream; each gateway knows the URL and model name that reach it, so one wrk
body per (gateway, case) sends the same request bytes (bar the model name) everywhere.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from procs import Proc, Supervisor, free_port, wait_for_port

__all__ = [
    "BENCH_DIR",
    "CASES",
    "LITELLM_VENV",
    "Case",
    "Gateway",
    "Upstreams",
    "litellm_installed",
    "start_routeguard",
    "post_json",
    "render",
    "set_fault",
    "start_gateways",
    "start_upstreams",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
TEMPLATES = BENCH_DIR / "templates"
LITELLM_VENV = BENCH_DIR / ".litellm-venv"
GATEWAY_CORE = 0
LOAD_CORE = 1
SLOW_LATENCY_MS = 50
# Streams: 20 events (role, 18 words, finish) and [DONE]; the simulator answers 18 words.
STREAM_WORDS = 18
GAP_MS = 20  # between stream events: ~50 tokens/s, a typical hosted model
HOLD_GAP_MS = 1000  # streams held open for the memory curve: ~19 s each


@dataclass(frozen=True)
class Case:
    """One upstream situation the load runs against."""

    key: str
    title: str
    sim_target: str | None  # the simulator target, or None for the static nginx upstream


CASES = {
    "static": Case("static", "zero-delay static upstream (nginx return 200)", None),
    "sim": Case("sim", "zero-delay simulator upstream", "fast"),
    "sim50": Case("sim50", f"{SLOW_LATENCY_MS} ms simulator upstream", "slow"),
    "gap": Case("gap", f"simulator streams, {GAP_MS} ms between events", "gap"),
    "hold": Case("hold", f"simulator streams, {HOLD_GAP_MS} ms between events", "hold"),
}
_MODEL = {"static": "bench-static", "sim": "bench-fast", "sim50": "bench-slow",
          "gap": "bench-gap", "hold": "bench-hold"}
FAULTS = {"slow": {"latency_ms": SLOW_LATENCY_MS}, "gap": {"chunk_delay_ms": GAP_MS},
          "hold": {"chunk_delay_ms": HOLD_GAP_MS}}


def render(template: str, out: Path, **values: object) -> Path:
    """Fill ``{{NAME}}`` placeholders of ``templates/<template>`` and write the result."""
    text = (TEMPLATES / template).read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", str(value))
    if "{{" in text:
        raise ValueError(f"{template}: unfilled placeholder in rendered file")
    out.write_text(text)
    return out


def post_json(url: str, payload: dict[str, object], headers: dict[str, str] | None = None,
              method: str = "POST", timeout_s: float = 10.0) -> tuple[int, bytes]:
    """A tiny blocking HTTP call for setup and readiness (never on a measured path)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Upstreams:
    static_port: int
    sim_port: int
    static: Proc
    sim: Proc


def start_upstreams(sup: Supervisor, tmp: Path) -> Upstreams:
    """Start the static nginx and the simulator on the load core; set the 50 ms fault."""
    static_port, sim_port = free_port(), free_port()
    conf = render("nginx-static.conf", tmp / "nginx-static.conf", DIR=tmp, PORT=static_port)
    static = sup.start("upstream-static-nginx", _nginx_argv(tmp, conf), core=LOAD_CORE)
    sim = sup.start(
        "upstream-simulator",
        [str(REPO_DIR / ".venv/bin/python"), "-m", "routeguard.simulator", "--host", "127.0.0.1",
         "--port", str(sim_port), "--words", str(STREAM_WORDS)],
        core=LOAD_CORE,
    )
    wait_for_port(static, static_port, 10)
    wait_for_port(sim, sim_port, 30)
    ups = Upstreams(static_port, sim_port, static, sim)
    for target, fault in FAULTS.items():
        set_fault(ups, target, fault)
    return ups


def set_fault(ups: Upstreams, target: str, fault: dict[str, object]) -> None:
    """Set (replace) the simulator's fault for ``target``; ``{}`` heals it."""
    status, body = post_json(f"http://127.0.0.1:{ups.sim_port}/_sim/faults/{target}", fault,
                             method="PUT")
    if status != 200:
        raise RuntimeError(f"simulator refused the fault {fault} on {target}: {status} "
                           f"{body[:200]!r}")


def _nginx_argv(tmp: Path, conf: Path) -> list[str]:
    return ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"]


@dataclass
class Gateway:
    """One way of reaching the upstreams: directly, or through a proxy process."""

    name: str
    port: int
    proc: Proc | None  # None for "direct"
    via_path: bool  # True: the path selects the upstream (direct, nginx); False: the model does

    def url(self, case: Case, ups: Upstreams) -> str:
        if self.proc is None:  # direct
            if case.sim_target is None:
                return f"http://127.0.0.1:{ups.static_port}/v1/chat/completions"
            return f"http://127.0.0.1:{ups.sim_port}/{case.sim_target}/v1/chat/completions"
        if self.via_path:
            prefix = "static" if case.sim_target is None else case.sim_target
            return f"http://127.0.0.1:{self.port}/{prefix}/v1/chat/completions"
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    @staticmethod
    def model(case: Case) -> str:
        return _MODEL[case.key]


def litellm_installed() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def start_routeguard(
    sup: Supervisor, tmp: Path, ups: Upstreams, name: str, *, workers: int = 1,
    cores: str | None = None,
) -> Gateway:
    """One more RouteGuard with the shipped defaults (the scale-out and memory cases)."""
    gateway = _start_routeguard(sup, tmp, ups, name, access_log=True, workers=workers,
                                cores=cores)
    _check_answers(gateway, ups, "sk-bench")
    return gateway


def start_gateways(
    sup: Supervisor, tmp: Path, ups: Upstreams, *, with_litellm: bool, api_key: str,
    notes: list[str], routeguard_no_log: bool = False,
) -> list[Gateway]:
    """Start nginx, RouteGuard and (if wanted and installed) LiteLLM, each pinned to core 0.

    ``routeguard_no_log`` adds a second RouteGuard with ``server.access_log: false``, to show
    what the per-request log line costs; the targets are judged on the default one.
    """
    gateways = [Gateway("direct", 0, None, True)]
    port = free_port()
    conf = render("nginx-proxy.conf", tmp / "nginx-proxy.conf", DIR=tmp, PORT=port,
                  STATIC_PORT=ups.static_port, SIM_PORT=ups.sim_port)
    proc = sup.start("nginx", _nginx_argv(tmp, conf), core=GATEWAY_CORE)
    wait_for_port(proc, port, 10)
    gateways.append(Gateway("nginx", port, proc, True))

    gateways.append(_start_routeguard(sup, tmp, ups, "routeguard", access_log=True))
    if routeguard_no_log:
        gateways.append(_start_routeguard(sup, tmp, ups, "routeguard-nolog", access_log=False))

    if with_litellm:
        litellm = _start_litellm(sup, tmp, ups, api_key, notes)
        if litellm is not None:
            gateways.append(litellm)
    for gateway in list(gateways):
        try:
            _check_answers(gateway, ups, api_key)
        except RuntimeError as exc:
            if gateway.name != "litellm":
                raise
            notes.append(f"LiteLLM: started but did not answer; skipped. {exc}")
            assert gateway.proc is not None
            sup.stop(gateway.proc)
            gateways.remove(gateway)
    return gateways


def _start_routeguard(
    sup: Supervisor, tmp: Path, ups: Upstreams, name: str, *, access_log: bool,
    workers: int = 1, cores: str | None = None,
) -> Gateway:
    port = free_port()
    conf = render("routeguard.yaml", tmp / f"{name}.yaml", PORT=port,
                  STATIC_PORT=ups.static_port, SIM_PORT=ups.sim_port,
                  ACCESS_LOG=str(access_log).lower())
    proc = sup.start(
        name,
        [str(REPO_DIR / ".venv/bin/routeguard"), "serve", "--config", str(conf),
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        # cwd: its audit log (DECISIONS.log) lands in the temp dir
        core=GATEWAY_CORE if cores is None else cores, cwd=tmp,
    )
    wait_for_port(proc, port, 30)
    return Gateway(name, port, proc, False)


def _start_litellm(
    sup: Supervisor, tmp: Path, ups: Upstreams, api_key: str, notes: list[str]
) -> Gateway | None:
    if not litellm_installed():
        notes.append("LiteLLM: not installed (run with --with-litellm to install it); skipped")
        return None
    port = free_port()
    conf = render("litellm.yaml", tmp / "litellm.yaml",
                  STATIC_PORT=ups.static_port, SIM_PORT=ups.sim_port)
    env = {
        **os.environ,
        # A master key is mandatory since LiteLLM 1.8x; no DATABASE_URL means no database.
        "LITELLM_MASTER_KEY": api_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # do not fetch the cost map from the internet
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    env.pop("DATABASE_URL", None)
    proc = sup.start(
        "litellm",
        [str(LITELLM_VENV / "bin/litellm"), "--config", str(conf), "--host", "127.0.0.1",
         "--port", str(port), "--num_workers", "1"],
        core=GATEWAY_CORE, env=env, cwd=tmp,
    )
    try:
        wait_for_port(proc, port, 120)
    except RuntimeError as exc:
        notes.append(f"LiteLLM: could not be started; skipped. {exc}")
        sup.stop(proc)
        return None
    return Gateway("litellm", port, proc, False)


def _check_answers(gateway: Gateway, ups: Upstreams, api_key: str) -> None:
    """One request per case must succeed before any load is sent (retrying while it boots)."""
    for case in CASES.values():
        payload = {"model": Gateway.model(case),
                   "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = post_json(gateway.url(case, ups), payload,
                                         {"Authorization": f"Bearer {api_key}"})
            except OSError as exc:
                status, body = 0, str(exc).encode()
            if status == 200 and b"chat.completion" in body:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{gateway.name} ({case.key}): {status} {body[:300]!r}"
                    + (f"\n{gateway.proc.log_tail()}" if gateway.proc else "")
                )
            time.sleep(0.5)
    print(f"  {gateway.name}: answers every case", file=sys.stderr)
