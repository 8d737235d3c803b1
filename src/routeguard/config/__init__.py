"""Configuration: the YAML schema, loading and validation."""

from routeguard.config.loader import interpolate_env, load_config, parse_config
from routeguard.config.schema import Config, DeploymentConfig, RoutingConfig, ServerConfig

__all__ = [
    "Config",
    "DeploymentConfig",
    "RoutingConfig",
    "ServerConfig",
    "interpolate_env",
    "load_config",
    "parse_config",
]
