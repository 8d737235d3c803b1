"""The configuration schema, shaped like the runbook's ``litellm_router.yaml``.

The runbook's emergency patches must load as written, so the top-level keys are the runbook's:
``routing`` (strategy, timeouts, breaker sensitivity), ``deployments`` (one entry per upstream)
and ``weights`` (a model group is a key; its deployments and their traffic shares beneath).
Everything is validated once, at load time; the request path only reads these frozen values.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = [
    "Config",
    "DeploymentConfig",
    "ProviderName",
    "RoutingConfig",
    "ServerConfig",
    "Strategy",
]

ProviderName = Literal["openai", "vllm", "azure", "anthropic"]
Strategy = Literal["weighted"]


Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoutingConfig(_Frozen):
    """How the router picks and guards deployments; defaults for every deployment."""

    strategy: Strategy = "weighted"
    timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    circuit_breaker_error_rate: float = Field(default=0.25, gt=0, le=1)
    cooldown_s: float = Field(default=60.0, gt=0)


class DeploymentConfig(_Frozen):
    """One upstream: a provider, the model it serves, where it lives and how to authenticate."""

    provider: ProviderName
    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    api_version: str | None = None
    azure_deployment: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    drop_unsupported_params: bool = False

    @field_validator("api_base")
    @classmethod
    def _api_base_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    def effective_api_base(self) -> str:
        """The provider's public endpoint when the config leaves ``api_base`` out."""
        if self.api_base:
            return self.api_base.rstrip("/")
        if self.provider == "openai":
            return "https://api.openai.com/v1"
        if self.provider == "anthropic":
            return "https://api.anthropic.com"
        raise ValueError(f"provider {self.provider!r} needs api_base")


class ServerConfig(_Frozen):
    """Listener settings; the command line overrides host and port."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)


class Config(_Frozen):
    """A whole, validated RouteGuard configuration."""

    server: ServerConfig = ServerConfig()
    routing: RoutingConfig = RoutingConfig()
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict)
    weights: dict[str, dict[str, Weight]] = Field(default_factory=dict)

    def reference_problems(self) -> list[tuple[str, str]]:
        """Cross-references the schema alone cannot check, as ``(key path, reason)`` pairs."""
        problems: list[tuple[str, str]] = []
        for group, members in self.weights.items():
            if not members:
                problems.append((f"weights.{group}", "a model group needs at least one deployment"))
            for name in members:
                if name not in self.deployments:
                    problems.append(
                        (f"weights.{group}.{name}", "names no deployment defined under deployments")
                    )
        for name, deployment in self.deployments.items():
            if deployment.api_base is None and deployment.provider in ("vllm", "azure"):
                problems.append(
                    (f"deployments.{name}.api_base", f"required for provider {deployment.provider}")
                )
        return problems
