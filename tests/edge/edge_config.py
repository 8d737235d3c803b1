"""Router configurations for the edge tests: small limits and timeouts, so tests run in seconds."""

from __future__ import annotations

from routeguard.simulator import Simulator

SMALL_LIMITS = (
    "  header_timeout_s: 1\n"
    "  body_timeout_s: 1\n"
    "  keep_alive_timeout_s: 1\n"
    "  write_timeout_s: 1\n"
    "  max_url_bytes: 1024\n"
    "  max_header_bytes: 1024\n"
    "  max_headers_bytes: 4096\n"
    "  max_headers: 20\n"
    "  max_body_bytes: 65536\n"
)


def router_yaml(sim: Simulator, server: str = SMALL_LIMITS, extra: str = "") -> str:
    return (
        f"server:\n  host: 127.0.0.1\n{server}"
        "routing:\n  timeout_s: 5\n  num_retries: 0\n"
        f'deployments:\n  sim-a: {{provider: openai, model: m, api_base: "{sim.url("sim-a")}", '
        "api_key: sk-upstream-secret, input_cost_per_token: 0.001, output_cost_per_token: 0.002}\n"
        "weights:\n  gpt-4-turbo: {sim-a: 1}\n  other-group: {sim-a: 1}\n" + extra
    )


def upstream_requests(sim: Simulator) -> int:
    stats = sim.stats().get("sim-a")
    return 0 if stats is None else stats.requests
