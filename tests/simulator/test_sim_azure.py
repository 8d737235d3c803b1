"""The Azure OpenAI dialect, exercised with ``openai.AzureOpenAI`` over real sockets."""

from __future__ import annotations

import httpx
import openai
import pytest

from routeguard.simulator import FaultSpec, Simulator

MESSAGES = [{"role": "user", "content": "tell me about the sea"}]


def test_completion_carries_content_filter_results(clients):
    result = clients.azure("az-basic").chat.completions.create(
        model="gpt4o-prod", messages=MESSAGES
    )
    assert result.model == "gpt4o-prod"
    assert result.choices[0].message.content.startswith("tell me about the sea")
    data = result.model_dump()
    assert data["prompt_filter_results"][0]["prompt_index"] == 0
    assert data["choices"][0]["content_filter_results"]["violence"] == {
        "filtered": False,
        "severity": "safe",
    }
    assert result.usage.prompt_tokens == 5


def test_path_uses_deployment_and_api_version(sim, clients):
    clients.azure("az-path").chat.completions.create(model="my-deploy", messages=MESSAGES)
    url = f"{sim.base_url}/az-path/openai/deployments/my-deploy/chat/completions"
    response = httpx.post(
        url,
        params={"api-version": "2024-10-21"},
        headers={"api-key": "k"},
        json={"messages": MESSAGES},
    )
    assert response.status_code == 200
    assert response.json()["model"] == "my-deploy"


def test_missing_api_version_is_404(sim):
    url = f"{sim.base_url}/az-ver/openai/deployments/d/chat/completions"
    response = httpx.post(url, headers={"api-key": "k"}, json={"messages": MESSAGES})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}
    unsupported = httpx.post(
        url,
        params={"api-version": "yesterday"},
        headers={"api-key": "k"},
        json={"messages": MESSAGES},
    )
    assert unsupported.status_code == 400


def test_missing_key_is_401_in_azure_shape(sim):
    url = f"{sim.base_url}/az-auth/openai/deployments/d/chat/completions"
    response = httpx.post(url, params={"api-version": "2024-10-21"}, json={"messages": MESSAGES})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "401"


def test_stream_opens_with_prompt_filter_chunk(clients):
    stream = clients.azure("az-stream").chat.completions.create(
        model="d", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    opening = chunks[0].model_dump()
    assert opening["choices"] == []
    assert opening["prompt_filter_results"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("tell me about the sea")
    assert chunks[-1].usage.completion_tokens == len(text.split())


def test_prompt_content_filter_is_a_400_with_innererror(sim, clients):
    sim.set_fault("az-cf", FaultSpec(content_filter="prompt"))
    with pytest.raises(openai.BadRequestError) as caught:
        clients.azure("az-cf").chat.completions.create(model="d", messages=MESSAGES)
    assert caught.value.code == "content_filter"
    body = caught.value.body
    assert body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert body["innererror"]["content_filter_result"]["violence"]["filtered"] is True


def test_completion_content_filter_cuts_the_answer(sim, clients):
    sim.set_fault("az-cf2", FaultSpec(content_filter="completion"))
    client = clients.azure("az-cf2")
    result = client.chat.completions.create(model="d", messages=MESSAGES)
    assert result.choices[0].finish_reason == "content_filter"
    assert len(result.choices[0].message.content.split()) == 6
    assert result.model_dump()["choices"][0]["content_filter_results"]["violence"]["filtered"]

    chunks = list(client.chat.completions.create(model="d", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_rate_limit_has_azure_shape_and_retry_after(sim, clients):
    sim.set_fault("az-429", FaultSpec(error_rate=1.0, error_status=429, retry_after_s=7))
    with pytest.raises(openai.RateLimitError) as caught:
        clients.azure("az-429").chat.completions.create(model="d", messages=MESSAGES)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "429"
    assert "retry after 7 seconds" in caught.value.message


def test_embeddings(clients):
    result = clients.azure("az-emb").embeddings.create(
        model="embed-deploy", input="hello", encoding_format="float"
    )
    assert len(result.data[0].embedding) == 1536
    assert result.model == "embed-deploy"


def test_tool_call_then_text(clients):
    tool = {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
    client = clients.azure("az-tools")
    first = client.chat.completions.create(model="d", messages=MESSAGES, tools=[tool])
    call = first.choices[0].message.tool_calls[0]
    assert call.function.arguments == "{}"
    messages = [
        *MESSAGES,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "found it"},
    ]
    second = client.chat.completions.create(model="d", messages=messages, tools=[tool])
    assert second.choices[0].message.content.startswith("found it")


def test_stats_count_azure_target(sim: Simulator, clients):
    clients.azure("az-stats").chat.completions.create(model="d", messages=MESSAGES)
    assert sim.stats()["az-stats"].by_status == {200: 1}
