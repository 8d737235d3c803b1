"""Provider keys read from files (Kubernetes Secret mounts), and the errors when they cannot be."""

from __future__ import annotations

from pathlib import Path

import pytest

from routeguard.config.loader import key_file_paths, load_config
from routeguard.errors import ConfigError

CONFIG = """
deployments:
  openai-a: {provider: openai, model: gpt-4-turbo, api_base: "http://127.0.0.1:1/v1", api_key_file: secrets/openai}
weights:
  gpt-4-turbo: {openai-a: 100}
"""


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(text)
    return path


def test_key_read_relative_to_the_config_file_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "openai").write_text("sk-file-key\n")
    config = load_config(write(tmp_path))
    key = config.deployments["openai-a"].api_key
    assert key is not None
    assert key.get_secret_value() == "sk-file-key"
    assert key_file_paths(config, str(tmp_path / "router.yaml")) == [tmp_path / "secrets/openai"]
    assert "sk-file-key" not in config.model_dump_json()


def test_missing_or_empty_key_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path)
    with pytest.raises(ConfigError) as missing:
        load_config(path)
    assert "deployments.openai-a.api_key_file" in str(missing.value)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "openai").write_text("  \n")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(path)


def test_key_and_key_file_together_are_refused(tmp_path: Path) -> None:
    text = CONFIG.replace(
        "api_key_file: secrets/openai", 'api_key: "x", api_key_file: secrets/openai'
    )
    with pytest.raises(ConfigError, match="not both"):
        load_config(write(tmp_path, text))
