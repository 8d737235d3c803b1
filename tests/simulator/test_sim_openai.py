"""The OpenAI / vLLM dialect, exercised with the official ``openai`` SDK over real sockets."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import openai
import pytest

from routeguard.simulator import Simulator

MESSAGES = [{"role": "user", "content": "what is the weather in Paris"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1},
            },
            "required": ["city"],
        },
    },
}


def test_completion_echoes_prompt_with_consistent_usage(clients):
    client = clients.openai("oa-basic")
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert result.id.startswith("chatcmpl-")
    assert result.model == "gpt-4o-mini"
    choice = result.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content.startswith("what is the weather in Paris what")
    assert result.usage.prompt_tokens == 6
    assert result.usage.completion_tokens == len(choice.message.content.split()) == 12
    assert result.usage.total_tokens == 18


def test_plain_v1_path_is_the_default_target(sim, clients):
    client = clients.openai("")
    client.base_url = f"{sim.base_url}/v1"
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert sim.stats()["default"].by_status == {200: 1}


def test_max_tokens_caps_completion_with_finish_reason_length(clients):
    client = clients.openai("oa-cap")
    result = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3)
    assert result.choices[0].finish_reason == "length"
    assert result.choices[0].message.content == "what is the"
    assert result.usage.completion_tokens == 3


def test_stop_sequence_cuts_the_answer(clients):
    client = clients.openai("oa-stop")
    result = client.chat.completions.create(model="m", messages=MESSAGES, stop=["Paris"])
    assert result.choices[0].message.content == "what is the weather in "
    assert result.choices[0].finish_reason == "stop"


def test_n_choices(clients):
    result = clients.openai("oa-n").chat.completions.create(model="m", messages=MESSAGES, n=2)
    assert [c.index for c in result.choices] == [0, 1]
    assert result.usage.completion_tokens == 24


def test_stream_with_include_usage(clients):
    client = clients.openai("oa-stream")
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("what is the weather")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert finishes.count("stop") == 1
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == len(text.split()) == 12
    assert last.usage.prompt_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(clients):
    chunks = list(
        clients.openai("oa-stream2").chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_round_trip(clients):
    client = clients.openai("oa-tools")
    first = client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sample", "unit": "celsius", "days": 1}

    followup = [
        *MESSAGES,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and warm"},
    ]
    second = client.chat.completions.create(model="m", messages=followup, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content.startswith("sunny and warm sunny")


def test_tool_choice_none_answers_with_text(clients):
    result = clients.openai("oa-tools-none").chat.completions.create(
        model="m", messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert result.choices[0].finish_reason == "stop"


def test_streamed_tool_call_arguments_arrive_in_pieces(clients):
    stream = clients.openai("oa-tools-stream").chat.completions.create(
        model="m", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
    )
    chunks = list(stream)
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather"
    assert len(calls) > 2
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(arguments)["city"] == "sample"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_embeddings_float_and_dimensions(clients):
    client = clients.openai("oa-emb")
    result = client.embeddings.create(
        model="text-embedding-3-small",
        input=["hello world", "bye"],
        encoding_format="float",
        dimensions=16,
    )
    assert [d.index for d in result.data] == [0, 1]
    vector = result.data[0].embedding
    assert len(vector) == 16
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-4
    assert result.usage.prompt_tokens == 3
    again = client.embeddings.create(
        model="text-embedding-3-small",
        input="hello world",
        encoding_format="float",
        dimensions=16,
    )
    assert again.data[0].embedding == vector


def test_embeddings_base64_matches_float(sim, clients):
    client = clients.openai("oa-emb64")
    floats = (
        client.embeddings.create(
            model="text-embedding-3-small", input="abc", encoding_format="float"
        )
        .data[0]
        .embedding
    )
    assert len(floats) == 1536
    # The SDK's default asks for base64 and decodes it itself, after response validation
    # (so only a non-strict client can use the default).
    lenient = clients.openai("oa-emb64", _strict_response_validation=False)
    decoded = lenient.embeddings.create(model="text-embedding-3-small", input="abc")
    assert decoded.data[0].embedding == floats
    raw = httpx.post(
        f"{sim.url('oa-emb64')}/embeddings",
        json={"model": "text-embedding-3-small", "input": "abc", "encoding_format": "base64"},
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == floats


def test_models_list(clients):
    models = clients.openai("oa-models").models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"temperature": 3}, "temperature", "decimal_above_max_value"),
        ({"top_p": -1}, "top_p", "decimal_below_min_value"),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"messages": []}, "messages", "empty_array"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ],
)
def test_validation_errors_have_openai_shape(clients, kwargs, param, code):
    client = clients.openai("oa-invalid")
    request = {"model": "m", "messages": MESSAGES, **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)
    error = caught.value.body
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    assert error["message"]


def test_missing_messages_and_bad_json(sim):
    url = f"{sim.url('oa-raw')}/chat/completions"
    missing = httpx.post(url, json={"model": "m"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    garbage = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 400
    assert set(garbage.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_path_is_404_in_openai_shape(sim):
    response = httpx.post(f"{sim.base_url}/t/v1/nope", json={})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_api_keys_are_checked_when_configured(keyed_sim: Simulator, clients):
    ok = clients.openai("oa-keys", sim=keyed_sim)
    ok.chat.completions.create(model="m", messages=MESSAGES)
    bad = clients.openai("oa-keys", sim=keyed_sim, api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="m", messages=MESSAGES)
    assert caught.value.body["code"] == "invalid_api_key"
    assert keyed_sim.stats()["oa-keys"].by_status == {200: 1, 401: 1}
