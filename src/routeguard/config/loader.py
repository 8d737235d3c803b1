"""Loading a configuration file: YAML, ``${VAR}`` interpolation, validation, one clear error.

A bad file must stop start-up (or be refused by a reload) with a message an operator can act on
at 3 a.m.: the file, the key path and the reason. The message never contains a secret: values
are not echoed, and environment variables are only named.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from routeguard.config.schema import Config
from routeguard.errors import ConfigError

__all__ = ["interpolate_env", "load_config", "parse_config"]


class _Yaml12Loader(yaml.SafeLoader):
    """YAML with 1.2 scalars: only true/false are booleans, and there are no dates. Under YAML 1.1
    a deployment named ``off`` silently becomes False, and ``api_version: 2024-10-21`` a date."""


_YAML11_ONLY = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML11_ONLY]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate the file at ``path``; raise :class:`ConfigError`."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read file: {exc.strerror}") from exc
    return parse_config(text, name, env)


def parse_config(text: str, name: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    """Validate configuration ``text``; ``name`` is what error messages call the file."""
    try:
        raw = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(name, "", f"YAML syntax error {where}: {problem}".strip()) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(name, "", "the top level must be a mapping of keys")
    raw = interpolate_env(raw, os.environ if env is None else env, name)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(name, key, _reason(first["type"], first["msg"])) from None
    problems = config.reference_problems()
    if problems:
        key, reason = problems[0]
        raise ConfigError(name, key, reason)
    return read_key_files(config, name)


def read_key_files(config: Config, name: str) -> Config:
    """Fill ``api_key`` from each deployment's ``api_key_file`` (relative paths: from the config
    file's folder). The key is stripped of surrounding white space, as ``kubectl create secret
    --from-file`` and ``echo`` leave a newline."""
    base = _base_dir(name)
    changed = {}
    for dep_name, deployment in config.deployments.items():
        if deployment.api_key_file is None:
            continue
        key = f"deployments.{dep_name}.api_key_file"
        path = base / deployment.api_key_file
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(name, key, f"cannot read {path}: {reason}") from None
        if not secret:
            raise ConfigError(name, key, f"{path} is empty")
        filled = deployment.model_copy(update={"api_key": SecretStr(secret)})
        filled._from_file = True
        changed[dep_name] = filled
    if not changed:
        return config
    return config.model_copy(update={"deployments": {**config.deployments, **changed}})


def _base_dir(name: str) -> Path:
    """Where relative paths in a config point from: its file's folder (text: the cwd)."""
    return Path(name).parent if name and not name.startswith("<") else Path.cwd()


def key_file_paths(config: Config, name: str) -> list[Path]:
    """The key files a config reads, so a watcher can reload when a Secret is rotated."""
    base = _base_dir(name)
    return [
        base / d.api_key_file for d in config.deployments.values() if d.api_key_file is not None
    ]


def interpolate_env(node: Any, env: Mapping[str, str], name: str, key: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(node, dict):
        return {
            k: interpolate_env(v, env, name, f"{key}.{k}" if key else str(k))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [interpolate_env(v, env, name, f"{key}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def substitute(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in env:
                return env[var]
            if default is not None:
                return default
            raise ConfigError(name, key, f"environment variable {var} is not set")

        return _ENV_REF.sub(substitute, node)
    return node


def _reason(error_type: str, message: str) -> str:
    if error_type == "extra_forbidden":
        return "unknown key"
    if error_type == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")
