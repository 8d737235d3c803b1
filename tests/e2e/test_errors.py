"""Every error a client can meet, over real sockets: OpenAI-shaped, with the right status."""

from __future__ import annotations

import re
import socket
import time

import httpx
import openai
import pytest
from processes import free_port

from routeguard.simulator import FaultSpec, Simulator

MESSAGES = [{"role": "user", "content": "Hello router"}]


def config(
    sim: Simulator, *, api_base: str | None = None, routing: str = "", server: str = ""
) -> str:
    base = api_base or sim.url("sim-a")
    return (
        f"server:\n  host: 127.0.0.1\n{server}"
        f"routing:\n  timeout_s: 5\n{routing}"
        f'deployments:\n  sim-a: {{provider: openai, model: m, api_base: "{base}", api_key: sk-secret-upstream-key}}\n'
        "weights:\n  gpt-4-turbo: {sim-a: 1}\n"
    )


def url(app) -> str:
    return f"http://127.0.0.1:{app.port}/v1/chat/completions"


def client_for(app, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0, **kwargs
    )


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b"", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "gpt-4-turbo"}', "messages"),
        (b'{"model": "gpt-4-turbo", "messages": []}', "messages"),
        (b'{"model": "gpt-4-turbo", "messages": ["hi"]}', "messages[0]"),
        (b'{"model": "gpt-4-turbo", "messages": [{"role": "user"}], "stream": "yes"}', "stream"),
    ],
)
def test_malformed_requests_get_400(simulator, start_router, body, param):
    app = start_router(config(simulator))
    error = assert_openai_error(httpx.post(url(app), content=body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert simulator.stats().get("sim-a") is None or simulator.stats()["sim-a"].requests == 0


def test_unknown_model_is_404_not_found_error(simulator, start_router):
    app = start_router(config(simulator))
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(app).chat.completions.create(model="no-such-group", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


def test_body_over_limit_is_413(simulator, start_router):
    app = start_router(config(simulator, server="  max_body_bytes: 2048\n"))
    big = "x" * 4096
    response = httpx.post(
        url(app), json={"model": "gpt-4-turbo", "messages": [{"role": "user", "content": big}]}
    )
    error = assert_openai_error(response, 413)
    assert error["code"] == "request_too_large"
    # The router still serves after refusing.
    assert (
        httpx.post(url(app), json={"model": "gpt-4-turbo", "messages": MESSAGES}).status_code == 200
    )


def test_unreachable_upstream_is_502(simulator, start_router):
    app = start_router(config(simulator, api_base=f"http://127.0.0.1:{free_port()}/v1"))
    response = httpx.post(url(app), json={"model": "gpt-4-turbo", "messages": MESSAGES})
    error = assert_openai_error(response, 502)
    assert error["code"] == "upstream_unreachable"
    assert response.headers["x-routeguard-deployment"] == "sim-a"
    assert "sk-secret-upstream-key" not in response.text


def test_hanging_upstream_is_504(simulator, start_router):
    app = start_router(config(simulator).replace("timeout_s: 5", "timeout_s: 0.3"))
    simulator.set_fault("sim-a", FaultSpec(hang=True))
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(app).chat.completions.create(model="gpt-4-turbo", messages=MESSAGES)
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"


def test_upstream_client_error_passes_through(simulator, start_router):
    app = start_router(config(simulator))
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(app).chat.completions.create(
            model="gpt-4-turbo", messages=MESSAGES, temperature=7
        )
    assert caught.value.param == "temperature"
    assert "temperature" in caught.value.message


@pytest.mark.parametrize(("status", "expected"), [(500, 502), (503, 502), (429, 429), (401, 401)])
def test_upstream_error_statuses(simulator, start_router, status, expected):
    app = start_router(config(simulator))
    simulator.set_fault("sim-a", FaultSpec(error_rate=1.0, error_status=status, retry_after_s=7))
    response = httpx.post(url(app), json={"model": "gpt-4-turbo", "messages": MESSAGES})
    assert_openai_error(response, expected)
    if status == 429:
        assert response.headers["retry-after"] == "7"
    assert "sk-secret-upstream-key" not in response.text


def test_malformed_upstream_body_is_502(simulator, start_router):
    app = start_router(config(simulator))
    simulator.set_fault("sim-a", FaultSpec(malformed_rate=1.0))
    error = assert_openai_error(
        httpx.post(url(app), json={"model": "gpt-4-turbo", "messages": MESSAGES}), 502
    )
    assert error["code"] == "upstream_bad_response"


def test_upstream_reset_is_502(simulator, start_router):
    app = start_router(config(simulator))
    simulator.set_fault("sim-a", FaultSpec(reset=True))
    assert_openai_error(
        httpx.post(url(app), json={"model": "gpt-4-turbo", "messages": MESSAGES}), 502
    )


def test_stream_cut_midway_ends_with_error_event(simulator, start_router):
    app = start_router(config(simulator))
    simulator.set_fault("sim-a", FaultSpec(disconnect_after_chunks=2))
    stream = client_for(app).chat.completions.create(
        model="gpt-4-turbo", messages=MESSAGES, stream=True
    )
    received = []

    def consume() -> None:
        for chunk in stream:
            received.append(chunk)

    with pytest.raises(openai.APIError):
        consume()
    assert len(received) >= 1  # some content arrived before the failure was reported


def test_stream_refused_before_first_byte_is_a_plain_error(simulator, start_router):
    app = start_router(config(simulator))
    simulator.set_fault("sim-a", FaultSpec(error_rate=1.0, error_status=503))
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(app).chat.completions.create(model="gpt-4-turbo", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 502


def test_client_disconnect_mid_stream_cancels_upstream(simulator, start_router):
    app = start_router(config(simulator, routing="").replace("timeout_s: 5", "timeout_s: 120"))
    # A stream that would take minutes: one chunk per second.
    simulator.set_fault("sim-a", FaultSpec(chunk_delay_ms=1000))
    body = {
        "model": "gpt-4-turbo",
        "stream": True,
        "max_tokens": 500,
        "messages": [{"role": "user", "content": "word " * 200}],
    }
    with httpx.stream("POST", url(app), json=body) as response:
        assert response.status_code == 200
        next(response.iter_raw())
    # The client is gone; the router must drop the upstream request rather than finish it.
    deadline = time.monotonic() + 30
    while app.server.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.server.in_flight == 0
    stats = simulator.stats()["sim-a"]
    assert stats.requests == 1
    metrics = httpx.get(f"http://127.0.0.1:{app.port}/metrics").text
    assert 'router_client_requests_total{model_group="gpt-4-turbo",status="499"} 1.0' in metrics


def test_unknown_path_and_method(simulator, start_router):
    app = start_router(config(simulator))
    assert_openai_error(httpx.get(f"http://127.0.0.1:{app.port}/v2/nothing"), 404)
    response = httpx.get(url(app))
    assert_openai_error(response, 405)
    assert response.headers["allow"] == "POST"


def test_keep_alive_and_pipelining_answer_in_order(simulator, start_router):
    app = start_router(config(simulator))
    request = (
        b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n{bad}"
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"400", b"200"]


def test_expect_100_continue_is_answered(simulator, start_router):
    app = start_router(config(simulator))
    body = (
        b'{"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "'
        + b"x" * 2000
        + b'"}]}'
    )
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"expect: 100-continue\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(head)
        interim = sock.recv(65536)  # the router must invite the body before it is sent
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        data = interim
        while chunk := sock.recv(65536):
            data += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", data) == [b"100", b"200"]


def test_a_pipelining_flood_is_answered_in_full_and_in_order(simulator, start_router):
    app = start_router(config(simulator))
    count = 200
    flood = b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n" * (count - 1)
    flood += b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", app.port), timeout=20) as sock:
        sock.sendall(flood)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", data) == [b"200"] * count
    assert data.count(b'"object":"list"') == count - 1
