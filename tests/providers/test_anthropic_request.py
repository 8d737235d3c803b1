"""OpenAI -> Anthropic request translation, rule by rule."""

from __future__ import annotations

from typing import Any

import pytest

from routeguard.errors import InvalidRequestError, UnsupportedByDeploymentError
from routeguard.providers.anthropic_request import UNSUPPORTED_PARAMS, to_anthropic

USER = {"role": "user", "content": "Hi"}


def translate(payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"model": "claude-x", "stream": False, **kwargs}
    return to_anthropic({"model": "gpt-4-turbo", **payload}, **options)


def test_minimal_request() -> None:
    assert translate({"messages": [USER]}) == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


def test_stream_flag() -> None:
    assert translate({"messages": [USER]}, stream=True)["stream"] is True


@pytest.mark.parametrize(
    ("payload", "default", "expected"),
    [
        ({"max_tokens": 10}, None, 10),
        ({"max_completion_tokens": 20}, None, 20),
        ({"max_tokens": 10, "max_completion_tokens": 20}, None, 10),
        ({"max_tokens": None, "max_completion_tokens": 20}, 99, 20),
        ({}, 99, 99),
        ({}, None, 4096),
    ],
)
def test_max_tokens_always_sent(
    payload: dict[str, Any], default: int | None, expected: int
) -> None:
    body = translate({"messages": [USER], **payload}, default_max_tokens=default)
    assert body["max_tokens"] == expected


def test_bad_max_tokens() -> None:
    with pytest.raises(InvalidRequestError) as info:
        translate({"messages": [USER], "max_tokens": 0})
    assert info.value.param == "max_tokens"


@pytest.mark.parametrize(
    ("messages", "system"),
    [
        ([{"role": "system", "content": "Be brief."}, USER], "Be brief."),
        (
            [
                {
                    "role": "system",
                    "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
                },
                USER,
            ],
            "A\nB",
        ),
        (
            [{"role": "system", "content": "One."}, USER, {"role": "developer", "content": "Two."}],
            [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
        ),
    ],
    ids=["string", "parts", "several-anywhere"],
)
def test_system_messages_lifted(messages: list[dict[str, Any]], system: object) -> None:
    body = translate({"messages": messages})
    assert body["system"] == system
    assert all(turn["role"] != "system" for turn in body["messages"])


def test_consecutive_same_role_messages_merged() -> None:
    body = translate(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "s"},
                {"role": "user", "content": "b"},
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "d"},
                {"role": "user", "content": "e"},
            ]
        }
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}],
        },
        {"role": "user", "content": [{"type": "text", "text": "e"}]},
    ]


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "b"], ["a", "b"])],
)
def test_stop_sequences(stop: object, expected: list[str]) -> None:
    assert translate({"messages": [USER], "stop": stop})["stop_sequences"] == expected


def test_sampling_and_user() -> None:
    body = translate({"messages": [USER], "temperature": 0.2, "top_p": 0.9, "user": "u-1"})
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["metadata"] == {"user_id": "u-1"}


def test_parameters_without_effect_are_not_forwarded() -> None:
    body = translate(
        {
            "messages": [USER],
            "store": True,
            "metadata": {"k": "v"},
            "service_tier": "auto",
            "parallel_tool_calls": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert set(body) == {"model", "max_tokens", "messages"}


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("https://example.com/cat.png", {"type": "url", "url": "https://example.com/cat.png"}),
        (
            "data:image/jpeg;base64,QUJD",
            {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
        ),
    ],
)
def test_image_parts(url: str, source: dict[str, str]) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]
    body = translate({"messages": [{"role": "user", "content": content}]})
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": source},
    ]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}},
        {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}},
        {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}},
    ],
)
def test_unusable_content_parts(part: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError) as info:
        translate({"messages": [{"role": "user", "content": [part]}]})
    assert info.value.param == "messages[0].content[0]"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "now"}},
]


def test_tools() -> None:
    body = translate({"messages": [USER], "tools": TOOLS})
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "now"}}, None, {"type": "tool", "name": "now"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        (None, True, None),
    ],
)
def test_tool_choice(choice: object, parallel: object, expected: object) -> None:
    payload: dict[str, Any] = {"messages": [USER], "tools": TOOLS}
    if choice is not None:
        payload["tool_choice"] = choice
    if parallel is not None:
        payload["parallel_tool_calls"] = parallel
    assert translate(payload).get("tool_choice") == expected


def test_tool_round_trip_messages() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24C"}]},
        {"role": "user", "content": "Thanks. Which is warmer?"},
    ]
    body = translate({"messages": messages, "tools": TOOLS})
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "24C"}],
                },
                {"type": "text", "text": "Thanks. Which is warmer?"},
            ],
        },
    ]


def test_assistant_text_with_tool_calls_keeps_both() -> None:
    message = {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "now", "arguments": ""}}
        ],
    }
    body = translate({"messages": [USER, message]})
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "c", "name": "now", "input": {}},
    ]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
        ({"stop": 3}, "stop"),
        (
            {
                "messages": [
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        ({"messages": [USER, {"role": "tool", "content": "x"}]}, "messages[1].tool_call_id"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ],
)
def test_invalid_requests_name_the_param(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        translate({"messages": [USER], **payload})
    assert info.value.param == param
    assert info.value.status == 400


UNSUPPORTED = [
    ("n", 2),
    ("logprobs", True),
    ("top_logprobs", 3),
    ("presence_penalty", 0.5),
    ("frequency_penalty", -1),
    ("logit_bias", {"50256": -100}),
    ("seed", 42),
    ("response_format", {"type": "json_object"}),
    ("functions", [{"name": "f"}]),
    ("function_call", "auto"),
    ("audio", {"voice": "alloy"}),
    ("modalities", ["text", "audio"]),
    ("prediction", {"type": "content", "content": "x"}),
]


def test_every_unsupported_param_is_tested() -> None:
    assert {name for name, _ in UNSUPPORTED} == set(UNSUPPORTED_PARAMS)


@pytest.mark.parametrize(("name", "value"), UNSUPPORTED)
def test_unsupported_params_refused(name: str, value: object) -> None:
    with pytest.raises(UnsupportedByDeploymentError) as info:
        translate({"messages": [USER], name: value})
    assert info.value.param == name
    assert "drop_unsupported_params" in info.value.message


@pytest.mark.parametrize(("name", "value"), UNSUPPORTED)
def test_unsupported_params_dropped_when_configured(name: str, value: object) -> None:
    body = translate({"messages": [USER], name: value}, drop_unsupported=True)
    assert name not in body


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("n", 1),
        ("logprobs", False),
        ("presence_penalty", 0),
        ("frequency_penalty", 0.0),
        ("logit_bias", {}),
        ("seed", None),
        ("response_format", {"type": "text"}),
        ("modalities", ["text"]),
    ],
)
def test_neutral_values_accepted(name: str, value: object) -> None:
    assert translate({"messages": [USER], name: value})["messages"]
