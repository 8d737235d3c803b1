"""Anthropic Messages in front of any provider: the official ``anthropic`` SDK as the client.

Three groups: one backed by Anthropic (native passthrough), one by OpenAI (translated to chat
completions and back), and a mixed one whose preferred deployment fails, so every request
fails over to the other provider; the client must not be able to tell which happened.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from routeguard.simulator import FaultSpec, Simulator

GROUPS = ["claude", "gpt", "mixed"]
SERVED_BY = {"claude": "claude-a", "gpt": "gpt-a", "mixed": "gpt-b"}
ALL = pytest.mark.parametrize("group", GROUPS)

WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


def config(sim: Simulator) -> str:
    return (
        "routing: {num_retries: 2, retry_backoff_s: 0, timeout_s: 10}\n"
        "deployments:\n"
        f'  claude-a: {{provider: anthropic, model: claude-sonnet-4-5, api_base: "{sim.url("claude-a", "anthropic")}", api_key: sk-ant}}\n'
        f'  claude-broken: {{provider: anthropic, model: claude-sonnet-4-5, api_base: "{sim.url("claude-broken", "anthropic")}", api_key: sk-ant}}\n'
        f'  gpt-a: {{provider: openai, model: gpt-4o, api_base: "{sim.url("gpt-a")}", api_key: sk-oa}}\n'
        f'  gpt-b: {{provider: vllm, model: llama-3, api_base: "{sim.url("gpt-b", "vllm")}"}}\n'
        "weights:\n"
        "  claude: {claude-a: 1}\n"
        "  gpt: {gpt-a: 1}\n"
        "  mixed: {claude-broken: 1000, gpt-b: 1}\n"
        "  tight: {claude-a: 1}\n"
    )


@pytest.fixture
def router(simulator: Simulator, start_router: Any) -> Any:
    simulator.set_fault("claude-broken", FaultSpec(error_rate=1.0, error_status=529))
    return start_router(config(simulator), seed=5)


@pytest.fixture
def client(router: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{router.port}",
        api_key="client-key",
        max_retries=0,
        _strict_response_validation=True,
    ) as c:
        yield c


@ALL
def test_create_text(client: anthropic.Anthropic, group: str) -> None:
    raw = client.messages.with_raw_response.create(
        model=group,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello from the anthropic sdk"}],
    )
    assert raw.headers["x-routeguard-deployment"] == SERVED_BY[group]
    message = raw.parse()
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert "anthropic" in message.content[0].text
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


@ALL
def test_create_tool_use_and_tool_result_round_trip(
    client: anthropic.Anthropic, group: str
) -> None:
    question = {"role": "user", "content": "weather in Paris?"}
    first = client.messages.create(
        model=group, max_tokens=128, tools=[WEATHER], messages=[question]
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather"
    assert isinstance(call.input, dict)
    assert "city" in call.input
    second = client.messages.create(
        model=group,
        max_tokens=128,
        tools=[WEATHER],
        messages=[
            question,
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "sunny 21C"}
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert "sunny" in second.content[0].text


@ALL
def test_stream_text_assembles_the_final_message(client: anthropic.Anthropic, group: str) -> None:
    with client.messages.stream(
        model=group, max_tokens=64, messages=[{"role": "user", "content": "stream me please"}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == final.content[0].text
    assert "stream" in final.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(texts)
    assert final.usage.input_tokens > 0


@ALL
def test_stream_tool_use_assembles_the_input(client: anthropic.Anthropic, group: str) -> None:
    with client.messages.stream(
        model=group,
        max_tokens=128,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather in Oslo?"}],
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.name == "get_weather"
    assert set(call.input) >= {"city"}
    assert "input_json" in events
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"


def test_raw_event_sequence_of_a_translated_stream(router: Any) -> None:
    body = {
        "model": "gpt",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "one two three"}],
    }
    url = f"http://127.0.0.1:{router.port}/v1/messages"
    with httpx.stream("POST", url, json=body, headers={"anthropic-version": "2023-06-01"}) as r:
        text = "".join(r.iter_text())
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}


def test_count_tokens(simulator: Simulator, start_router: Any) -> None:
    app = start_router(config(simulator) + "  prefer-gpt: {gpt-a: 1000, claude-a: 1}\n")
    messages: Any = [{"role": "user", "content": "count these few words please"}]
    with anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{app.port}", api_key="k", max_retries=0
    ) as c:
        native = c.messages.count_tokens(model="claude", messages=messages)
        # Only Anthropic deployments count: the OpenAI one is skipped, never called.
        raw = c.messages.with_raw_response.count_tokens(model="prefer-gpt", messages=messages)
        estimate = c.messages.count_tokens(model="gpt", messages=messages)
    assert native.input_tokens > 0
    assert raw.headers["x-routeguard-deployment"] == "claude-a"
    assert raw.parse().input_tokens == native.input_tokens
    assert estimate.input_tokens > 0  # no Anthropic deployment: a local estimate
    assert simulator.stats().get("gpt-a") is None


def test_passthrough_keeps_unknown_fields(
    client: anthropic.Anthropic, simulator: Simulator
) -> None:
    # Fields RouteGuard has never heard of reach the Anthropic deployment untouched; only the
    # model name is the deployment's.
    extra = {"definitely_not_a_field": {"nested": [1, 2.5, None]}, "top_k": 7}
    client.messages.create(
        model="claude",
        max_tokens=16,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        extra_body=extra,
    )
    sent = simulator.stats()["claude-a"].last_body
    assert sent["definitely_not_a_field"] == extra["definitely_not_a_field"]
    assert sent["top_k"] == 7
    assert sent["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["model"] == "claude-sonnet-4-5"


def test_errors_have_anthropic_shape_and_classes(
    client: anthropic.Anthropic, simulator: Simulator
) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(
            model="nope", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model="gpt", max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    simulator.set_fault("claude-a", FaultSpec(error_rate=1.0, error_status=529))
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(
            model="tight", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    simulator.set_fault("claude-a", FaultSpec(error_rate=1.0, error_status=429, retry_after_s=3))
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(
            model="tight", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert limited.value.response.headers["retry-after"] == "3"


def test_open_breakers_answer_529_overloaded(simulator: Simulator, start_router: Any) -> None:
    simulator.set_fault("claude-a", FaultSpec(error_rate=1.0, error_status=500))
    yaml = config(simulator).replace(
        "routing: {", "routing: {circuit_breaker_min_requests: 1, circuit_breaker_error_rate: 0.5, "
    )
    app = start_router(yaml)
    with anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{app.port}", api_key="k", max_retries=0
    ) as c:
        with pytest.raises(anthropic.APIStatusError):
            c.messages.create(
                model="tight", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(anthropic.APIStatusError) as caught:
            c.messages.create(
                model="tight", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert "retry-after" in caught.value.response.headers


def _drain(client: anthropic.Anthropic, group: str) -> None:
    with client.messages.stream(
        model=group, max_tokens=64, messages=[{"role": "user", "content": "a b c d e f g"}]
    ) as stream:
        for _ in stream:
            pass


@pytest.mark.parametrize("group", ["claude", "gpt"])
def test_mid_stream_failure_is_an_anthropic_error_event(
    client: anthropic.Anthropic, simulator: Simulator, group: str
) -> None:
    target = SERVED_BY[group]
    simulator.set_fault(target, FaultSpec(stream_error_after_chunks=3))
    with pytest.raises(anthropic.APIStatusError) as caught:
        _drain(client, group)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] in ("overloaded_error", "api_error")


def test_metrics_and_access_lines_carry_the_api(
    client: anthropic.Anthropic, router: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="routeguard.requests")
    client.messages.create(model="gpt", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    metrics = httpx.get(f"http://127.0.0.1:{router.port}/metrics").text
    series = 'router_api_requests_total{api="messages",status="200"}'
    line = next(x for x in metrics.splitlines() if x.startswith(series))
    assert float(line.split()[-1]) == 1
    apis = [getattr(r, "api", None) for r in caplog.records if r.name == "routeguard.requests"]
    assert "messages" in apis


def test_invalid_json_is_an_anthropic_400(router: Any) -> None:
    r = httpx.post(f"http://127.0.0.1:{router.port}/v1/messages", content=b"{nope")
    assert r.status_code == 400
    assert orjson.loads(r.content)["error"]["type"] == "invalid_request_error"


def test_in_band_error_before_content_fails_over(simulator: Simulator, start_router: Any) -> None:
    # An Anthropic stream that reports overloaded_error right after message_start has shown the
    # client nothing yet: the router tries the next deployment, which here speaks OpenAI.
    yaml = config(simulator) + "  switch: {claude-a: 1000, gpt-a: 1}\n"
    simulator.set_fault("claude-a", FaultSpec(stream_error_after_chunks=0))
    app = start_router(yaml, seed=5)
    url = f"http://127.0.0.1:{app.port}"
    with (
        anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as c,
        c.messages.stream(
            model="switch", max_tokens=32, messages=[{"role": "user", "content": "fail over"}]
        ) as stream,
    ):
        text = "".join(stream.text_stream)
        served_by = stream.response.headers["x-routeguard-deployment"]
    assert "fail" in text
    assert served_by == "gpt-a"


def test_blocks_only_anthropic_understands_go_to_an_anthropic_deployment(
    simulator: Simulator, start_router: Any
) -> None:
    yaml = config(simulator) + "  prefer-gpt: {gpt-a: 1000, claude-a: 1}\n"
    app = start_router(yaml, seed=5)
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "a short document"},
    }
    with anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{app.port}", api_key="k", max_retries=0
    ) as c:
        raw = c.messages.with_raw_response.create(
            model="prefer-gpt",
            max_tokens=32,
            messages=[{"role": "user", "content": [document, {"type": "text", "text": "sum up"}]}],
        )
        with pytest.raises(anthropic.BadRequestError) as caught:
            c.messages.create(
                model="gpt",
                max_tokens=32,
                messages=[{"role": "user", "content": [document]}],
            )
    assert raw.headers["x-routeguard-deployment"] == "claude-a"
    assert "document" in caught.value.message
    assert simulator.stats().get("gpt-a") is None  # nothing was sent to the OpenAI deployment


def test_anthropic_base_url_environment(router: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the README tells users of tools configured by environment: the router's root URL.
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{router.port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "unused")
    with anthropic.Anthropic(max_retries=0) as c:
        message = c.messages.create(
            model="gpt", max_tokens=16, messages=[{"role": "user", "content": "via env"}]
        )
    assert "env" in message.content[0].text  # type: ignore[union-attr]


def _post_messages(port: int, model: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    return httpx.post(f"http://127.0.0.1:{port}/v1/messages", json=body, timeout=30)


def test_routeguards_own_limits_in_anthropic_shape(simulator: Simulator, start_router: Any) -> None:
    # The process-wide in-flight cap (a 503 for OpenAI clients) is Anthropic's 529; a group at
    # capacity (every slot taken, no queue) is a 429 rate_limit_error.
    yaml = (
        config(simulator)
        .replace("routing: {", "routing: {max_in_flight: 2, ")
        .replace("api_key: sk-oa}", "api_key: sk-oa, max_parallel_requests: 1, max_queue: 0}")
    )
    simulator.set_fault("*", FaultSpec(latency_ms=500))
    app = start_router(yaml)
    with ThreadPoolExecutor(6) as pool:
        capped = list(pool.map(lambda _: _post_messages(app.port, "claude"), range(6)))
    overloaded = next(r for r in capped if r.status_code == 529)
    assert overloaded.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": overloaded.json()["error"]["message"]},
    }
    assert overloaded.headers["retry-after"] == "1"
    with ThreadPoolExecutor(2) as pool:
        busy = list(pool.map(lambda _: _post_messages(app.port, "gpt"), range(2)))
    assert sorted(r.status_code for r in busy) == [200, 429]
    limited = next(r for r in busy if r.status_code == 429)
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert "retry-after" in limited.headers
