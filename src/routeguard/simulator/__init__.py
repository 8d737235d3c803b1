"""Fake LLM providers that speak the real wire formats, with fault injection.

One simulator server hosts many named *targets* (simulated deployments) of OpenAI, vLLM,
Azure OpenAI and Anthropic; faults (errors, latency, hangs, resets, broken or malformed
streams, Azure content filtering) are set per target at runtime, in-process or over the
``/_sim`` control API. Tests, demos, outage drills and benchmarks run RouteGuard against
it; see ``README.md`` in this package for endpoints and curl examples.
"""

from routeguard.simulator.faults import FaultSpec, TargetStats
from routeguard.simulator.server import Provider, Simulator, run_simulator

__all__ = ["FaultSpec", "Provider", "Simulator", "TargetStats", "run_simulator"]
