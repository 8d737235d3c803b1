"""The Anthropic dialect, exercised with the official ``anthropic`` SDK over real sockets."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from routeguard.simulator import FaultSpec, Simulator

MESSAGES = [{"role": "user", "content": "how tall is the eiffel tower"}]
TOOL = {
    "name": "get_height",
    "description": "Height of a landmark",
    "input_schema": {
        "type": "object",
        "properties": {"landmark": {"type": "string"}, "metric": {"type": "boolean"}},
        "required": ["landmark"],
    },
}


def test_message_shape_and_usage(clients):
    message = clients.anthropic("an-basic").messages.create(
        model="claude-sim-1", max_tokens=100, system="be brief", messages=MESSAGES
    )
    assert message.id.startswith("msg_")
    assert message.model == "claude-sim-1"
    assert message.stop_reason == "end_turn"
    text = message.content[0].text
    assert text.startswith("how tall is the eiffel tower how")
    assert message.usage.input_tokens == 8
    assert message.usage.output_tokens == len(text.split()) == 12


def test_max_tokens_stop_reason(clients):
    message = clients.anthropic("an-cap").messages.create(
        model="c", max_tokens=2, messages=MESSAGES
    )
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "how tall"


def test_stop_sequence(clients):
    message = clients.anthropic("an-stopseq").messages.create(
        model="c", max_tokens=50, messages=MESSAGES, stop_sequences=["eiffel"]
    )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "eiffel"
    assert message.content[0].text == "how tall is the "


def test_stream_full_event_sequence(clients):
    client = clients.anthropic("an-stream")
    with client.messages.stream(model="c", max_tokens=100, messages=MESSAGES) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert "content_block_delta" in kinds
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(final.content[0].text.split()) == 12
    assert final.usage.input_tokens == 6


def test_tool_use_round_trip(clients):
    client = clients.anthropic("an-tools")
    first = client.messages.create(model="c", max_tokens=100, messages=MESSAGES, tools=[TOOL])
    assert first.stop_reason == "tool_use"
    block = first.content[0]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.input == {"landmark": "sample", "metric": True}

    followup = [
        *MESSAGES,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "330 metres"}],
        },
    ]
    second = client.messages.create(model="c", max_tokens=100, messages=followup, tools=[TOOL])
    assert second.stop_reason == "end_turn"
    assert second.content[0].text.startswith("330 metres")


def test_streamed_tool_use_uses_input_json_delta(clients):
    client = clients.anthropic("an-tools-stream")
    with client.messages.stream(
        model="c", max_tokens=100, messages=MESSAGES, tools=[TOOL]
    ) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert set(deltas) == {"input_json_delta"}
    assert len(deltas) > 1
    assert final.content[0].input == {"landmark": "sample", "metric": True}
    assert final.stop_reason == "tool_use"


def test_tool_choice_none_gives_text(clients):
    message = clients.anthropic("an-tools-none").messages.create(
        model="c", max_tokens=100, messages=MESSAGES, tools=[TOOL], tool_choice={"type": "none"}
    )
    assert message.content[0].type == "text"


@pytest.mark.parametrize(
    ("request_kwargs", "fragment"),
    [
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "system", "content": "x"}]}, "top-level `system`"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "first message"),
        ({"messages": MESSAGES * 2}, "alternate"),
        ({"messages": MESSAGES, "extra_body": {"temperature": 1.5}}, "temperature"),
    ],
)
def test_validation_errors_raise_bad_request(clients, request_kwargs, fragment):
    with pytest.raises(anthropic.BadRequestError) as caught:
        clients.anthropic("an-invalid").messages.create(model="c", max_tokens=10, **request_kwargs)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert fragment in caught.value.body["error"]["message"]


def test_missing_max_tokens_and_headers(sim):
    url = f"{sim.url('an-raw', 'anthropic')}/v1/messages"
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    no_max = httpx.post(url, headers=headers, json={"model": "c", "messages": MESSAGES})
    assert no_max.status_code == 400
    assert no_max.json()["error"]["message"] == "max_tokens: Field required"
    body = {"model": "c", "max_tokens": 5, "messages": MESSAGES}
    no_version = httpx.post(url, headers={"x-api-key": "k"}, json=body)
    assert no_version.status_code == 400
    assert "anthropic-version" in no_version.json()["error"]["message"]
    no_key = httpx.post(url, headers={"anthropic-version": "2023-06-01"}, json=body)
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"


def test_wrong_key_is_authentication_error(keyed_sim: Simulator, clients):
    client = clients.anthropic("an-keys", sim=keyed_sim, api_key="wrong")
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="c", max_tokens=5, messages=MESSAGES)


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_injected_errors_raise_the_sdk_exception(sim, clients, status, exception, error_type):
    target = f"an-err-{status}"
    sim.set_fault(target, FaultSpec(error_rate=1.0, error_status=status))
    with pytest.raises(exception) as caught:
        clients.anthropic(target).messages.create(model="c", max_tokens=5, messages=MESSAGES)
    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == error_type


@pytest.mark.parametrize("after", [0, 2])
def test_in_band_stream_error(sim, clients, after):
    target = f"an-stream-err-{after}"
    sim.set_fault(target, FaultSpec(stream_error_after_chunks=after))
    client = clients.anthropic(target)
    seen = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="c", max_tokens=100, messages=MESSAGES) as stream,
    ):
        seen.extend(event.type for event in stream)
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert seen[0] == "message_start"
    # message_start, then `after` more events (the ping is not surfaced by the SDK).
    assert len(seen) <= 1 + after


def test_count_tokens(clients):
    result = clients.anthropic("an-count").messages.count_tokens(model="c", messages=MESSAGES)
    assert result.input_tokens == 6


def test_models_list_speaks_anthropic(clients):
    models = clients.anthropic("an-models").models.list()
    assert models.data[0].type == "model"
