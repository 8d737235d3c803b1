"""Azure OpenAI and Anthropic deployments behind the OpenAI API, end to end.

The official ``openai`` SDK talks to RouteGuard, which talks to the simulator's Azure and
Anthropic targets over real sockets; whatever served it, the client gets OpenAI's format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from routeguard.simulator import FaultSpec, Simulator

AZURE, ANTHROPIC = "azure-gpt", "claude"


def config(sim: Simulator) -> str:
    az = sim.url("az-east", "azure")
    an = sim.url("claude-a", "anthropic")
    an_drop = sim.url("claude-drop", "anthropic")
    oa = sim.url("oa", "openai")
    return (
        "routing:\n  timeout_s: 10\n"
        "deployments:\n"
        f'  az-east: {{provider: azure, model: gpt-4-turbo, azure_deployment: gpt4-prod, api_base: "{az}", '
        "api_key: az-key, api_version: '2024-10-21'}\n"
        f'  claude-a: {{provider: anthropic, model: claude-sonnet-4-5, api_base: "{an}", api_key: sk-ant}}\n'
        f"  claude-drop: {{provider: anthropic, model: claude-haiku-4-5, api_base: "
        f'"{an_drop}", api_key: sk-ant, drop_unsupported_params: true, max_tokens: 64}}\n'
        f'  oa: {{provider: openai, model: gpt-4-turbo, api_base: "{oa}", api_key: sk-oa}}\n'
        "weights:\n"
        f"  {AZURE}: {{az-east: 1}}\n"
        f"  {ANTHROPIC}: {{claude-a: 1}}\n"
        "  claude-lenient: {claude-drop: 1}\n"
        "  gpt-4-turbo: {oa: 1, az-east: 1, claude-a: 1}\n"
    )


DEPLOYMENT = {AZURE: "az-east", ANTHROPIC: "claude-a"}
TARGET = DEPLOYMENT
BOTH = pytest.mark.parametrize("group", [AZURE, ANTHROPIC])

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture
def client(simulator: Simulator, start_router: Any) -> Iterator[openai.OpenAI]:
    app = start_router(config(simulator))
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{app.port}/v1", api_key="x", max_retries=0
    ) as sdk:
        yield sdk


def ask(text: str = "Tell me about the weather in Paris") -> list[Any]:
    return [{"role": "user", "content": text}]


@BOTH
def test_plain_text(client: openai.OpenAI, simulator: Simulator, group: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=group, messages=ask())
    completion = raw.parse()
    assert raw.headers["x-routeguard-deployment"] == DEPLOYMENT[group]
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert simulator.stats()[TARGET[group]].requests == 1


def test_anthropic_answer_names_the_model_that_ran(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=ANTHROPIC, messages=ask())
    assert completion.model == "claude-sonnet-4-5"
    assert completion.id.startswith("msg_")


@BOTH
def test_multi_turn_with_system_prompts(client: openai.OpenAI, group: str) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "system", "content": "Answer in English."},
        {"role": "user", "content": "Another one?"},
        {"role": "user", "content": "And a fruit too."},
    ]
    completion = client.chat.completions.create(model=group, messages=messages, max_tokens=50)
    assert completion.choices[0].message.content


@BOTH
def test_tool_round_trip(client: openai.OpenAI, group: str) -> None:
    messages: list[Any] = ask("What is the weather in Paris?")
    first = client.chat.completions.create(model=group, messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"})
    second = client.chat.completions.create(model=group, messages=messages, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content


@BOTH
def test_tool_choice_none_answers_in_text(client: openai.OpenAI, group: str) -> None:
    completion = client.chat.completions.create(
        model=group, messages=ask(), tools=TOOLS, tool_choice="none"
    )
    assert completion.choices[0].message.content
    assert not completion.choices[0].message.tool_calls


@BOTH
def test_streaming_text_with_usage(client: openai.OpenAI, group: str) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=group, messages=ask(), stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-routeguard-deployment"] == DEPLOYMENT[group]
        chunks = list(response.parse())
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    with_choices = [chunk for chunk in chunks if chunk.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in with_choices)
    assert text.strip()
    assert with_choices[-1].choices[0].finish_reason == "stop"
    usage = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage) == 1
    assert usage[0] is chunks[-1]
    assert usage[0].choices == []
    assert usage[0].usage is not None
    assert usage[0].usage.completion_tokens > 0


@BOTH
def test_streaming_without_usage_sends_no_usage_chunk(client: openai.OpenAI, group: str) -> None:
    chunks = list(client.chat.completions.create(model=group, messages=ask(), stream=True))
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


@BOTH
def test_streaming_tool_call(client: openai.OpenAI, group: str) -> None:
    stream = client.chat.completions.create(model=group, messages=ask(), tools=TOOLS, stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                call["id"] = delta.id
            if delta.function and delta.function.name:
                call["name"] = delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["name"] == "get_weather"
    assert isinstance(json.loads(calls[0]["arguments"]), dict)


def test_mixed_group_answers_in_one_format(client: openai.OpenAI) -> None:
    served = set()
    for _ in range(30):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4-turbo", messages=ask())
        served.add(raw.headers["x-routeguard-deployment"])
        completion = raw.parse()
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.content
    assert served == {"oa", "az-east", "claude-a"}


# --- errors -----------------------------------------------------------------------------------

ANTHROPIC_ERRORS = [
    (400, (openai.BadRequestError, 400, "invalid_request_error")),
    (401, (openai.AuthenticationError, 401, "authentication_error")),
    (403, (openai.PermissionDeniedError, 403, "permission_error")),
    (404, (openai.NotFoundError, 404, "invalid_request_error")),
    (413, (openai.APIStatusError, 413, "invalid_request_error")),
    (429, (openai.RateLimitError, 429, "rate_limit_error")),
    (500, (openai.InternalServerError, 502, "server_error")),
    (529, (openai.InternalServerError, 502, "server_error")),
]


@pytest.mark.parametrize(("fault", "expected"), ANTHROPIC_ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_errors(
    client: openai.OpenAI,
    simulator: Simulator,
    fault: int,
    expected: tuple[type[openai.APIStatusError], int, str],
    stream: bool,
) -> None:
    exc_type, status, error_type = expected
    simulator.set_fault("claude-a", FaultSpec(error_rate=1.0, error_status=fault, retry_after_s=7))
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(model=ANTHROPIC, messages=ask(), stream=stream)
    error = info.value
    assert error.status_code == status
    assert error.type == error_type
    if fault == 429:
        # A rate-limited deployment cools down; what the router then answers (and which
        # headers it names) is routing's business. The status and Retry-After come through.
        assert error.response.headers["retry-after"] == "7"
    else:
        assert error.response.headers["x-routeguard-deployment"] == "claude-a"


def test_anthropic_overload_before_content_fails_the_request(
    client: openai.OpenAI, simulator: Simulator
) -> None:
    simulator.set_fault("claude-a", FaultSpec(stream_error_after_chunks=0))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=ANTHROPIC, messages=ask(), stream=True)
    assert info.value.status_code == 502
    assert info.value.code == "overloaded"


def test_anthropic_overload_after_content_ends_the_stream_with_an_error(
    client: openai.OpenAI, simulator: Simulator
) -> None:
    # Paced events, so the router has relayed content before the error arrives (an error in
    # the same read as the first content fails the request instead, which the test above covers).
    simulator.set_fault("claude-a", FaultSpec(stream_error_after_chunks=4, chunk_delay_ms=50))
    received: list[str] = []

    def drain() -> None:
        with client.chat.completions.create(model=ANTHROPIC, messages=ask(), stream=True) as stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    received.append(chunk.choices[0].delta.content)

    with pytest.raises(openai.APIError, match="overloaded"):
        drain()
    assert received


def test_anthropic_disconnect_mid_stream(client: openai.OpenAI, simulator: Simulator) -> None:
    simulator.set_fault("claude-a", FaultSpec(disconnect_after_chunks=5))

    def drain() -> None:
        with client.chat.completions.create(model=ANTHROPIC, messages=ask(), stream=True) as stream:
            list(stream)

    with pytest.raises(openai.APIError):
        drain()


AZURE_ERRORS = [
    (401, openai.AuthenticationError, 401),
    (429, openai.RateLimitError, 429),
    (500, openai.InternalServerError, 502),
    (503, openai.InternalServerError, 502),
]


@pytest.mark.parametrize(("fault", "exc_type", "status"), AZURE_ERRORS)
def test_azure_errors(
    client: openai.OpenAI,
    simulator: Simulator,
    fault: int,
    exc_type: type[openai.APIStatusError],
    status: int,
) -> None:
    simulator.set_fault("az-east", FaultSpec(error_rate=1.0, error_status=fault))
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(model=AZURE, messages=ask())
    assert info.value.status_code == status
    if fault != 429:  # see test_anthropic_errors
        assert info.value.response.headers["x-routeguard-deployment"] == "az-east"


@pytest.mark.parametrize("stream", [False, True])
def test_azure_prompt_filter(client: openai.OpenAI, simulator: Simulator, stream: bool) -> None:
    simulator.set_fault("az-east", FaultSpec(content_filter="prompt"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=AZURE, messages=ask(), stream=stream)
    assert info.value.code == "content_filter"
    assert info.value.type == "invalid_request_error"


def test_azure_completion_filter(client: openai.OpenAI, simulator: Simulator) -> None:
    simulator.set_fault("az-east", FaultSpec(content_filter="completion"))
    completion = client.chat.completions.create(model=AZURE, messages=ask())
    assert completion.choices[0].finish_reason == "content_filter"
    chunks = list(client.chat.completions.create(model=AZURE, messages=ask(), stream=True))
    assert all(chunk.choices for chunk in chunks)  # the prompt-annotation chunk is gone
    assert chunks[-1].choices[0].finish_reason == "content_filter"


# --- parameters and embeddings ----------------------------------------------------------------


def test_unsupported_parameter_is_a_clear_400(client: openai.OpenAI, simulator: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=ANTHROPIC, messages=ask(), n=2)
    assert info.value.param == "n"
    assert "claude-a" not in simulator.stats()


def test_unsupported_parameter_dropped_when_configured(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="claude-lenient", messages=ask(), n=2, seed=1, presence_penalty=0.5
    )
    assert len(completion.choices) == 1
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 64


def test_azure_embeds(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model=AZURE, input=["one", "two"])
    assert raw.headers["x-routeguard-deployment"] == "az-east"
    result = raw.parse()
    assert len(result.data) == 2
    assert result.data[0].embedding


def test_anthropic_cannot_embed(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="cannot embed"):
        client.embeddings.create(model=ANTHROPIC, input="one")
