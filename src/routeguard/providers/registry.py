"""Building adapters from configuration: the one place that maps ``provider:`` names to classes."""

from __future__ import annotations

from routeguard.config.schema import DeploymentConfig, RoutingConfig
from routeguard.net.client import Origin, Timeouts, UpstreamPool
from routeguard.providers.anthropic import AnthropicProvider
from routeguard.providers.azure import AzureProvider
from routeguard.providers.base import BatchSettings, Endpoint, Provider
from routeguard.providers.openai import OpenAIProvider

__all__ = ["build_endpoint", "build_provider"]

_ADAPTERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "vllm": OpenAIProvider,
    "azure": AzureProvider,
    "anthropic": AnthropicProvider,
}


def build_endpoint(name: str, config: DeploymentConfig, routing: RoutingConfig) -> Endpoint:
    timeout_s = config.timeout_s or routing.timeout_s
    first_byte_s = config.first_byte_timeout_s or routing.first_byte_timeout_s or timeout_s
    idle_s = config.stream_idle_timeout_s or routing.stream_idle_timeout_s or timeout_s
    connect_s = config.connect_timeout_s or routing.connect_timeout_s
    return Endpoint(
        deployment=name,
        provider=config.provider,
        model=config.model,
        origin=Origin.parse(config.effective_api_base(), config.tls_ca_file),
        api_key=config.api_key.get_secret_value() if config.api_key else None,
        timeouts=Timeouts(
            connect_s=min(connect_s, timeout_s),
            first_byte_s=min(first_byte_s, timeout_s),
            idle_s=idle_s,
            total_s=timeout_s,
        ),
        stream_timeouts=Timeouts(
            connect_s=connect_s,
            first_byte_s=first_byte_s,
            idle_s=idle_s,
            total_s=max(routing.stream_timeout_s, timeout_s),
        ),
        api_version=config.api_version,
        azure_deployment=config.azure_deployment,
        default_max_tokens=config.max_tokens,
        drop_unsupported_params=config.drop_unsupported_params,
        batching=(
            BatchSettings(config.batching.max_batch_size, config.batching.max_wait_ms)
            if config.batching is not None
            else None
        ),
    )


def build_provider(endpoint: Endpoint, pool: UpstreamPool) -> Provider:
    adapter = _ADAPTERS.get(endpoint.provider)
    if adapter is None:
        raise NotImplementedError(f"provider {endpoint.provider!r} is not implemented yet")
    return adapter(endpoint, pool)
