"""Groups that mix providers: a request one deployment cannot serve goes to one that can."""

from __future__ import annotations

import openai
import pytest

from routeguard.simulator import Simulator

MESSAGES = [{"role": "user", "content": "Hello mixed group"}]


def config(sim: Simulator) -> str:
    return (
        "routing: {num_retries: 2, retry_backoff_s: 0}\n"
        "deployments:\n"
        f'  claude: {{provider: anthropic, model: claude-x, api_base: "{sim.url("claude", "anthropic")}", api_key: ak}}\n'
        f'  gpt: {{provider: openai, model: gpt-x, api_base: "{sim.url("gpt")}", api_key: ok}}\n'
        "weights:\n"
        "  mixed: {claude: 1000, gpt: 1}\n"
        "  claude-only: {claude: 1}\n"
    )


@pytest.fixture
def client(simulator, start_router):
    app = start_router(config(simulator), seed=3)
    with openai.OpenAI(base_url=f"http://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0) as c:
        yield c


def test_unsupported_parameter_moves_to_a_deployment_that_supports_it(client, simulator):
    raw = client.chat.completions.with_raw_response.create(
        model="mixed", messages=MESSAGES, logit_bias={"50256": -100}
    )
    assert raw.headers["x-routeguard-deployment"] == "gpt"
    assert raw.headers["x-routeguard-attempts"] == "2"
    assert raw.parse().choices[0].message.content
    # Without the parameter, the heavier Anthropic deployment serves it.
    raw = client.chat.completions.with_raw_response.create(model="mixed", messages=MESSAGES)
    assert raw.headers["x-routeguard-deployment"] == "claude"


def test_unsupported_parameter_with_no_capable_deployment_is_one_clear_400(client, simulator):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude-only", messages=MESSAGES, logit_bias={"50256": -100}
        )
    assert caught.value.param == "logit_bias"
    assert "not supported by Anthropic" in caught.value.message
    assert caught.value.response.headers["x-routeguard-attempts"] == "1"
    assert simulator.stats().get("claude") is None  # nothing was sent upstream


def test_embeddings_go_to_a_deployment_that_can_embed(client):
    result = client.embeddings.create(model="mixed", input=["one", "two"], encoding_format="float")
    assert len(result.data) == 2
    assert len(result.data[0].embedding) > 0
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="claude-only", input="x", encoding_format="float")
    assert "cannot embed" in caught.value.message
