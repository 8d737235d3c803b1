"""The inbound translations as pure functions: what chat completions receives, what comes back.

The SDK-driven end-to-end tests prove the shapes parse; these pin the details a client relies on
(ordering of tool results, stop reasons, what is dropped and what refuses to translate).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from routeguard.errors import InvalidRequestError, UnsupportedByDeploymentError
from routeguard.inbound.messages_answer import MessagesStreamTranslator, to_message
from routeguard.inbound.messages_request import parse_messages_request
from routeguard.inbound.messages_request import to_chat_payload as messages_to_chat
from routeguard.inbound.responses_answer import ResponseBuilder
from routeguard.inbound.responses_request import parse_responses_request
from routeguard.inbound.responses_request import to_chat_payload as responses_to_chat
from routeguard.providers.base import BatchSettings
from routeguard.providers.batching import EmbeddingBatcher


def test_messages_to_chat_keeps_order_and_options() -> None:
    payload: dict[str, Any] = {
        "model": "g",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "sys one"}, {"type": "text", "text": "sys two"}],
        "stop_sequences": ["END"],
        "top_k": 5,
        "metadata": {"user_id": "u-1"},
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "tu1", "name": "t", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAA="},
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "tu1",
                        "content": "ok",
                        "is_error": True,
                    },
                ],
            },
        ],
    }
    chat = messages_to_chat(payload, stream=True)
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert chat["messages"][0]["content"] == "sys one\nsys two"
    assert chat["messages"][2]["tool_calls"][0]["function"] == {"name": "t", "arguments": '{"a":1}'}
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "tu1", "content": "Error: ok"}
    image = chat["messages"][4]["content"][1]
    assert image == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA="}}
    assert chat["stop"] == ["END"]
    assert chat["user"] == "u-1"
    assert chat["tool_choice"] == "required"
    assert chat["parallel_tool_calls"] is False
    assert chat["stream_options"] == {"include_usage": True}
    assert "top_k" not in chat


def test_messages_blocks_chat_cannot_express_refuse_to_translate() -> None:
    document = {"type": "document", "source": {"type": "text", "data": "x"}}
    payload = {"model": "g", "max_tokens": 5, "messages": [{"role": "user", "content": [document]}]}
    with pytest.raises(UnsupportedByDeploymentError) as caught:
        messages_to_chat(payload, stream=False)
    assert caught.value.param == "messages.0.content.0"
    server_tool = {"type": "web_search_20250305", "name": "web_search"}
    payload = {"model": "g", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(UnsupportedByDeploymentError):
        messages_to_chat({**payload, "tools": [server_tool]}, stream=False)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "g", "messages": [{"role": "user", "content": "x"}]}',
        b'{"model": "g", "max_tokens": 5, "messages": []}',
        b'{"model": "g", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}',
        b'{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}',
        b"[]",
    ],
)
def test_messages_validation(body: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        parse_messages_request(body)


def test_chat_answer_as_message() -> None:
    completion = {
        "id": "chatcmpl-abc",
        "model": "gpt-x",
        "choices": [
            {
                "finish_reason": "length",
                "message": {
                    "content": "partial",
                    "tool_calls": [
                        {"id": "c1", "function": {"name": "t", "arguments": "{not json"}}
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    message = orjson.loads(to_message(orjson.dumps(completion)))
    assert message["id"] == "msg_abc"
    assert message["stop_reason"] == "max_tokens"
    assert message["content"][1] == {"type": "tool_use", "id": "c1", "name": "t", "input": {}}
    assert message["usage"] == {"input_tokens": 3, "output_tokens": 4}


def _events(frames: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for frame in b"".join(frames).split(b"\n\n"):
        if frame:
            out.append(orjson.loads(frame.split(b"data: ", 1)[1]))
    return out


def test_stream_translator_block_indexes() -> None:
    translator = MessagesStreamTranslator()
    frames: list[bytes] = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "x", "model": "m", "choices": [{"delta": delta, "finish_reason": finish}]}

    frames += translator.feed(chunk({"role": "assistant", "content": ""}))
    frames += translator.feed(chunk({"content": "hi"}))
    call = {"index": 0, "id": "c1", "function": {"name": "t", "arguments": '{"a"'}}
    frames += translator.feed(chunk({"tool_calls": [call]}))
    more = {"index": 0, "function": {"arguments": ": 1}"}}
    frames += translator.feed(chunk({"tool_calls": [more]}, "tool_calls"))
    frames += translator.feed(
        {"id": "x", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 5}}
    )
    frames += translator.finish(None)
    events = _events(frames)
    kinds = [(e["type"], e.get("index")) for e in events]
    assert kinds == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {"input_tokens": 2, "output_tokens": 5}


def test_responses_to_chat() -> None:
    payload: dict[str, Any] = {
        "model": "g",
        "instructions": "be terse",
        "max_output_tokens": 20,
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        "tools": [{"type": "function", "name": "t", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "t"},
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {"type": "reasoning", "id": "r1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "t", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "t", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": "two"},
        ],
    }
    chat = responses_to_chat(payload, stream=False)
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    assert [c["id"] for c in chat["messages"][2]["tool_calls"]] == ["c1", "c2"]
    assert chat["max_tokens"] == 20
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "t"}}
    assert chat["response_format"]["type"] == "json_schema"
    with pytest.raises(UnsupportedByDeploymentError):
        responses_to_chat({**payload, "tools": [{"type": "web_search"}]}, stream=False)


def test_responses_statefulness_is_refused() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_responses_request(b'{"model": "g", "input": "x", "previous_response_id": "r"}')
    assert caught.value.param == "previous_response_id"


def test_cut_answer_is_an_incomplete_response() -> None:
    completion = {
        "model": "m",
        "choices": [{"finish_reason": "length", "message": {"content": "cut"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    response = orjson.loads(ResponseBuilder({"model": "g"}).from_chat(orjson.dumps(completion)))
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"]["total_tokens"] == 3


def test_batch_split_renumbers_and_apportions_usage() -> None:
    sent: list[dict[str, Any]] = []

    async def send(payload: dict[str, Any]) -> bytes:
        sent.append(payload)
        rows = [
            {"object": "embedding", "index": i, "embedding": [i]}
            for i in range(len(payload["input"]))
        ]
        return orjson.dumps(
            {
                "object": "list",
                "data": rows[::-1],
                "usage": {"prompt_tokens": 10, "total_tokens": 10},
            }
        )

    async def run() -> list[bytes]:
        batcher = EmbeddingBatcher(send, BatchSettings(3, 1000), deployment="d")
        return await asyncio.gather(
            batcher.embed({"model": "g", "input": "aaaa"}),
            batcher.embed({"model": "g", "input": ["b", "cccccc"]}),
        )

    first, second = (orjson.loads(body) for body in asyncio.run(run()))
    assert len(sent) == 1
    assert sent[0]["input"] == ["aaaa", "b", "cccccc"]
    assert [r["embedding"] for r in first["data"]] == [[0]]
    assert [(r["index"], r["embedding"]) for r in second["data"]] == [(0, [1]), (1, [2])]
    assert first["usage"]["prompt_tokens"] + second["usage"]["prompt_tokens"] == 10
    assert first["usage"]["prompt_tokens"] == 3  # 4 of 11 characters
