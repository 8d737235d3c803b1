"""Provider outages absorbed by the router, over real sockets against the simulator.

An injected ManualClock drives breaker windows and cooldowns, so these tests are exact and fast:
nothing waits for a real cooldown.
"""

from __future__ import annotations

import collections
import concurrent.futures
import random
import time

import httpx
import openai
import pytest
from processes import free_port

from routeguard.config.loader import parse_config
from routeguard.resilience import BreakerState, ManualClock
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import FaultSpec, Simulator

MESSAGES = [{"role": "user", "content": "Hello resilient router"}]
NAMES = ("dep-a", "dep-b", "dep-c")


def three_way(sim: Simulator, routing: str = "", extra: dict[str, str] | None = None) -> str:
    extra = extra or {}
    lines = [
        "routing:",
        "  timeout_s: 5",
        "  num_retries: 2",
        "  retry_backoff_s: 0",
        "  circuit_breaker_error_rate: 0.5",
        "  circuit_breaker_min_requests: 5",
        "  cooldown_s: 60",
        *[f"  {line}" for line in routing.splitlines() if line],
        "deployments:",
    ]
    for name in NAMES:
        base = extra.get(name, f'provider: openai, model: m, api_base: "{sim.url(name)}"')
        lines.append(f"  {name}: {{{base}}}")
    lines += ["weights:", "  gpt-4-turbo: {dep-a: 1, dep-b: 1, dep-c: 1}"]
    return "\n".join(lines) + "\n"


class Harness:
    def __init__(self, loop_thread, yaml_text: str, seed: int = 11) -> None:
        self.loop_thread = loop_thread
        self.clock = ManualClock(1000.0)
        self.app = RouteGuardApp(parse_config(yaml_text), rng=random.Random(seed), clock=self.clock)
        loop_thread.run(self.app.start("127.0.0.1", 0))
        self.client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{self.app.port}/v1", api_key="k", max_retries=0
        )
        self.served: collections.Counter[str] = collections.Counter()
        self.failed = 0

    def send(
        self, n: int, model: str = "gpt-4-turbo", stream: bool = False
    ) -> collections.Counter[str]:
        batch: collections.Counter[str] = collections.Counter()
        for _ in range(n):
            try:
                if stream:
                    with self.client.chat.completions.with_streaming_response.create(
                        model=model, messages=MESSAGES, stream=True
                    ) as response:
                        chunks = list(response.parse())
                        assert chunks
                        name = response.headers["x-routeguard-deployment"]
                else:
                    raw = self.client.chat.completions.with_raw_response.create(
                        model=model, messages=MESSAGES
                    )
                    raw.parse()
                    name = raw.headers["x-routeguard-deployment"]
            except openai.APIError:
                self.failed += 1
                continue
            batch[name] += 1
        self.served.update(batch)
        return batch

    def breaker(self, name: str) -> BreakerState:
        return self.app.runtimes[name].breaker.state

    def close(self) -> None:
        self.loop_thread.run(self.app.close(drain_timeout_s=1))


@pytest.fixture
def harness(loop_thread):
    made: list[Harness] = []

    def make(yaml_text: str, seed: int = 11) -> Harness:
        made.append(Harness(loop_thread, yaml_text, seed))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_provider_500s_are_absorbed_breaker_opens_then_recovers(simulator, harness):
    h = harness(three_way(simulator))
    assert sum(h.send(30).values()) == 30
    simulator.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=500))
    h.send(60)
    assert h.failed == 0  # retries absorbed every failure
    assert h.breaker("dep-b") is BreakerState.OPEN
    after_open = h.send(30)
    assert after_open["dep-b"] == 0
    assert after_open["dep-a"] + after_open["dep-c"] == 30
    # The provider recovers; after the cooldown a half-open probe closes the breaker.
    simulator.clear_faults("dep-b")
    h.clock.advance(61)
    assert h.breaker("dep-b") is BreakerState.HALF_OPEN
    back = h.send(60)
    assert h.breaker("dep-b") is BreakerState.CLOSED
    assert back["dep-b"] > 0
    assert h.failed == 0


def test_failure_while_half_open_reopens(simulator, harness):
    h = harness(three_way(simulator))
    simulator.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=503))
    h.send(40)
    assert h.breaker("dep-b") is BreakerState.OPEN
    h.clock.advance(61)
    h.send(20)  # one of these is the probe, and it fails
    assert h.breaker("dep-b") is BreakerState.OPEN
    assert h.failed == 0


def test_hanging_provider_times_out_and_is_routed_around(simulator, harness):
    h = harness(
        three_way(
            simulator,
            extra={
                "dep-b": f'provider: openai, model: m, api_base: "{simulator.url("dep-b")}", timeout_s: 0.2'
            },
        )
    )
    simulator.set_fault("dep-b", FaultSpec(hang=True))
    h.send(40)
    assert h.failed == 0
    assert h.breaker("dep-b") is BreakerState.OPEN
    assert h.served["dep-b"] == 0


def test_connection_refused_opens_after_a_short_run(simulator, harness):
    dead = f'provider: openai, model: m, api_base: "http://127.0.0.1:{free_port()}/v1"'
    h = harness(three_way(simulator, extra={"dep-b": dead}))
    h.send(30)
    assert h.failed == 0
    assert h.breaker("dep-b") is BreakerState.OPEN
    snapshot = h.app.runtimes["dep-b"].breaker.snapshot()
    assert snapshot.requests <= 3  # opened on the refusal run, not after a full window


def test_auth_failure_opens_at_once(simulator, harness):
    h = harness(three_way(simulator))
    simulator.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=401))
    h.send(30)
    assert h.failed == 0
    assert h.breaker("dep-b") is BreakerState.OPEN
    assert simulator.stats()["dep-b"].requests == 1


def test_rate_limit_storm_pauses_without_opening(simulator, harness):
    h = harness(three_way(simulator))
    simulator.set_fault("dep-b", FaultSpec(error_rate=1.0, error_status=429, retry_after_s=30))
    h.send(40)
    assert h.failed == 0
    assert h.breaker("dep-b") is BreakerState.CLOSED  # a 429 is not an outage
    assert simulator.stats()["dep-b"].requests == 1  # paused for Retry-After after the first
    simulator.clear_faults("dep-b")
    h.clock.advance(31)
    assert h.send(30)["dep-b"] > 0


def test_stream_failing_before_first_byte_fails_over(simulator, harness):
    h = harness(three_way(simulator))
    simulator.set_fault("dep-b", FaultSpec(disconnect_after_chunks=0))
    h.send(20, stream=True)
    assert h.failed == 0
    assert h.served["dep-b"] == 0


def test_stream_cut_after_three_chunks_ends_with_error_and_counts(simulator, harness):
    h = harness(
        three_way(simulator).replace(
            "{dep-a: 1, dep-b: 1, dep-c: 1}", "{dep-a: 0, dep-b: 1, dep-c: 0}"
        )
    )
    simulator.set_fault("dep-b", FaultSpec(disconnect_after_chunks=3))
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{h.app.port}/v1/chat/completions",
        json={"model": "gpt-4-turbo", "messages": MESSAGES, "stream": True},
    ) as response:
        body = b"".join(response.iter_bytes())
    assert response.status_code == 200
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1].startswith(b'data: {"error"')  # a terminal error, not a silent truncation
    assert b"[DONE]" not in body
    assert h.app.runtimes["dep-b"].breaker.snapshot().failures == 1


def test_anthropic_overloaded_before_first_chunk_fails_over(simulator, harness):
    anthropic_dep = f'provider: anthropic, model: claude-x, api_base: "{simulator.url("dep-b", "anthropic")}", api_key: ak'
    h = harness(three_way(simulator, extra={"dep-b": anthropic_dep}))
    simulator.set_fault("dep-b", FaultSpec(stream_error_after_chunks=0))
    h.send(30, stream=True)
    assert h.failed == 0
    assert h.served["dep-b"] == 0
    assert simulator.stats()["dep-b"].requests > 0  # it was tried, and failed over


def fallback_config(sim: Simulator, fallbacks: bool) -> str:
    text = (
        "routing:\n  num_retries: 1\n  retry_backoff_s: 0\n  circuit_breaker_min_requests: 2\n  cooldown_s: 60\n"
        "deployments:\n"
        f'  main-1: {{provider: openai, model: m, api_base: "{sim.url("main-1")}"}}\n'
        f'  main-2: {{provider: openai, model: m, api_base: "{sim.url("main-2")}"}}\n'
        f'  backup: {{provider: vllm, model: m, api_base: "{sim.url("backup")}"}}\n'
        "weights:\n  gpt-4-turbo: {main-1: 1, main-2: 1}\n  llama-3.1-8b-instruct: {backup: 1}\n"
    )
    if fallbacks:
        text += "fallbacks:\n  gpt-4-turbo: [llama-3.1-8b-instruct]\n"
    return text


def test_whole_group_down_falls_back(simulator, harness):
    h = harness(fallback_config(simulator, fallbacks=True))
    for name in ("main-1", "main-2"):
        simulator.set_fault(name, FaultSpec(error_rate=1.0, error_status=503))
    served = h.send(20)
    assert h.failed == 0
    assert served["backup"] == 20
    assert h.breaker("main-1") is BreakerState.OPEN
    assert h.breaker("main-2") is BreakerState.OPEN


def test_whole_group_down_without_fallback_is_fast_503_with_retry_after(simulator, harness):
    h = harness(fallback_config(simulator, fallbacks=False))
    for name in ("main-1", "main-2"):
        simulator.set_fault(name, FaultSpec(error_rate=1.0, error_status=500))
    h.send(10)  # opens both breakers
    assert h.breaker("main-1") is BreakerState.OPEN
    assert h.breaker("main-2") is BreakerState.OPEN
    before = sum(s.requests for s in simulator.stats().values())
    h.clock.advance(20)
    response = httpx.post(
        f"http://127.0.0.1:{h.app.port}/v1/chat/completions",
        json={"model": "gpt-4-turbo", "messages": MESSAGES},
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_deployment_available"
    assert response.headers["retry-after"] == "40"  # the soonest half-open time
    assert sum(s.requests for s in simulator.stats().values()) == before  # no upstream call


def test_fallback_cycle_is_rejected_at_load(simulator):
    text = fallback_config(simulator, fallbacks=True) + "  llama-3.1-8b-instruct: [gpt-4-turbo]\n"
    with pytest.raises(Exception, match="fallback cycle"):
        parse_config(text)


def saturation_config(sim: Simulator, second: bool) -> str:
    text = (
        "routing:\n  num_retries: 0\n"
        "deployments:\n"
        f'  gpu: {{provider: vllm, model: m, api_base: "{sim.url("gpu")}", max_parallel_requests: 2, max_queue: 2, queue_timeout_s: 30}}\n'
        f'  spill: {{provider: vllm, model: m, api_base: "{sim.url("spill")}"}}\n'
        "weights:\n"
    )
    return text + ("  llama: {gpu: 1000, spill: 1}\n" if second else "  llama: {gpu: 1}\n")


def concurrent_posts(port: int, n: int) -> list[httpx.Response]:
    def post(_: int) -> httpx.Response:
        return httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "llama", "messages": MESSAGES},
            timeout=60,
        )

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(post, range(n)))


def test_saturated_deployment_queues_then_answers_429(simulator, harness):
    h = harness(saturation_config(simulator, second=False))
    simulator.set_fault("gpu", FaultSpec(latency_ms=400))
    responses = concurrent_posts(h.app.port, 8)
    statuses = collections.Counter(r.status_code for r in responses)
    # 2 in flight + 2 queued are served; the rest are refused at once, never left hanging.
    assert statuses[200] == 4
    assert statuses[429] == 4
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["type"] == "rate_limit_error"


def test_saturated_deployment_spills_to_another(simulator, harness):
    h = harness(saturation_config(simulator, second=True))
    simulator.set_fault("gpu", FaultSpec(latency_ms=400))
    responses = concurrent_posts(h.app.port, 8)
    assert all(r.status_code == 200 for r in responses)
    served = collections.Counter(r.headers["x-routeguard-deployment"] for r in responses)
    assert served["gpu"] >= 2
    assert served["spill"] >= 1
    assert max(h.app.runtimes["gpu"].limiter.in_flight for _ in range(1)) == 0


def special_fallback_config(sim: Simulator) -> str:
    return (
        "routing: {num_retries: 2, retry_backoff_s: 0}\n"
        "deployments:\n"
        f'  small: {{provider: vllm, model: llama-8k, api_base: "{sim.url("small")}"}}\n'
        f'  long: {{provider: openai, model: gpt-128k, api_base: "{sim.url("long")}"}}\n'
        f'  filtered: {{provider: azure, model: gpt, api_base: "{sim.url("filtered", "azure")}", api_key: az}}\n'
        f'  lenient: {{provider: openai, model: gpt, api_base: "{sim.url("lenient")}"}}\n'
        "weights:\n  short-context: {small: 1}\n  long-context: {long: 1}\n"
        "  strict: {filtered: 1}\n  relaxed: {lenient: 1}\n"
        "context_window_fallbacks:\n  short-context: [long-context]\n"
        "content_policy_fallbacks:\n  strict: [relaxed]\n"
    )


def test_context_window_error_goes_to_the_long_context_group(simulator, start_router):
    app = start_router(special_fallback_config(simulator))
    simulator.set_fault("small", FaultSpec(context_window_tokens=5))
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0)
    long_prompt = [{"role": "user", "content": "word " * 50}]
    raw = client.chat.completions.with_raw_response.create(
        model="short-context", messages=long_prompt
    )
    assert raw.headers["x-routeguard-deployment"] == "long"
    assert simulator.stats()["small"].requests == 1  # not retried: another try would fail alike
    # A short prompt stays where it belongs.
    raw = client.chat.completions.with_raw_response.create(
        model="short-context", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-routeguard-deployment"] == "small"
    # Without a context-window fallback the client hears the provider's error as it was.
    simulator.set_fault("long", FaultSpec(context_window_tokens=5))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="long-context", messages=long_prompt)
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"


def test_content_policy_refusal_goes_to_the_content_policy_fallback(simulator, start_router):
    app = start_router(special_fallback_config(simulator))
    simulator.set_fault("filtered", FaultSpec(content_filter="prompt"))
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="strict", messages=MESSAGES)
    assert raw.headers["x-routeguard-deployment"] == "lenient"
    assert raw.headers["x-routeguard-attempts"] == "2"
    assert app.runtimes["filtered"].breaker.snapshot().failures == 0  # a refusal is no outage


def test_silent_stream_is_cut_by_the_idle_timeout(simulator, harness):
    idle = f'provider: openai, model: m, api_base: "{simulator.url("dep-b")}", stream_idle_timeout_s: 0.3'
    h = harness(
        three_way(simulator, extra={"dep-b": idle}).replace(
            "{dep-a: 1, dep-b: 1, dep-c: 1}", "{dep-a: 0, dep-b: 1, dep-c: 0}"
        )
    )
    simulator.set_fault("dep-b", FaultSpec(chunk_delay_ms=5000))  # the first chunk, then silence
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{h.app.port}/v1/chat/completions",
        json={"model": "gpt-4-turbo", "messages": MESSAGES, "stream": True},
        timeout=60,
    ) as response:
        body = b"".join(response.iter_bytes())
    events = [e for e in body.split(b"\n\n") if e]
    assert len(events) >= 2
    assert events[-1].startswith(b'data: {"error"')
    assert b"upstream_timeout" in events[-1]
    assert h.app.runtimes["dep-b"].breaker.snapshot().failures == 1


def test_reload_lets_requests_in_flight_finish_on_their_config(
    simulator, start_router, loop_thread
):
    app = start_router(three_way(simulator))
    simulator.set_fault("*", FaultSpec(latency_ms=800))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            httpx.post,
            f"http://127.0.0.1:{app.port}/v1/chat/completions",
            json={"model": "gpt-4-turbo", "messages": MESSAGES},
            timeout=30,
        )
        deadline = time.monotonic() + 20
        while app.server.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        # The running request's deployment disappears from the new config.
        new = parse_config(three_way(simulator).replace("gpt-4-turbo:", "other-group:"))
        loop_thread.call(app.apply_config, new)
        response = pending.result()
    assert response.status_code == 200
    assert app.router.groups.keys() == {"other-group"}
