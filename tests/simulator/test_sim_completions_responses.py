"""The simulator's legacy Completions and Responses endpoints, driven by the ``openai`` SDK."""

from __future__ import annotations

import threading
import time
from typing import Any

import openai
import pytest

from routeguard.simulator import FaultSpec, Simulator

TOOL: Any = {
    "type": "function",
    "name": "lookup",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}


def test_completions_prompts_n_echo_and_logprobs(clients: Any) -> None:
    client = clients.openai("cmpl-basic")
    result = client.completions.create(
        model="llama", prompt=["alpha beta", "gamma"], n=2, max_tokens=3, logprobs=2, echo=True
    )
    assert result.object == "text_completion"
    assert [c.index for c in result.choices] == [0, 1, 2, 3]
    assert result.choices[0].text.startswith("alpha beta")
    assert result.choices[2].text.startswith("gamma")
    assert result.choices[0].logprobs is not None
    assert len(result.choices[0].logprobs.tokens or []) == 3
    assert result.usage is not None
    assert result.usage.completion_tokens == 12


def test_completions_stream_with_usage_and_stop(clients: Any) -> None:
    # Not strict: OpenAI streams carry finish_reason null until the last chunk, which the SDK's
    # Completion model (shared with whole answers) does not allow.
    client = clients.openai("cmpl-stream", _strict_response_validation=False)
    chunks = list(
        client.completions.create(
            model="llama",
            prompt="one two three four",
            stop=" three",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "one two"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None


def test_completions_bad_prompt_is_a_400(clients: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        clients.openai("cmpl-bad").completions.create(model="m", prompt=[{"x": 1}])  # type: ignore[list-item]
    assert caught.value.param == "prompt"


def test_responses_text_and_function_call(clients: Any) -> None:
    client = clients.openai("resp-basic")
    text = client.responses.create(model="gpt-4o", input="hello responses")
    assert text.status == "completed"
    assert "hello" in text.output_text
    call = client.responses.create(model="gpt-4o", input="look it up", tools=[TOOL])
    item = call.output[0]
    assert item.type == "function_call"
    assert item.name == "lookup"
    after = client.responses.create(
        model="gpt-4o",
        tools=[TOOL],
        input=[
            {"role": "user", "content": "look it up"},
            {"type": "function_call", "call_id": item.call_id, "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": item.call_id, "output": "found it"},
        ],
    )
    assert "found" in after.output_text


def test_responses_stream_through_the_sdk_helper(clients: Any) -> None:
    client = clients.openai("resp-stream")
    with client.responses.stream(model="gpt-4o", input="stream it", tools=[TOOL]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created"
    assert "response.function_call_arguments.delta" in kinds
    assert final.output[0].type == "function_call"


def test_responses_refuse_previous_response_id(clients: Any) -> None:
    with pytest.raises(openai.BadRequestError):
        clients.openai("resp-prev").responses.create(
            model="gpt-4o", input="x", previous_response_id="resp_1"
        )


def test_max_concurrency_queues_the_latency(clients: Any, sim: Simulator) -> None:
    sim.set_fault("slots", FaultSpec(latency_ms=100, max_concurrency=1))
    client = clients.openai("slots")
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=lambda: client.embeddings.create(model="e", input="x", encoding_format="float")
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Three 100 ms computations one at a time cannot take less than 300 ms (a lower bound).
    assert time.monotonic() - started >= 0.3
    assert sim.stats()["slots"].requests == 3
