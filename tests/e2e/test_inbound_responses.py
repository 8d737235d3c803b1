"""OpenAI Responses and legacy Completions in front of any provider, the ``openai`` SDK as client.

``gpt`` is an OpenAI deployment (native passthrough of both APIs), ``claude`` an Anthropic one
(Responses translated through chat completions; Completions refused), ``mixed`` prefers an
Anthropic deployment that always fails and fails over to a vLLM one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from routeguard.simulator import FaultSpec, Simulator

GROUPS = ["claude", "gpt", "mixed"]
SERVED_BY = {"claude": "claude-a", "gpt": "gpt-a", "mixed": "vllm-b"}
ALL = pytest.mark.parametrize("group", GROUPS)

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def config(sim: Simulator) -> str:
    return (
        "routing: {num_retries: 2, retry_backoff_s: 0, timeout_s: 10}\n"
        "deployments:\n"
        f'  claude-a: {{provider: anthropic, model: claude-sonnet-4-5, api_base: "{sim.url("claude-a", "anthropic")}", api_key: sk-ant}}\n'
        f'  claude-broken: {{provider: anthropic, model: claude-sonnet-4-5, api_base: "{sim.url("claude-broken", "anthropic")}", api_key: sk-ant}}\n'
        f'  gpt-a: {{provider: openai, model: gpt-4o, api_base: "{sim.url("gpt-a")}", api_key: sk-oa}}\n'
        f'  vllm-b: {{provider: vllm, model: llama-3, api_base: "{sim.url("vllm-b", "vllm")}"}}\n'
        "weights:\n"
        "  claude: {claude-a: 1}\n"
        "  gpt: {gpt-a: 1}\n"
        "  mixed: {claude-broken: 1000, vllm-b: 1}\n"
    )


@pytest.fixture
def router(simulator: Simulator, start_router: Any) -> Any:
    simulator.set_fault("claude-broken", FaultSpec(error_rate=1.0, error_status=529))
    return start_router(config(simulator), seed=5)


@pytest.fixture
def client(router: Any) -> Iterator[openai.OpenAI]:
    # Strict: any field the translation gets wrong against the SDK's models fails the test.
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{router.port}/v1",
        api_key="client-key",
        max_retries=0,
        _strict_response_validation=True,
    ) as c:
        yield c


@pytest.fixture
def lenient(router: Any) -> Iterator[openai.OpenAI]:
    """Completions streams carry ``finish_reason: null`` until the last chunk, as OpenAI's do,
    which the SDK's (strict) Completion model does not allow."""
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{router.port}/v1", api_key="client-key", max_retries=0
    ) as c:
        yield c


@ALL
def test_responses_create_text(client: openai.OpenAI, group: str) -> None:
    raw = client.responses.with_raw_response.create(
        model=group, instructions="Be brief.", input="hello from the responses api"
    )
    assert raw.headers["x-routeguard-deployment"] == SERVED_BY[group]
    response = raw.parse()
    assert response.status == "completed"
    assert "responses" in response.output_text
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0


@ALL
def test_responses_function_call_round_trip(client: openai.OpenAI, group: str) -> None:
    first = client.responses.create(model=group, input="weather in Rome?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather"
    assert "city" in call.arguments
    second = client.responses.create(
        model=group,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Rome?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "rainy 12C"},
        ],
    )
    assert "rainy" in second.output_text


@ALL
def test_responses_stream_every_event_parses(client: openai.OpenAI, group: str) -> None:
    stream = client.responses.create(model=group, input="stream these words", stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == text
    assert "stream" in text
    assert final.usage is not None
    assert final.usage.output_tokens > 0


@ALL
def test_responses_stream_function_call(client: openai.OpenAI, group: str) -> None:
    stream = client.responses.create(
        model=group, input="weather in Lima?", tools=[WEATHER], stream=True
    )
    events = list(stream)
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == deltas
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output[0].type == "function_call"
    assert final.output[0].arguments == deltas


@ALL
def test_responses_stream_helper_assembles(client: openai.OpenAI, group: str) -> None:
    with client.responses.stream(model=group, input="helper assembled", tools=[WEATHER]) as s:
        for _ in s:
            pass
        final = s.get_final_response()
    call = final.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather"


def test_previous_response_id_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt", input="x", previous_response_id="resp_123")
    assert caught.value.param == "previous_response_id"
    assert "stateless" in caught.value.message


def test_responses_mid_stream_failure_raises(client: openai.OpenAI, simulator: Simulator) -> None:
    simulator.set_fault("claude-a", FaultSpec(stream_error_after_chunks=2))
    with pytest.raises(openai.APIError):
        _drain(client, "claude")


def _drain(client: openai.OpenAI, group: str) -> None:
    for _ in client.responses.create(model=group, input="a b c d e f g h", stream=True):
        pass


@pytest.mark.parametrize("group", ["gpt", "mixed"])
def test_completions(client: openai.OpenAI, group: str, simulator: Simulator) -> None:
    raw = client.completions.with_raw_response.create(
        model=group, prompt=["one two three", "four five"], max_tokens=5, n=2, logprobs=1
    )
    assert raw.headers["x-routeguard-deployment"] == SERVED_BY[group]
    result = raw.parse()
    assert len(result.choices) == 4
    assert result.choices[0].logprobs is not None
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None
    assert result.usage.completion_tokens == 20
    sent = simulator.stats()[SERVED_BY[group]].last_body
    assert sent["logprobs"] == 1
    assert sent["n"] == 2


@pytest.mark.parametrize("group", ["gpt", "mixed"])
def test_completions_stream(lenient: openai.OpenAI, group: str) -> None:
    chunks = list(
        lenient.completions.create(
            model=group,
            prompt="alpha beta gamma",
            max_tokens=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "alpha beta gamma"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_completions_on_an_anthropic_group_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="claude", prompt="x", max_tokens=3)
    assert "completions" in caught.value.message


def test_bad_prompt_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gpt", prompt=[{"not": "a prompt"}], max_tokens=3)  # type: ignore[list-item]
    assert caught.value.param == "prompt"


def test_api_label(client: openai.OpenAI, router: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="routeguard.requests")
    client.responses.create(model="gpt", input="x")
    client.completions.create(model="gpt", prompt="x", max_tokens=2)
    client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "x"}])
    metrics = httpx.get(f"http://127.0.0.1:{router.port}/metrics").text
    for api in ("responses", "completions", "chat"):
        series = f'router_api_requests_total{{api="{api}",status="200"}} 1.0'
        assert series in metrics
    apis = [getattr(r, "api", None) for r in caplog.records if r.name == "routeguard.requests"]
    assert apis == ["responses", "completions", "chat"]
