"""What the drills share: the router configuration on a drill's time scale, the load phases,
polling, and filling a report from the load and the sampler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from routeguard.ops.drills.harness import DrillEnv, Load, Sampler
from routeguard.ops.drills.report import DrillReport

__all__ = [
    "CLOUD",
    "COOLDOWN_S",
    "DETECT_TARGET_S",
    "GPT4",
    "OPENAI",
    "Phases",
    "cloud_config",
    "finish",
    "router_config",
    "until",
]

COOLDOWN_S = 2.0
DETECT_TARGET_S = 10.0
GPT4 = "gpt-4-turbo"
OPENAI = "openai-gpt4-turbo"
CLOUD = (
    (OPENAI, "openai", "gpt-4-turbo", 60),
    ("azure-gpt4-turbo", "azure", "gpt-4-turbo", 30),
    ("anthropic-claude-3-opus", "anthropic", "claude-3-opus-20240229", 10),
)


def router_config(
    env: DrillEnv, deployments: list[str], weights: list[str], extra: str = ""
) -> str:
    return (
        f"server:\n  watch_config_s: 0\n  access_log: false\n"
        f'admin:\n  audit_log: "{env.workdir / "DECISIONS.log"}"\n'
        f'  tokens:\n    drill: "{env.token}"\n'
        "routing:\n  num_retries: 2\n  retry_backoff_s: 0.01\n  timeout_s: 10\n"
        "  circuit_breaker_error_rate: 0.5\n  circuit_breaker_window_s: 5\n"
        f"  circuit_breaker_min_requests: 5\n  cooldown_s: {COOLDOWN_S}\n"
        "health_checks:\n  interval_s: 0.25\n  timeout_s: 5\n"
        # The runbook's classes on a drill's time scale: seconds where it says minutes.
        f'incidents:\n  reports_dir: "{env.workdir / "reports"}"\n  evaluate_interval_s: 0.5\n'
        "  error_window_s: 10\n  min_requests: 5\n  p0_for_s: 1\n  p1_for_s: 1\n  p2_for_s: 1\n"
        "  all_providers_for_s: 1\n  provider_failing_for_s: 1\n  cascade_for_s: 1\n"
        "  latency_for_s: 1\n"
        "deployments:\n" + "".join(f"  {d}\n" for d in deployments)
        + "weights:\n" + "".join(f"  {w}\n" for w in weights)
        + extra
    )  # fmt: skip


def cloud_config(env: DrillEnv, key: dict[str, str] | None = None) -> str:
    lines = []
    for name, provider, model, _ in CLOUD:
        auth = (key or {}).get(name, "api_key: drill-key")
        lines.append(
            f'{name}: {{provider: {provider}, model: "{model}", '
            f'api_base: "{env.sim.url(name, provider)}", {auth}}}'
        )
    members = ", ".join(f"{name}: {weight}" for name, _, _, weight in CLOUD)
    return router_config(env, lines, [f"{GPT4}: {{{members}}}"])


@dataclass(frozen=True)
class Phases:
    warm_s: float
    fault_s: float
    after_s: float

    @classmethod
    def of(cls, duration_s: float) -> Phases:
        warm = max(1.0, duration_s * 0.2)
        fault = max(2.0, duration_s * 0.4)
        return cls(warm, fault, max(1.0, duration_s - warm - fault))


async def until(predicate: Callable[[], bool], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def finish(report: DrillReport, load: Load, sampler: Sampler) -> None:
    report.client_requests = len(load.records)
    report.client_errors = load.errors()
    report.cooldown_s = COOLDOWN_S
    report.class_over_time = sampler.classes if sampler.status_available else None
    for t, name, state in sampler.transitions:
        report.event(t, f"breaker {name}: {state}")
    report.timeline.sort()
