"""Fault injection, observed the way a client observes it: through the official SDKs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from routeguard.simulator import FaultSpec, Simulator

MESSAGES = [{"role": "user", "content": "ping the upstream"}]


def _chat(client: openai.OpenAI, **kwargs: object) -> object:
    return client.chat.completions.create(model="m", messages=MESSAGES, **kwargs)


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (500, openai.InternalServerError, "server_error"),
        (502, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
        (529, openai.InternalServerError, "server_error"),
        (429, openai.RateLimitError, "requests"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (403, openai.PermissionDeniedError, "request_forbidden"),
    ],
)
def test_error_rate_one_always_fails_with_status(sim, clients, status, exception, error_type):
    target = f"f-err-{status}"
    sim.set_fault(target, FaultSpec(error_rate=1.0, error_status=status))
    client = clients.openai(target)
    for _ in range(3):
        with pytest.raises(exception) as caught:
            _chat(client)
        assert caught.value.status_code == status
        assert caught.value.body["type"] == error_type
    stats = sim.stats()[target]
    assert stats.by_status == {status: 3}
    assert stats.errors_injected == 3


def test_429_sends_retry_after(sim, clients):
    sim.set_fault("f-429", FaultSpec(error_rate=1.0, error_status=429, retry_after_s=2))
    with pytest.raises(openai.RateLimitError) as caught:
        _chat(clients.openai("f-429"))
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "2000"


def test_error_rate_is_seeded_and_partial(loop_thread):
    def outcomes(seed: int) -> list[int]:
        simulator = Simulator(seed=seed)
        loop_thread.run(simulator.start())
        try:
            simulator.set_fault("*", FaultSpec(error_rate=0.5))
            url = f"{simulator.url('f-seed')}/chat/completions"
            with httpx.Client() as client:
                return [
                    client.post(url, json={"model": "m", "messages": MESSAGES}).status_code
                    for _ in range(40)
                ]
        finally:
            loop_thread.run(simulator.stop())

    first, second = outcomes(7), outcomes(7)
    assert first == second
    assert set(first) == {200, 500}


def test_latency_delays_the_answer(sim, clients):
    sim.set_fault("f-slow", FaultSpec(latency_ms=200, jitter_ms=50))
    started = time.perf_counter()
    _chat(clients.openai("f-slow"))
    assert time.perf_counter() - started >= 0.2


def test_chunk_delay_paces_the_stream(sim, clients):
    sim.set_fault("f-pace", FaultSpec(chunk_delay_ms=20))
    started = time.perf_counter()
    chunks = list(_chat(clients.openai("f-pace"), stream=True))
    assert time.perf_counter() - started >= 0.02 * (len(chunks) - 1)


def test_hang_makes_the_client_time_out(sim, clients):
    sim.set_fault("f-hang", FaultSpec(hang=True))
    with pytest.raises(openai.APITimeoutError):
        _chat(clients.openai("f-hang", timeout=0.3))
    assert sim.stats()["f-hang"].hangs == 1


def test_reset_drops_the_connection_without_a_response(sim, clients):
    sim.set_fault("f-reset", FaultSpec(reset=True))
    with pytest.raises(openai.APIConnectionError):
        _chat(clients.openai("f-reset"))
    stats = sim.stats()["f-reset"]
    assert stats.resets == 1
    assert stats.by_status == {}


def test_disconnect_after_chunks_breaks_the_stream(sim, clients):
    sim.set_fault("f-cut", FaultSpec(disconnect_after_chunks=3))
    received = []
    with pytest.raises(openai.APIConnectionError):  # noqa: PT012 - the chunks before the cut matter
        for chunk in _chat(clients.openai("f-cut"), stream=True):
            received.append(chunk)
    assert len(received) == 3
    assert sim.stats()["f-cut"].disconnects == 1


def test_malformed_body_is_not_json(sim, clients):
    sim.set_fault("f-bad", FaultSpec(malformed_rate=1.0))
    response = httpx.post(
        f"{sim.url('f-bad')}/chat/completions", json={"model": "m", "messages": MESSAGES}
    )
    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"."):
        response.json()
    # The SDK surfaces an unparsable 200 as the JSON decoder's own error.
    with pytest.raises(ValueError, match=r"."):
        _chat(clients.openai("f-bad"))
    assert sim.stats()["f-bad"].malformed == 2


def test_malformed_stream_event(sim, clients):
    sim.set_fault("f-bad-stream", FaultSpec(malformed_rate=1.0))
    with pytest.raises(ValueError, match=r"."):
        list(_chat(clients.openai("f-bad-stream"), stream=True))


def test_openai_in_band_stream_error(sim, clients):
    sim.set_fault("f-inband", FaultSpec(stream_error_after_chunks=2))
    received = []
    with pytest.raises(openai.APIError) as caught:  # noqa: PT012 - the chunks before the error matter
        for chunk in _chat(clients.openai("f-inband"), stream=True):
            received.append(chunk)
    assert "server had an error" in caught.value.message
    assert len(received) == 3


def test_star_applies_to_all_targets_and_own_spec_wins(sim, clients):
    sim.set_fault("*", FaultSpec(error_rate=1.0, error_status=503))
    sim.set_fault("f-own", FaultSpec(latency_ms=1))
    with pytest.raises(openai.InternalServerError):
        _chat(clients.openai("f-any-target"))
    _chat(clients.openai("f-own"))
    sim.clear_faults("*")
    _chat(clients.openai("f-any-target"))


def test_clear_faults_restores_service(sim, clients):
    sim.set_fault("f-clear", FaultSpec(error_rate=1.0))
    client = clients.openai("f-clear")
    with pytest.raises(openai.InternalServerError):
        _chat(client)
    sim.clear_faults("f-clear")
    _chat(client)


def test_stop_releases_hung_requests(loop_thread):
    simulator = Simulator()
    loop_thread.run(simulator.start())
    simulator.set_fault("*", FaultSpec(hang=True))
    url = f"{simulator.url('f-stop')}/chat/completions"
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, url, json={"model": "m", "messages": MESSAGES})
        while not simulator.stats().get("f-stop"):
            time.sleep(0.01)
        loop_thread.run(simulator.stop())
        with pytest.raises(httpx.TransportError):
            pending.result(timeout=10)
