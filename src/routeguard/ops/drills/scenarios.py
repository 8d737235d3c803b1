"""The runbook's scenarios as drills: break something, let RouteGuard (and the operator's
command, where the runbook has one) handle it, measure.

Each drill starts the simulator and a router process, runs steady client load, injects the
fault, clears it (or performs the operator's fix), waits for recovery and fills a
:class:`~routeguard.ops.drills.report.DrillReport`. Breakers use a 2 s cooldown and active health
checks every 0.25 s so a drill fits in CI; ``duration_s`` sets the load phases (warm-up, fault,
after), and recovery is awaited for up to cooldown + 10 s on top.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from routeguard.ops.drills.common import (
    COOLDOWN_S,
    DETECT_TARGET_S,
    GPT4,
    OPENAI,
    Phases,
    cloud_config,
    finish,
    router_config,
    until,
)
from routeguard.ops.drills.harness import DrillEnv, Load, Sampler
from routeguard.ops.drills.redis_drill import redis_pool_exhaustion
from routeguard.ops.drills.report import DrillReport
from routeguard.simulator import FaultSpec

__all__ = ["SCENARIOS", "Scenario", "run_drill"]

VLLM = "vllm-local-llama-3-1-8b"
LLAMA = "llama-3.1-8b-instruct"
MINI = "openai-gpt4o-mini"


def _standard_checks(report: DrillReport, fallback: bool = True) -> None:
    detect = report.detect_s
    report.check(
        "detect",
        f"< {DETECT_TARGET_S:g} s",
        "not detected" if detect is None else f"{detect:.2f} s",
        detect is not None and detect < DETECT_TARGET_S,
    )
    if fallback:
        report.check(
            "client errors (fallback exists)",
            "0",
            f"{report.client_errors} of {report.client_requests}",
            report.client_errors == 0,
        )
    limit = COOLDOWN_S + 5
    recover = report.recover_s
    report.check(
        "recovery",
        f"<= cooldown + 5 s = {limit:g} s",
        "not recovered" if recover is None else f"{recover:.2f} s",
        recover is not None and recover <= limit,
    )


async def _outage(
    env: DrillEnv,
    report: DrillReport,
    *,
    config: str,
    model: str,
    target: str,
    fault: Callable[[], Awaitable[None]],
    fix: Callable[[], Awaitable[str]],
    phases: Phases,
    workers: int = 4,
) -> tuple[Load, Sampler]:
    """The shared shape: warm up, break ``target``, fix it, wait until it serves again."""
    await env.start_router(config)
    load, sampler = Load(env, model, workers=workers), Sampler(env)
    load.start()
    sampler.start()
    try:
        await asyncio.sleep(phases.warm_s)
        t_fault = env.now()
        await fault()
        report.event(t_fault, f"fault injected on {target}")
        await until(
            lambda: sampler.first_not(target, "closed", t_fault) is not None, phases.fault_s
        )
        if (seen := sampler.first_not(target, "closed", t_fault)) is not None:
            report.detect_s = round(seen - t_fault, 3)
        await asyncio.sleep(max(0.0, phases.fault_s - (env.now() - t_fault)))
        t_fix = env.now()
        report.event(t_fix, await fix())

        def serving() -> bool:
            return sampler.breakers.get(target) == "closed" and load.served_by(target, t_fix) > 0

        if await until(serving, COOLDOWN_S + 10):
            t_ok = env.now()
            report.recover_s = round(t_ok - t_fix, 3)
            report.mttr_s = round(t_ok - t_fault, 3)
            report.event(t_ok, f"{target} serves clients again")
        await asyncio.sleep(phases.after_s)
    finally:
        await load.stop()
        await sampler.stop()
    finish(report, load, sampler)
    return load, sampler


async def provider_outage(env: DrillEnv, report: DrillReport, duration_s: float) -> None:
    """OpenAI answers 503 to everything; the breaker and retries move its share to the others."""
    await env.start_simulator()

    async def fault() -> None:
        env.sim.set_fault(OPENAI, FaultSpec(error_rate=1.0, error_status=503))

    async def fix() -> str:
        env.sim.clear_faults()
        return f"{OPENAI} healthy again (fault cleared)"

    await _outage(env, report, config=cloud_config(env), model=GPT4, target=OPENAI, fault=fault,
                  fix=fix, phases=Phases.of(duration_s))  # fmt: skip
    report.mitigated_by = ["circuit breaker", "retry on sibling deployments", "active health check"]
    _standard_checks(report)


async def key_rotation(env: DrillEnv, report: DrillReport, duration_s: float) -> None:
    """The provider revokes OpenAI's key (a 401 storm); the operator writes the new key into
    ``api_key_file`` and runs ``routeguard rotate-key`` (scenario 2, no restart)."""
    env.sim.set_api_keys({"key-1", "drill-key"})
    await env.start_simulator()
    key_file = env.workdir / "openai.key"
    env.workdir.mkdir(parents=True, exist_ok=True)
    key_file.write_text("key-1\n")

    async def fault() -> None:
        env.sim.set_api_keys({"key-2", "drill-key"})

    async def fix() -> str:
        key_file.write_text("key-2\n")
        status, answer = await env.admin(
            "POST", "/admin/deployments/rotate-key", {"deployment": OPENAI}
        )
        report.figures["rotate_key"] = {"status": status, "answer": answer}
        return f"operator: key file updated, routeguard rotate-key {OPENAI} -> {status}"

    config = cloud_config(env, {OPENAI: f'api_key_file: "{key_file}"'})
    await _outage(env, report, config=config, model=GPT4, target=OPENAI, fault=fault, fix=fix,
                  phases=Phases.of(duration_s))  # fmt: skip
    report.mitigated_by = [
        "circuit breaker (401 opens it at once)",
        "retry on sibling deployments",
        "operator: routeguard rotate-key",
    ]
    _standard_checks(report)


async def vllm_oom(env: DrillEnv, report: DrillReport, duration_s: float) -> None:
    """The local vLLM first saturates (slow answers fill its slots and queue), then fails with
    out-of-memory 500s; backpressure and the breaker send its traffic to the cloud fallback."""
    await env.start_simulator()
    deployments = [
        f'{VLLM}: {{provider: vllm, model: llama, api_base: "{env.sim.url(VLLM, "vllm")}", '
        "max_parallel_requests: 4, max_queue: 4, queue_timeout_s: 0.3}",
        f'{MINI}: {{provider: openai, model: gpt-4o-mini, api_base: "{env.sim.url(MINI)}", '
        "api_key: drill-key}",
    ]
    weights = [f"{LLAMA}: {{{VLLM}: 100}}", f"gpt-4o-mini: {{{MINI}: 100}}"]
    config = router_config(env, deployments, weights, f"fallbacks:\n  {LLAMA}: [gpt-4o-mini]\n")
    phases = Phases.of(duration_s)
    saturate_s = phases.fault_s / 2

    marks: dict[str, float] = {}

    async def fault() -> None:
        marks["saturated"] = env.now()
        env.sim.set_fault(VLLM, FaultSpec(latency_ms=800))
        await asyncio.sleep(saturate_s)
        marks["oom"] = env.now()
        report.event(marks["oom"], f"{VLLM}: out of memory (500s)")
        env.sim.set_fault(VLLM, FaultSpec(error_rate=1.0, error_status=500))

    async def fix() -> str:
        env.sim.clear_faults()
        return f"{VLLM} restarted (fault cleared)"

    load, sampler = await _outage(env, report, config=config, model=LLAMA, target=VLLM,
                                  fault=fault, fix=fix, phases=phases, workers=10)  # fmt: skip
    # Detection of the failure counts from the OOM, not from the saturation before it.
    opened = sampler.first_not(VLLM, "closed", marks["oom"]) if "oom" in marks else None
    report.detect_s = None if opened is None else round(opened - marks["oom"], 3)
    since = marks.get("saturated", 0.0)
    fallback = next(
        (t for t, status, d in load.records if d == MINI and status == 200 and t >= since), None
    )
    report.figures["saturation_to_first_fallback_s"] = (
        None if fallback is None else round(fallback - marks["saturated"], 3)
    )
    report.figures["served_by"] = {d: load.served_by(d) for d in (VLLM, MINI)}
    report.mitigated_by = ["backpressure (queue timeout)", "fallback to gpt-4o-mini",
                           "circuit breaker", "active health check"]  # fmt: skip
    _standard_checks(report)


async def memory_leak(env: DrillEnv, report: DrillReport, duration_s: float) -> None:
    """Steady load for the whole duration, watching the router process's RSS (scenario 3)."""
    await env.start_simulator()
    await env.start_router(cloud_config(env))
    load, sampler = Load(env, GPT4, workers=8, pause_s=0.0), Sampler(env)
    load.start()
    sampler.start()
    try:
        await asyncio.sleep(max(4.0, duration_s))
    finally:
        await load.stop()
        await sampler.stop()
    finish(report, load, sampler)
    samples = sampler.rss
    warm = max(1, len(samples) * 3 // 10)
    after = samples[warm:] or samples
    base = after[0][1] if after else 0.0
    growth = (after[-1][1] - base) if after else 0.0
    allowed = max(16.0, base * 0.10)
    elapsed = samples[-1][0] - samples[0][0] if len(samples) > 1 else 0.0
    report.figures["rss_mb"] = [(round(t, 1), round(mb, 1)) for t, mb in samples]
    report.figures["requests_per_s"] = round(len(load.records) / elapsed, 1) if elapsed else None
    report.mitigated_by = ["none needed"]
    report.check(
        "RSS growth after warm-up",
        f"<= {allowed:.0f} MB",
        f"{growth:+.1f} MB ({base:.0f} -> {after[-1][1] if after else 0:.0f} MB)",
        bool(samples) and growth <= allowed,
    )
    report.check(
        "client errors", "0", f"{report.client_errors} of {report.client_requests}",
        report.client_errors == 0,
    )  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[DrillEnv, DrillReport, float], Awaitable[None]]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("provider-outage", "a provider answers 503; breaker + retries", provider_outage),
        Scenario(
            "redis-pool-exhaustion",
            "Redis refuses clients (maxclients), 3 routers",
            redis_pool_exhaustion,
        ),
        Scenario("key-rotation", "a revoked key (401 storm) fixed by rotate-key", key_rotation),
        Scenario("memory-leak", "steady load watching the router's RSS", memory_leak),
        Scenario("vllm-oom", "local vLLM saturates then fails; fallback to cloud", vllm_oom),
    )
}


async def run_drill(name: str, duration_s: float, workdir: Path) -> DrillReport:
    """Run scenario ``name``; the report (saving it is the caller's choice)."""
    scenario = SCENARIOS[name]
    report = DrillReport(name, duration_s)
    env = DrillEnv(workdir / name)
    try:
        await scenario.run(env, report, duration_s)
    finally:
        await env.stop()
    return report
