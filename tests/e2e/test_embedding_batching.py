"""Embedding micro-batching to a vLLM deployment, over real sockets with the openai SDK.

The simulator counts upstream calls per target and keeps the last body it received; its
vectors are a pure function of the text, so each client can check it got its own rows.
Batches here are flushed by size (``max_wait_ms`` is generous), which makes the number of
upstream calls exact rather than a matter of timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import openai
import pytest

from routeguard.config.loader import parse_config
from routeguard.errors import ConfigError
from routeguard.simulator import FaultSpec, Simulator
from routeguard.simulator.embeddings import embedding_vector

T = TypeVar("T")


def config(sim: Simulator, size: int, wait_ms: float) -> str:
    return (
        "routing: {num_retries: 0, timeout_s: 10}\n"
        "deployments:\n"
        f'  emb: {{provider: vllm, model: bge-m3, api_base: "{sim.url("emb", "vllm")}", '
        f"batching: {{max_batch_size: {size}, max_wait_ms: {wait_ms}}}}}\n"
        "weights:\n"
        "  embed: {emb: 1}\n"
    )


def _client(port: int, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=timeout
    )


def _together(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run the calls at once from as many threads; results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | BaseException:
        barrier.wait()
        try:
            return call()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _embed(client: openai.OpenAI, inputs: Any) -> Callable[[], Any]:
    return lambda: client.embeddings.create(model="embed", input=inputs, encoding_format="float")


def test_concurrent_requests_share_one_upstream_call(simulator: Simulator, start_router: Any):
    app = start_router(config(simulator, size=8, wait_ms=5000))
    texts = [[f"text number {i}"] if i % 2 else f"text number {i}" for i in range(6)]
    texts.append(["two inputs a", "two inputs b"])  # 8 inputs in all
    with _client(app.port) as client:
        results = _together([_embed(client, t) for t in texts])
    assert simulator.stats()["emb"].requests == 1
    assert len(simulator.stats()["emb"].last_body["input"]) == 8
    prompt_total = 0
    for given, result in zip(texts, results, strict=True):
        assert not isinstance(result, BaseException), result
        mine = [given] if isinstance(given, str) else given
        assert [row.index for row in result.data] == list(range(len(mine)))
        for text, row in zip(mine, result.data, strict=True):
            assert row.embedding == pytest.approx(list(embedding_vector(text, 1536)))
        prompt_total += result.usage.prompt_tokens
    assert prompt_total == sum(
        len(t.split()) for g in texts for t in ([g] if isinstance(g, str) else g)
    )


def test_a_bad_input_fails_only_its_own_request(simulator: Simulator, start_router: Any):
    app = start_router(config(simulator, size=4, wait_ms=5000))
    with _client(app.port) as client:
        results = _together([_embed(client, t) for t in ("good a", "good b", "", "good c")])
    assert isinstance(results[2], openai.BadRequestError)
    for index in (0, 1, 3):
        result = results[index]
        assert not isinstance(result, BaseException), result
        assert len(result.data) == 1
    # One batch refused, then each request alone to find the culprit.
    assert simulator.stats()["emb"].requests == 5


def test_an_outage_fails_every_request_of_the_batch(simulator: Simulator, start_router: Any):
    simulator.set_fault("emb", FaultSpec(error_rate=1.0, error_status=503))
    app = start_router(config(simulator, size=3, wait_ms=5000))
    with _client(app.port) as client:
        results = _together([_embed(client, t) for t in ("a", "b", "c")])
    assert all(isinstance(r, openai.APIStatusError) for r in results)
    assert simulator.stats()["emb"].requests == 1


def test_a_client_leaving_a_waiting_batch_is_left_out(simulator: Simulator, start_router: Any):
    app = start_router(config(simulator, size=3, wait_ms=5000))
    with _client(app.port, timeout=0.3) as impatient, _client(app.port) as client:
        with pytest.raises(openai.APITimeoutError):
            impatient.embeddings.create(model="embed", input="leaving", encoding_format="float")
        _wait_for_client_closed(app.port)
        results = _together([_embed(client, t) for t in ("stay a", "stay b", "stay c")])
    assert all(not isinstance(r, BaseException) for r in results), results
    assert simulator.stats()["emb"].requests == 1
    assert sorted(simulator.stats()["emb"].last_body["input"]) == ["stay a", "stay b", "stay c"]


def _wait_for_client_closed(port: int) -> None:
    """Until RouteGuard has noticed the client left (and counted its request as 499)."""
    series = 'router_api_requests_total{api="embeddings",status="499"} 1.0'
    deadline = time.monotonic() + 10
    while series not in httpx.get(f"http://127.0.0.1:{port}/metrics").text:
        assert time.monotonic() < deadline, "the router never saw the client leave"
        time.sleep(0.02)


def test_a_client_leaving_a_batch_in_flight_does_not_fail_the_others(
    simulator: Simulator, start_router: Any
):
    simulator.set_fault("emb", FaultSpec(latency_ms=800))
    app = start_router(config(simulator, size=3, wait_ms=5000))
    with _client(app.port, timeout=0.3) as impatient, _client(app.port) as client:
        results = _together(
            [_embed(impatient, "leaving"), _embed(client, "stay a"), _embed(client, "stay b")]
        )
    assert isinstance(results[0], openai.APITimeoutError)
    for result in results[1:]:
        assert not isinstance(result, BaseException), result
        assert len(result.data) == 1
    assert simulator.stats()["emb"].requests == 1


def test_different_parameters_are_never_merged(simulator: Simulator, start_router: Any):
    app = start_router(config(simulator, size=2, wait_ms=300))
    with _client(app.port) as client:
        small = lambda: client.embeddings.create(  # noqa: E731
            model="embed", input="x", dimensions=8, encoding_format="float"
        )
        results = _together([small, _embed(client, "y")])
    assert len(results[0].data[0].embedding) == 8  # type: ignore[union-attr]
    assert len(results[1].data[0].embedding) == 1536  # type: ignore[union-attr]
    assert simulator.stats()["emb"].requests == 2


def test_batching_is_only_for_vllm_deployments():
    yaml = (
        "deployments:\n"
        "  oa: {provider: openai, model: m, batching: {max_batch_size: 4, max_wait_ms: 5}}\n"
        "weights:\n  g: {oa: 1}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml, "router.yaml")
    assert caught.value.key == "deployments.oa.batching"
    assert "vllm" in caught.value.reason
