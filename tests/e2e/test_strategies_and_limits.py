"""Routing strategies beyond weighted, rpm limits and the process-wide in-flight cap, end to end."""

from __future__ import annotations

import collections
import concurrent.futures

import httpx

from routeguard.simulator import FaultSpec, Simulator

MESSAGES = [{"role": "user", "content": "Hello strategies"}]


def config(
    sim: Simulator, strategy: str, extra: dict[str, str] | None = None, routing: str = ""
) -> str:
    extra = extra or {}
    lines = [
        f"routing:\n  strategy: {strategy}\n  num_retries: 1\n  retry_backoff_s: 0\n{routing}deployments:"
    ]
    for name in ("fast", "slow", "off"):
        lines.append(
            f'  {name}: {{provider: openai, model: m, api_base: "{sim.url(name)}"{extra.get(name, "")}}}'
        )
    lines.append("weights:\n  g: {fast: 1, slow: 1, off: 0}")
    return "\n".join(lines) + "\n"


def post(port: int) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json={"model": "g", "messages": MESSAGES},
        timeout=60,
    )


def served(port: int, n: int) -> collections.Counter[str]:
    return collections.Counter(post(port).headers["x-routeguard-deployment"] for _ in range(n))


def test_latency_strategy_prefers_the_faster_deployment(simulator, start_router):
    app = start_router(config(simulator, "latency"))
    simulator.set_fault("slow", FaultSpec(latency_ms=150))
    simulator.set_fault("off", FaultSpec(latency_ms=0))
    served(app.port, 10)  # both get measured (unmeasured deployments are tried first)
    counts = served(app.port, 30)
    assert counts["off"] == 0  # weight 0 means no traffic, whatever the strategy
    assert counts["fast"] >= 25
    assert app.runtimes["slow"].latency.score_s > app.runtimes["fast"].latency.score_s


def test_cost_strategy_prefers_the_cheaper_deployment(simulator, start_router):
    prices = {
        "fast": ", input_cost_per_token: 0.00003, output_cost_per_token: 0.00006",
        "slow": ", input_cost_per_token: 0.000001, output_cost_per_token: 0.000002",
        "off": ", input_cost_per_token: 0, output_cost_per_token: 0",
    }
    app = start_router(config(simulator, "cost", prices))
    assert served(app.port, 20) == {"slow": 20}
    # The cheap one fails: traffic goes to the next cheapest, and clients see no error.
    simulator.set_fault("slow", FaultSpec(error_rate=1.0, error_status=500))
    responses = [post(app.port) for _ in range(10)]
    assert all(r.status_code == 200 for r in responses)
    assert {r.headers["x-routeguard-deployment"] for r in responses} == {"fast"}
    metrics = httpx.get(f"http://127.0.0.1:{app.port}/metrics").text
    assert 'router_cost_usd_total{deployment="slow",model_group="g"}' in metrics


def test_least_busy_spreads_concurrent_requests(simulator, start_router):
    app = start_router(config(simulator, "least-busy"))
    simulator.set_fault("*", FaultSpec(latency_ms=300))
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: post(app.port), range(6)))
    counts = collections.Counter(r.headers["x-routeguard-deployment"] for r in responses)
    assert counts["off"] == 0
    assert counts["fast"] >= 2
    assert counts["slow"] >= 2


def test_rpm_limit_spills_to_another_deployment(simulator, start_router):
    app = start_router(
        config(simulator, "weighted", {"fast": ", rpm: 3"}).replace(
            "{fast: 1, slow: 1, off: 0}", "{fast: 1000, slow: 1, off: 0}"
        )
    )
    counts = served(app.port, 10)
    assert counts["fast"] == 3
    assert counts["slow"] == 7


def test_process_in_flight_cap_answers_fast_503(simulator, start_router):
    app = start_router(config(simulator, "weighted", routing="  max_in_flight: 2\n"))
    simulator.set_fault("*", FaultSpec(latency_ms=500))
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: post(app.port), range(6)))
    statuses = collections.Counter(r.status_code for r in responses)
    assert statuses[200] >= 2
    assert statuses[503] >= 1
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert app.in_flight.in_flight == 0
