"""Anthropic -> OpenAI answer translation: whole messages, streams, and errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic_frames import (
    MESSAGE_START,
    MESSAGE_STOP,
    OVERLOADED,
    PING,
    frame,
    message_delta,
    text_block,
    tool_block,
)

from routeguard.errors import UpstreamBadResponseError, UpstreamStatusError
from routeguard.providers.anthropic_errors import in_band_error, status_error
from routeguard.providers.anthropic_response import StreamTranslator, to_openai_completion
from routeguard.providers.base import Usage
from routeguard.wire.sse import SSEDecoder

# --- whole messages ---------------------------------------------------------------------------


def message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01ABC",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5},
    }


def test_text_message() -> None:
    completion, usage = to_openai_completion(
        message([{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}]),
        created=1700000000,
        model="claude-config",
    )
    assert completion == {
        "id": "msg_01ABC",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-3-5-sonnet-20241022",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    assert usage == Usage(10, 5)


def test_tool_use_message() -> None:
    completion, _ = to_openai_completion(
        message(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
            stop_reason="tool_use",
        ),
        created=1,
        model="m",
    )
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "stop"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    completion, _ = to_openai_completion(message([], stop_reason), created=1, model="m")
    assert completion["choices"][0]["finish_reason"] == finish_reason
    assert completion["choices"][0]["message"]["content"] == ""


def test_cached_prompt_tokens_count_as_prompt_tokens() -> None:
    data = message(
        [{"type": "text", "text": "x"}],
        input_tokens=3,
        cache_creation_input_tokens=100,
        cache_read_input_tokens=1000,
        output_tokens=7,
    )
    _, usage = to_openai_completion(data, created=1, model="m")
    assert usage == Usage(1103, 7)


def test_model_falls_back_to_the_deployment_model() -> None:
    data = message([{"type": "text", "text": "x"}])
    del data["model"]
    completion, _ = to_openai_completion(data, created=1, model="claude-config")
    assert completion["model"] == "claude-config"


@pytest.mark.parametrize("data", [None, [], {"content": "text"}, {"type": "message"}])
def test_malformed_message(data: object) -> None:
    with pytest.raises(UpstreamBadResponseError):
        to_openai_completion(data, created=1, model="m")


# --- streams ----------------------------------------------------------------------------------


TEXT_STREAM = (
    MESSAGE_START
    + text_block(0, "Hello", "", " world")
    + PING
    + message_delta("end_turn", 12)
    + MESSAGE_STOP
)
TOOL_STREAM = (
    MESSAGE_START
    + text_block(0, "Checking.")
    + tool_block(1, "toolu_A", "get_weather", "", '{"city": ', '"Paris"}')
    + tool_block(2, "toolu_B", "now")
    + message_delta("tool_use", 40)
    + MESSAGE_STOP
)


def run(
    stream: bytes, *, include_usage: bool = False, cut: int = 7
) -> tuple[list[bytes], StreamTranslator]:
    """Translate ``stream`` fed in ``cut``-byte pieces, as the network might deliver it."""
    translator = StreamTranslator(
        model="claude-config", created=1700000000, include_usage=include_usage
    )
    decoder = SSEDecoder()
    out: list[bytes] = []
    for start in range(0, len(stream), cut):
        for event in decoder.feed(stream[start : start + cut]):
            out.extend(translator.translate(event))
    return out, translator


def chunks(events: list[bytes]) -> list[dict[str, Any]]:
    assert events[-1] == b"data: [DONE]\n\n"
    parsed = []
    for event in events[:-1]:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        parsed.append(orjson.loads(event[6:]))
    return parsed


def test_text_stream() -> None:
    events, translator = run(TEXT_STREAM)
    parsed = chunks(events)
    for chunk in parsed:
        assert chunk["id"] == "msg_01S"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == 1700000000
        assert chunk["model"] == "claude-3-5-sonnet-20241022"
    deltas = [c["choices"][0]["delta"] for c in parsed]
    assert deltas == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hello"},
        {"content": " world"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in parsed] == [None, None, None, "stop"]
    assert translator.finished
    assert translator.usage == Usage(30, 12)


def test_usage_chunk_only_when_asked() -> None:
    events, _ = run(TEXT_STREAM, include_usage=True)
    parsed = chunks(events)
    assert parsed[-1]["choices"] == []
    assert parsed[-1]["usage"] == {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    assert parsed[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in chunk for chunk in chunks(run(TEXT_STREAM)[0]))


def test_tool_call_stream() -> None:
    parsed = chunks(run(TOOL_STREAM)[0])
    deltas = [c["choices"][0]["delta"] for c in parsed]
    assert deltas[1] == {"content": "Checking."}
    assert deltas[2:-1] == [
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "toolu_B",
                    "type": "function",
                    "function": {"name": "now", "arguments": ""},
                }
            ]
        },
    ]
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("cut", [1, 3, 64, 100000])
def test_any_cut_gives_the_same_chunks(cut: int) -> None:
    assert run(TOOL_STREAM, cut=cut)[0] == run(TOOL_STREAM, cut=5)[0]


def test_started_only_once_content_flows() -> None:
    translator = StreamTranslator(model="m", created=1, include_usage=False)
    decoder = SSEDecoder()
    for event in decoder.feed(MESSAGE_START + PING):
        translator.translate(event)
    assert not translator.started
    for event in decoder.feed(text_block(0, "x")):
        translator.translate(event)
    assert translator.started
    assert not translator.finished


def test_thinking_blocks_are_skipped() -> None:
    thinking = frame(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
    ) + frame(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "hmm"},
        },
    )
    stream = (
        MESSAGE_START + thinking + text_block(1, "Hi") + message_delta("end_turn", 3) + MESSAGE_STOP
    )
    deltas = [c["choices"][0]["delta"] for c in chunks(run(stream)[0])]
    assert deltas[1:] == [{"content": "Hi"}, {}]


def test_in_band_error_raises() -> None:
    with pytest.raises(UpstreamStatusError) as info:
        run(MESSAGE_START + text_block(0, "partial") + OVERLOADED)
    error = info.value
    assert error.upstream_status == 529
    assert error.reason == "overloaded"
    assert error.retryable


@pytest.mark.parametrize(
    "stream",
    [
        text_block(0, "no message_start"),
        MESSAGE_START
        + b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n',
        MESSAGE_START + frame("content_block_delta", {"type": "content_block_delta", "index": 0}),
    ],
    ids=["no-start", "not-json", "missing-field"],
)
def test_malformed_streams(stream: bytes) -> None:
    with pytest.raises(UpstreamBadResponseError):
        run(stream)


def test_unknown_event_types_are_ignored() -> None:
    stream = MESSAGE_START + frame("future_event", {"type": "future_event"}) + text_block(0, "x")
    stream += message_delta("end_turn", 1) + MESSAGE_STOP
    assert len(chunks(run(stream)[0])) == 3


# --- errors -----------------------------------------------------------------------------------


def error_body(kind: str, message: str = "nope") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (400, "invalid_request_error", (400, "invalid_request_error", None, False, "bad_request")),
        (
            401,
            "authentication_error",
            (401, "authentication_error", "invalid_api_key", True, "auth"),
        ),
        (403, "permission_error", (403, "permission_error", None, True, "auth")),
        (404, "not_found_error", (404, "invalid_request_error", "not_found", False, "bad_request")),
        (
            413,
            "request_too_large",
            (413, "invalid_request_error", "request_too_large", False, "bad_request"),
        ),
        (
            429,
            "rate_limit_error",
            (429, "rate_limit_error", "rate_limit_exceeded", True, "rate_limit"),
        ),
        (500, "api_error", (502, "server_error", None, True, "server_error")),
        (529, "overloaded_error", (502, "server_error", "overloaded", True, "overloaded")),
    ],
)
def test_error_mapping(
    status: int, kind: str, expected: tuple[int, str, str | None, bool, str]
) -> None:
    error = status_error(status, error_body(kind), {})
    assert error.upstream_status == status
    assert (error.status, error.error_type, error.code, error.retryable, error.reason) == expected
    assert error.message == f"{kind}: nope"


def test_rate_limit_retry_after() -> None:
    error = status_error(429, error_body("rate_limit_error"), {"retry-after": "17"})
    assert error.retry_after_s == 17.0
    assert ("retry-after", "17") in error.headers()


def test_classification_ignores_message_text() -> None:
    error = status_error(
        400, error_body("invalid_request_error", "Overloaded, rate limit, prompt is too long"), {}
    )
    assert (error.reason, error.retryable, error.error_type) == (
        "bad_request",
        False,
        "invalid_request_error",
    )


def test_error_body_that_is_not_json() -> None:
    error = status_error(502, b"<html>bad gateway</html>", {})
    assert error.upstream_status == 502
    assert error.retryable
    assert error.message == "upstream answered HTTP 502"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("overloaded_error", 529),
        ("api_error", 500),
        ("rate_limit_error", 429),
        ("mystery_error", 500),
    ],
)
def test_in_band_error_status_follows_type(kind: str, status: int) -> None:
    assert in_band_error(error_body(kind)).upstream_status == status
