"""A newcomer's first ten minutes, as real processes: ``routeguard serve`` with no config answers
the openai SDK through the built-in simulator, ``models.retrieve`` works, and both shipped
examples are valid configs (the simulator one also serves against a separate simulator)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from processes import ROUTEGUARD, free_port, routeguard, simulator_process, wait_for_port

from routeguard.config.loader import load_config
from routeguard.server.embedded import SIMULATOR_CONFIG

EXAMPLES = SIMULATOR_CONFIG.parent


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """``routeguard serve`` with no --config, run from an empty folder as a newcomer would."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEGUARD_")}
    process = subprocess.Popen(
        [*ROUTEGUARD, "serve", "--port", str(port), "--log-format", "text"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_port(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            process.terminate()
        if process.stdout is not None and not process.stdout.closed:
            process.communicate(timeout=30)  # also closes the pipe
        process.wait(timeout=30)


def sdk(port: int) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)


def test_serve_without_config_answers_the_openai_sdk(
    embedded: tuple[int, subprocess.Popen[str]],
) -> None:
    port, process = embedded
    with sdk(port) as client:
        check_the_sdk_calls(client)
    # The banner told the newcomer where to go and what to paste (read it after the calls, so
    # the pipe cannot fill and block the router).
    process.terminate()
    banner = process.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/v1" in banner
    assert "curl -s" in banner
    assert "OpenAI(base_url=" in banner


def check_the_sdk_calls(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4-turbo", messages=[{"role": "user", "content": "hello"}]
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model="llama-3.1-8b-instruct",
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(vectors.data) == 2

    model = client.models.retrieve("gpt-4-turbo")
    assert (model.id, model.object) == ("gpt-4-turbo", "model")
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-5-ultra")
    assert missing.value.code == "model_not_found"
    assert {m.id for m in client.models.list()} == {
        "gpt-4-turbo",
        "llama-3.1-8b-instruct",
        "text-embedding-3-small",
    }


def test_model_id_with_a_slash_and_an_encoded_one(
    embedded: tuple[int, subprocess.Popen[str]],
) -> None:
    port, _ = embedded
    with sdk(port) as client:
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("meta-llama/Llama-3.1-8B-Instruct")  # a provider model
        assert client.models.retrieve("llama-3.1-8b-instruct").id == "llama-3.1-8b-instruct"


def test_workers_need_a_config() -> None:
    result = subprocess.run(
        [*ROUTEGUARD, "serve", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--workers needs --config" in result.stderr


def test_production_example_is_valid_with_keys_set() -> None:
    env = {"OPENAI_API_KEY": "sk-x", "AZURE_API_KEY": "az-x", "ANTHROPIC_API_KEY": "an-x"}
    config = load_config(EXAMPLES / "router.yaml", env=env)
    simulated = load_config(SIMULATOR_CONFIG, env={})
    # The simulator example is the production example's groups and names, plus embeddings.
    assert set(config.deployments) <= set(simulated.deployments)
    for group, members in config.weights.items():
        assert simulated.weights[group] == members


def test_simulator_example_serves_against_a_separate_simulator(tmp_path: Path) -> None:
    with simulator_process() as sim_port:
        port = free_port()
        os.environ["ROUTEGUARD_SIMULATOR_URL"] = f"http://127.0.0.1:{sim_port}"
        try:
            with routeguard(
                "serve", "--config", str(SIMULATOR_CONFIG), "--port", str(port), port=port
            ):
                with sdk(port) as client:
                    raw = client.chat.completions.with_raw_response.create(
                        model="gpt-4-turbo", messages=[{"role": "user", "content": "hi"}]
                    )
                assert raw.parse().choices[0].message.content
                assert raw.headers["x-routeguard-deployment"] in {
                    "openai-gpt4-turbo",
                    "azure-gpt4-turbo",
                }
        finally:
            del os.environ["ROUTEGUARD_SIMULATOR_URL"]
