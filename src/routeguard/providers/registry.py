"""Building adapters from configuration: the one place that maps ``provider:`` names to classes."""

from __future__ import annotations

from routeguard.config.schema import DeploymentConfig, RoutingConfig
from routeguard.net.client import Origin, Timeouts, UpstreamPool
from routeguard.providers.base import Endpoint, Provider
from routeguard.providers.openai import OpenAIProvider

__all__ = ["build_endpoint", "build_provider"]

_ADAPTERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "vllm": OpenAIProvider,
}


def build_endpoint(name: str, config: DeploymentConfig, routing: RoutingConfig) -> Endpoint:
    timeout_s = config.timeout_s or routing.timeout_s
    return Endpoint(
        deployment=name,
        provider=config.provider,
        model=config.model,
        origin=Origin.parse(config.effective_api_base()),
        api_key=config.api_key.get_secret_value() if config.api_key else None,
        timeouts=Timeouts(
            connect_s=min(routing.connect_timeout_s, timeout_s),
            first_byte_s=timeout_s,
            idle_s=timeout_s,
            total_s=timeout_s,
        ),
        api_version=config.api_version,
        azure_deployment=config.azure_deployment,
        default_max_tokens=config.max_tokens,
        drop_unsupported_params=config.drop_unsupported_params,
    )


def build_provider(endpoint: Endpoint, pool: UpstreamPool) -> Provider:
    adapter = _ADAPTERS.get(endpoint.provider)
    if adapter is None:
        raise NotImplementedError(f"provider {endpoint.provider!r} is not implemented yet")
    return adapter(endpoint, pool)
