"""Configuration loading: the runbook's snippets load as written; bad files fail clearly."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from routeguard.config import load_config, parse_config
from routeguard.errors import ConfigError

RUNBOOK_SHAPED = textwrap.dedent(
    """\
    routing:
      strategy: weighted
      timeout_s: 30
      circuit_breaker_error_rate: 0.25
      cooldown_s: 60
    deployments:
      openai-gpt4-turbo:   {provider: openai, model: gpt-4-turbo, api_base: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY}"}
      azure-gpt4-turbo:    {provider: azure, model: gpt-4-turbo, api_base: "https://r.openai.azure.com", api_key: "${AZURE_API_KEY}"}
      anthropic-claude-3-opus: {provider: anthropic, model: claude-3-opus-20240229, api_key: "${ANTHROPIC_API_KEY}"}
      vllm-local-llama-3-1-8b: {provider: vllm, model: meta-llama/Llama-3.1-8B-Instruct, api_base: "http://vllm-engine:8000/v1", timeout_s: 60}
      openai-gpt4o-mini:   {provider: openai, model: gpt-4o-mini, api_key: "${OPENAI_API_KEY}"}
    weights:
      gpt-4-turbo:
        openai-gpt4-turbo: 70
        azure-gpt4-turbo: 30
        anthropic-claude-3-opus: 0  # Disable if problematic
      llama-3.1-8b-instruct: {vllm-local-llama-3-1-8b: 100, openai-gpt4o-mini: 0}
    """
)
ENV = {
    "OPENAI_API_KEY": "sk-openai-SECRET",
    "AZURE_API_KEY": "az-SECRET",
    "ANTHROPIC_API_KEY": "ant-SECRET",
}


def test_runbook_shaped_config_loads():
    config = parse_config(RUNBOOK_SHAPED, "router.yaml", ENV)
    assert config.routing.strategy == "weighted"
    assert config.weights["gpt-4-turbo"] == {
        "openai-gpt4-turbo": 70,
        "azure-gpt4-turbo": 30,
        "anthropic-claude-3-opus": 0,
    }
    assert config.deployments["openai-gpt4-turbo"].api_key.get_secret_value() == "sk-openai-SECRET"
    assert config.deployments["vllm-local-llama-3-1-8b"].timeout_s == 60
    assert "SECRET" not in repr(config)


def test_shipped_example_config_is_valid():
    example = Path(__file__).parents[2] / "src/routeguard/examples/router.yaml"
    config = load_config(example, env=ENV)
    assert set(config.weights) == {"gpt-4-turbo", "llama-3.1-8b-instruct"}


def test_env_default_syntax():
    text = RUNBOOK_SHAPED.replace("${AZURE_API_KEY}", "${AZURE_API_KEY:-fallback}")
    env = {k: v for k, v in ENV.items() if k != "AZURE_API_KEY"}
    config = parse_config(text, "router.yaml", env)
    assert config.deployments["azure-gpt4-turbo"].api_key.get_secret_value() == "fallback"


@pytest.mark.parametrize(
    ("mutate", "key", "reason"),
    [
        (lambda t: t.replace("timeout_s: 30", "timeout_s: [30"), "", "YAML syntax error line"),
        (
            lambda t: t.replace("cooldown_s: 60", "cooldown_s: 60\n  cooldwn_s: 1"),
            "routing.cooldwn_s",
            "unknown key",
        ),
        (
            lambda t: t.replace("azure-gpt4-turbo: 30", "azure-gpt4-turbo: -5"),
            "weights.gpt-4-turbo.azure-gpt4-turbo",
            "greater than or equal to 0",
        ),
        (
            lambda t: t.replace("openai-gpt4o-mini: 0}", "nope: 0}"),
            "weights.llama-3.1-8b-instruct.nope",
            "names no deployment",
        ),
        (
            lambda t: t.replace("${ANTHROPIC_API_KEY}", "${MISSING_VAR}"),
            "deployments.anthropic-claude-3-opus.api_key",
            "MISSING_VAR is not set",
        ),
        (
            lambda t: t.replace("strategy: weighted", "strategy: fastest"),
            "routing.strategy",
            "weighted",
        ),
        (
            lambda t: t.replace("provider: vllm", "provider: bedrock"),
            "deployments.vllm-local-llama-3-1-8b.provider",
            "openai",
        ),
        (
            lambda t: t.replace(
                "circuit_breaker_error_rate: 0.25", "circuit_breaker_error_rate: 1.5"
            ),
            "routing.circuit_breaker_error_rate",
            "less than or equal to 1",
        ),
        (
            lambda t: t.replace(', api_base: "http://vllm-engine:8000/v1"', ""),
            "deployments.vllm-local-llama-3-1-8b.api_base",
            "required",
        ),
        (
            lambda t: t.replace('"http://vllm-engine:8000/v1"', '"vllm-engine:8000"'),
            "deployments.vllm-local-llama-3-1-8b.api_base",
            "http://",
        ),
        (lambda t: "- just\n- a list\n", "", "mapping"),
    ],
)
def test_bad_config_names_file_key_and_reason(mutate, key, reason):
    with pytest.raises(ConfigError) as caught:
        parse_config(mutate(RUNBOOK_SHAPED), "router.yaml", ENV)
    message = str(caught.value)
    assert message.startswith("router.yaml: ")
    assert caught.value.key == key
    assert reason in message
    assert "SECRET" not in message


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(caught.value)
    assert "cannot read" in str(caught.value)
