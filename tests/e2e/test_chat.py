"""The data plane end to end: the official openai SDK -> RouteGuard -> simulator, over sockets."""

from __future__ import annotations

import collections

import httpx
import openai
import pytest

from routeguard.simulator import Simulator


def one_group_config(sim: Simulator, **extra: str) -> str:
    routing = "".join(f"  {k}: {v}\n" for k, v in extra.items())
    return (
        f"routing:\n  strategy: weighted\n  timeout_s: 10\n{routing}"
        "deployments:\n"
        f'  sim-a: {{provider: openai, model: sim-model-a, api_base: "{sim.url("sim-a")}", api_key: sk-test-a}}\n'
        "weights:\n  gpt-4-turbo: {sim-a: 1}\n"
    )


def client_for(app, **kwargs) -> openai.OpenAI:
    port = app.port
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="client-key", max_retries=0, **kwargs
    )


MESSAGES = [{"role": "user", "content": "Hello router, how are you today?"}]


def test_non_streaming_chat_with_openai_sdk(simulator, start_router):
    app = start_router(one_group_config(simulator))
    client = client_for(app)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4-turbo", messages=MESSAGES)
    completion = raw.parse()
    assert raw.headers["x-routeguard-deployment"] == "sim-a"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    # The router asked the simulator for the deployment's model, not the group name.
    assert completion.model == "sim-model-a"
    assert simulator.stats()["sim-a"].requests == 1


def test_streaming_chat_with_usage(simulator, start_router):
    app = start_router(one_group_config(simulator))
    client = client_for(app)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4-turbo",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-routeguard-deployment"] == "sim-a"
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0].choices == []
    assert usage_chunks[0].usage.completion_tokens > 0


def test_stream_ends_with_done_on_the_wire(simulator, start_router):
    app = start_router(one_group_config(simulator))
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{app.port}/v1/chat/completions",
        json={"model": "gpt-4-turbo", "messages": MESSAGES, "stream": True},
    ) as response:
        body = b"".join(response.iter_bytes())
    assert response.status_code == 200
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    assert all(e.startswith(b"data: ") for e in events)


def test_models_lists_groups(simulator, start_router):
    app = start_router(
        one_group_config(simulator).replace(
            "weights:\n", "weights:\n  llama-3.1-8b-instruct: {sim-a: 5}\n"
        )
    )
    models = client_for(app).models.list()
    assert sorted(m.id for m in models.data) == ["gpt-4-turbo", "llama-3.1-8b-instruct"]
    assert all(m.object == "model" for m in models.data)


def weighted_config(sim: Simulator) -> str:
    return (
        "deployments:\n"
        + "".join(
            f'  {name}: {{provider: vllm, model: m, api_base: "{sim.url(name)}"}}\n'
            for name in ("openai-gpt4-turbo", "azure-gpt4-turbo", "anthropic-claude-3-opus")
        )
        + "weights:\n  gpt-4-turbo:\n    openai-gpt4-turbo: 70\n    azure-gpt4-turbo: 30\n"
        "    anthropic-claude-3-opus: 0  # Disable if problematic\n"
    )


def test_weighted_split_follows_weights(simulator, start_router):
    app = start_router(weighted_config(simulator), seed=2024)
    client = client_for(app)
    served = collections.Counter()
    for _ in range(400):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4-turbo", messages=MESSAGES
        )
        served[raw.headers["x-routeguard-deployment"]] += 1
    assert served["anthropic-claude-3-opus"] == 0
    # Seeded and sequential, so deterministic; the band still reflects the 70/30 weights.
    assert 0.62 <= served["openai-gpt4-turbo"] / 400 <= 0.78
    assert served["openai-gpt4-turbo"] + served["azure-gpt4-turbo"] == 400
    assert simulator.stats()["openai-gpt4-turbo"].requests == served["openai-gpt4-turbo"]


def test_all_weights_zero_answers_503(simulator, start_router):
    app = start_router(weighted_config(simulator).replace(": 70", ": 0").replace(": 30", ": 0"))
    with pytest.raises(openai.InternalServerError) as caught:
        client_for(app).chat.completions.create(model="gpt-4-turbo", messages=MESSAGES)
    assert caught.value.status_code == 503
    assert "all weights are 0" in caught.value.message
    assert simulator.stats() == {} or all(s.requests == 0 for s in simulator.stats().values())
