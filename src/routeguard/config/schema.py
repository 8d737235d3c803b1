"""The configuration schema, shaped like the runbook's ``litellm_router.yaml``.

The runbook's emergency patches must load as written, so the top-level keys are the runbook's:
``routing`` (strategy, timeouts, breaker sensitivity), ``deployments`` (one entry per upstream)
and ``weights`` (a model group is a key; its deployments and their traffic shares beneath).
Everything is validated once, at load time; the request path only reads these frozen values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from routeguard.clients.schema import ClientsConfig
from routeguard.config.incidents import IncidentsConfig
from routeguard.config.redis import RedisConfig

__all__ = [
    "AdminConfig",
    "BatchingConfig",
    "Config",
    "DeploymentConfig",
    "HealthCheckConfig",
    "ProviderName",
    "RoutingConfig",
    "ServerConfig",
    "Strategy",
]

ProviderName = Literal["openai", "vllm", "azure", "anthropic"]
Strategy = Literal["weighted", "latency", "least-busy", "cost"]


Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class RoutingConfig(_Frozen):
    """How the router picks and guards deployments; defaults for every deployment."""

    strategy: Strategy = "weighted"
    # Timeouts. timeout_s bounds a whole non-streaming answer and, unless set apart, the wait for
    # the first byte and the gap between stream chunks; streams as a whole get stream_timeout_s.
    timeout_s: Seconds = 30.0
    connect_timeout_s: Seconds = 5.0
    first_byte_timeout_s: Seconds | None = None
    stream_idle_timeout_s: Seconds | None = None
    stream_timeout_s: Seconds = 600.0
    # Retries: on another deployment of the group, with jittered exponential backoff, all within
    # request_timeout_s (attempts and backoff together).
    num_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.05, ge=0)
    retry_backoff_max_s: float = Field(default=1.0, ge=0)
    request_timeout_s: Seconds = 120.0
    # Circuit breakers, per deployment (each may override the rate and cooldown).
    circuit_breaker_error_rate: float = Field(default=0.25, gt=0, le=1)
    circuit_breaker_window_s: Seconds = 30.0
    circuit_breaker_min_requests: int = Field(default=10, ge=1)
    # Failures in a row that open a breaker at once (a window full of old successes hides an
    # outage from the error rate under load).
    circuit_breaker_consecutive_failures: int = Field(default=20, ge=1)
    half_open_probes: int = Field(default=1, ge=1)
    cooldown_s: Seconds = 60.0
    rate_limit_cooldown_s: Seconds = 5.0
    # Capacity: the process-wide cap on requests in flight; past it, fast 503s.
    max_in_flight: int = Field(default=2048, ge=1)
    # latency strategy: choose at random among deployments within this fraction of the fastest.
    latency_buffer: float = Field(default=0.2, ge=0)


class BatchingConfig(_Frozen):
    """Embedding micro-batching for a local (``vllm``) deployment: see providers/batching.py."""

    max_batch_size: int = Field(default=32, ge=2, le=2048)
    max_wait_ms: float = Field(default=5.0, gt=0, le=10_000, allow_inf_nan=False)


class DeploymentConfig(_Frozen):
    """One upstream: a provider, the model it serves, where it lives and how to authenticate."""

    provider: ProviderName
    model: str = Field(min_length=1)
    api_base: str | None = None
    api_key: SecretStr | None = None
    # The key in a file of its own (a Kubernetes Secret mounted as files): read at load, and the
    # config is reloaded when the file changes, so a rotated key needs no restart (scenario 2).
    api_key_file: str | None = None
    timeout_s: Seconds | None = None
    connect_timeout_s: Seconds | None = None
    first_byte_timeout_s: Seconds | None = None
    stream_idle_timeout_s: Seconds | None = None
    circuit_breaker_error_rate: float | None = Field(default=None, gt=0, le=1)
    cooldown_s: Seconds | None = None
    max_parallel_requests: int | None = Field(default=None, ge=1)
    max_queue: int | None = Field(default=None, ge=0)
    queue_timeout_s: Seconds = 5.0
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    input_cost_per_token: float = Field(default=0.0, ge=0)
    output_cost_per_token: float = Field(default=0.0, ge=0)
    # HTTPS to a server whose certificate a private CA signed (an in-cluster vLLM, a proxy):
    # a PEM bundle trusted in addition to the system's.
    tls_ca_file: str | None = None
    api_version: str | None = None
    azure_deployment: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    drop_unsupported_params: bool = False
    batching: BatchingConfig | None = None

    @field_validator("api_base")
    @classmethod
    def _api_base_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> DeploymentConfig:
        if self.api_key_file is not None and self.api_key is not None and not self._from_file:
            raise ValueError("give api_key or api_key_file, not both")
        return self

    # Set by the loader when it filled api_key from api_key_file (not a config key).
    _from_file: bool = PrivateAttr(default=False)

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
    """Listener settings; the command line overrides host and port. Changing these needs a
    restart: a reload keeps the listener it has."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Inbound limits, nginx-style (see net/limits.py): past them, 408/413/414/431 and close.
    header_timeout_s: Seconds = 30.0
    body_timeout_s: Seconds = 30.0
    keep_alive_timeout_s: Seconds = 75.0
    write_timeout_s: Seconds = 60.0
    max_url_bytes: int = Field(default=8 * 1024, ge=64)
    max_header_bytes: int = Field(default=8 * 1024, ge=64)
    max_headers_bytes: int = Field(default=32 * 1024, ge=64)
    max_headers: int = Field(default=100, ge=1)
    max_connections: int = Field(default=10_000, ge=1)
    max_connections_per_client: int | None = Field(default=None, ge=1)
    # Inbound TLS for deployments without an ingress; the files are re-read when they change.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # SIGTERM: stop taking connections, let requests and streams finish for up to this long.
    drain_timeout_s: Seconds = 30.0
    # One structured log line per client request.
    access_log: bool = True
    # Where access lines go (default: stderr). The file is reopened on SIGHUP and whenever
    # its path names another file (logrotate), so rotation loses no line.
    access_log_file: str | None = None
    # Re-read the config file when it changes (a Kubernetes ConfigMap update), checked this often.
    watch_config_s: float = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        for path in (self.tls_cert_file, self.tls_key_file):
            if path is not None and not Path(path).is_file():
                raise ValueError(f"no such file: {path}")
        return self


class AdminConfig(_Frozen):
    """The admin API: bearer tokens by operator name, and the decisions (audit) log.

    With no token configured the admin API refuses everything (403): there is no default token.
    """

    tokens: dict[str, SecretStr] = Field(default_factory=dict)
    audit_log: str = "DECISIONS.log"


class HealthCheckConfig(_Frozen):
    """Active health checks: the router probes deployments whose breaker is not closed, so a
    recovered deployment is noticed without sending it user traffic (``interval_s: 0`` turns
    them off). A probe only ever uses the probe slot the breaker hands out when half-open."""

    interval_s: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    timeout_s: Seconds = 10.0


class Config(_Frozen):
    """A whole, validated RouteGuard configuration."""

    server: ServerConfig = ServerConfig()
    admin: AdminConfig = AdminConfig()
    clients: ClientsConfig | None = None
    incidents: IncidentsConfig = IncidentsConfig()
    routing: RoutingConfig = RoutingConfig()
    health_checks: HealthCheckConfig = HealthCheckConfig()
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict)
    weights: dict[str, dict[str, Weight]] = Field(default_factory=dict)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    context_window_fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    content_policy_fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    # Shared state for a fleet of replicas and workers (routeguard.fleet); absent: an island.
    redis: RedisConfig | None = None

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
        for kind in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            problems.extend(self._fallback_problems(kind, getattr(self, kind)))
        for name, deployment in self.deployments.items():
            ca_file = deployment.tls_ca_file
            if ca_file is not None and not Path(ca_file).is_file():
                problems.append((f"deployments.{name}.tls_ca_file", f"no such file: {ca_file}"))
            if deployment.batching is not None and deployment.provider != "vllm":
                problems.append(
                    (
                        f"deployments.{name}.batching",
                        "embedding batching is for local servers: only provider vllm",
                    )
                )
            if deployment.api_base is None and deployment.provider in ("vllm", "azure"):
                problems.append(
                    (f"deployments.{name}.api_base", f"required for provider {deployment.provider}")
                )
        return problems

    def _fallback_problems(self, kind: str, table: dict[str, list[str]]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for group, targets in table.items():
            if group not in self.weights:
                problems.append((f"{kind}.{group}", "names no model group defined under weights"))
            for index, target in enumerate(targets):
                if target not in self.weights:
                    problems.append(
                        (
                            f"{kind}.{group}[{index}]",
                            f"names no model group {target!r} under weights",
                        )
                    )
                elif target == group:
                    problems.append(
                        (f"{kind}.{group}[{index}]", "a group cannot fall back to itself")
                    )
        cycle = _find_cycle(table)
        if cycle:
            problems.append((f"{kind}.{cycle[0]}", "fallback cycle: " + " -> ".join(cycle)))
        return problems


def _find_cycle(table: dict[str, list[str]]) -> list[str] | None:
    """A fallback cycle (A -> B -> A) as a path, or None; fallbacks are followed transitively."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in table.get(node, []):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in table:
        found = visit(start, [])
        if found and len(found) > 2:
            return found
    return None
