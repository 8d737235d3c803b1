"""The RouteGuard application: configuration, upstream pool, router, metrics and HTTP routes.

Everything a running router needs is built here at start-up and closed at shutdown, and nothing
is global, so two apps can run in one process (tests do exactly that). Per-deployment runtime
state (breakers, limits, latency) lives in a registry that outlives any one configuration, so a
reload or a weight change swaps the router without losing what it learned; requests already in
flight finish on the router they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from routeguard import __version__
from routeguard.clients import ClientGuard
from routeguard.config.loader import key_file_paths, load_config
from routeguard.config.schema import Config
from routeguard.errors import ConfigError, InvalidRequestError
from routeguard.fleet import Fleet
from routeguard.net.client import UpstreamPool
from routeguard.observability.access import AccessLog
from routeguard.observability.audit import AuditLog
from routeguard.observability.http_metrics import HttpMetrics
from routeguard.observability.metrics import RouterMetrics
from routeguard.observability.reporter import Reporter
from routeguard.observability.windows import TrafficWindows
from routeguard.ops.health import HealthMonitor
from routeguard.ops.probe import HealthChecker, Prober
from routeguard.ops.rollouts import RolloutManager
from routeguard.resilience import BreakerState, Clock, InFlightLimit, monotonic
from routeguard.routing.groups import build_groups
from routeguard.routing.router import Router, RouterSettings
from routeguard.routing.runtime import RuntimeRegistry
from routeguard.routing.strategies import build_strategy
from routeguard.server.admin_api import AdminGuard
from routeguard.server.listening import build_http_server
from routeguard.server.routes import Routes

__all__ = ["RouteGuardApp"]

log = logging.getLogger("routeguard.app")

Weights = dict[str, dict[str, float]]


class RouteGuardApp:
    """A configured router, ready to serve on a socket."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: str | Path | None = None,
        rng: random.Random | None = None,
        clock: Clock = monotonic,
        registry: CollectorRegistry | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.version = __version__
        self.started_at = time.time()
        self.clock = clock
        self.rng = rng or random.Random()
        self.config_path = Path(config_path) if config_path is not None else None
        self.pool = UpstreamPool()
        self.metrics = RouterMetrics(registry or CollectorRegistry(), version=__version__)
        self.runtimes = RuntimeRegistry(clock, self._on_transition)
        self.access_log = access_log or AccessLog()
        self.access_log.enabled = config.server.access_log
        # What the router knows of its last 15 minutes without a Prometheus: status, incidents,
        # rollout guard rails and the console read it.
        self.windows = TrafficWindows(clock)
        self.reporter = Reporter(self.metrics, self.runtimes, self.access_log, self.windows)
        self.in_flight = InFlightLimit(config.routing.max_in_flight)
        self.weight_overrides: Weights = {}
        # Subsystems (fleet, rollouts, incidents, client keys) add a named section to
        # ``GET /admin/status`` here at start-up, so the status view never imports them.
        self.status_sections: dict[str, Callable[[], object]] = {}
        # One admin authentication for every admin area, reading the current tokens (a reload
        # that changes admin.tokens takes effect at once).
        self.admin_guard = AdminGuard(lambda: self.config.admin.tokens)
        # Shared state with the other replicas and workers; built in start() when configured.
        self.fleet: Fleet | None = None
        # Incident class (router_incident_class), incidents and their reports (issue 10).
        self.health = HealthMonitor(self)
        self.config = config
        self.config_version = _fingerprint(config)
        self.router = self._build_router(config)
        self.audit_log = AuditLog(config.admin.audit_log)
        self.clients = ClientGuard(self.metrics.registry, clock=clock)
        _configure_clients(self.clients, config, config_path)
        self.status_sections["keys"] = self.clients.status_section
        self.prober = Prober(self)
        self.health_checks = HealthChecker(self, self.prober)
        self.rollouts = RolloutManager(self)
        self.status_sections["rollouts"] = self.rollouts.status_section
        self.status_sections["health_checks"] = self.health_checks.status_section
        self.routes = Routes(self)
        self.http_metrics = HttpMetrics(self.metrics.registry)
        self.server = build_http_server(self.routes.dispatch, config.server, self.http_metrics)
        self.port = 0
        self.ready = False
        self.draining = False
        self._watcher: asyncio.Task[None] | None = None
        self._file_state = self._watched_state()

    # -- building ----------------------------------------------------------------------------
    def _on_transition(self, name: str, old: BreakerState, new: BreakerState, reason: str) -> None:
        self.reporter.breaker_transition(name, old, new, reason)
        if self.fleet is not None:
            self.fleet.breaker_transition(name, new, reason)

    def _build_router(self, config: Config) -> Router:
        self.runtimes.sync(config)
        router = Router(
            build_groups(config, self.pool, self.runtimes, self._effective(config)),
            build_strategy(config.routing.strategy, self.rng, config.routing.latency_buffer),
            RouterSettings.from_config(config),
            hooks=self.reporter,
            clock=self.clock,
            rng=self.rng,
        )
        self.reporter.set_groups(set(router.groups))
        return router

    def _effective(self, config: Config) -> Weights:
        weights = {group: dict(members) for group, members in config.weights.items()}
        for group, members in self.weight_overrides.items():
            if group in weights:
                weights[group].update(members)
        return weights

    def effective_weights(self) -> Weights:
        return self._effective(self.config)

    # -- weights -----------------------------------------------------------------------------
    def validate_weights(self, update: Mapping[str, object], *, force: bool) -> Weights:
        """Check a weights update (the runbook's shape); return it merged per group.

        Members left out of a group keep their current effective weight.
        """
        current = self.effective_weights()
        merged: Weights = {}
        for group, members in update.items():
            if group not in current:
                raise InvalidRequestError(f"weights.{group}: unknown model group.")
            if not isinstance(members, dict) or not members:
                raise InvalidRequestError(f"weights.{group}: expected {{deployment: weight}}.")
            new = dict(current[group])
            for name, weight in members.items():
                if name not in new:
                    raise InvalidRequestError(
                        f"weights.{group}.{name}: not a deployment of this model group "
                        f"(members: {', '.join(new)})."
                    )
                if isinstance(weight, bool) or not isinstance(weight, int | float):
                    raise InvalidRequestError(f"weights.{group}.{name}: weight must be a number.")
                if weight < 0:
                    raise InvalidRequestError(f"weights.{group}.{name}: weight must be >= 0.")
                new[name] = float(weight)
            if not force and not any(w > 0 for w in new.values()):
                raise InvalidRequestError(
                    f"weights.{group}: no deployment would keep a positive weight, so the group "
                    'would refuse all traffic; send "force": true to do it anyway.'
                )
            merged[group] = new
        return merged

    def set_weight_overrides(self, overrides: Weights, *, replace: bool = False) -> None:
        self.weight_overrides = (
            dict(overrides) if replace else {**self.weight_overrides, **overrides}
        )
        self.router = self._build_router(self.config)

    # -- reload ------------------------------------------------------------------------------
    def apply_config(self, config: Config) -> str:
        """Switch to ``config``; requests in flight finish on the router they started with."""
        old = self.config
        kept = {
            group: members
            for group, members in self.weight_overrides.items()
            if config.weights.get(group) == old.weights.get(group) and group in config.weights
        }
        dropped = set(self.weight_overrides) - set(kept)
        if dropped:
            log.info(
                "weight overrides dropped: the file changed these groups' weights",
                extra={"groups": sorted(dropped)},
            )
        if config.server != old.server:
            log.warning("server settings changed; they take effect after a restart")
        _configure_clients(self.clients, config, self.config_path)
        previous = (self.weight_overrides, self.router)
        self.weight_overrides = kept
        try:
            router = self._build_router(config)
        except Exception:
            self.weight_overrides, self.router = previous
            self.runtimes.sync(old)
            raise
        self.config, self.router = config, router
        self._forgive_rotated_keys(old, config)
        self.in_flight.resize(config.routing.max_in_flight)
        self.access_log.enabled = config.server.access_log
        self.audit_log = AuditLog(config.admin.audit_log)
        self.config_version = _fingerprint(config)
        return self.config_version

    def _forgive_rotated_keys(self, old: Config, new: Config) -> None:
        """A deployment whose key changed starts with a closed breaker: it most likely opened
        on the old key's 401s (runbook scenario 2), and the new key deserves traffic now rather
        than after the cooldown."""
        for name, deployment in new.deployments.items():
            before = old.deployments.get(name)
            if before is None or _secret(before.api_key) == _secret(deployment.api_key):
                continue
            runtime = self.runtimes.deployments.get(name)
            if runtime is not None and runtime.breaker.state is not BreakerState.CLOSED:
                runtime.breaker.reset()
                log.info("api key changed: breaker reset", extra={"deployment": name})

    def reload(self, source: str) -> str:
        """Re-read the config file; a bad file is rejected and the old config keeps serving."""
        if self.config_path is None:
            raise ConfigError("<none>", "", "this router was not started from a config file")
        try:
            config = load_config(self.config_path)
            version = self.apply_config(config)
        except ConfigError as exc:
            self.metrics.config_reload(False)
            # This file has had its answer: the watcher must not reject (and count) it again.
            self._file_state = self._watched_state()
            log.error("config reload rejected: %s", exc.message, extra={"source": source})
            raise
        except Exception as exc:
            self.metrics.config_reload(False)
            log.exception("config reload failed", extra={"source": source})
            raise ConfigError(str(self.config_path), "", f"cannot apply: {exc}") from exc
        self.metrics.config_reload(True)
        self._file_state = self._watched_state()
        log.info("config reloaded", extra={"source": source, "config_version": version})
        return version

    def _watched_state(self) -> tuple[object, ...] | None:
        """The config file's identity and those of the key files it reads (rotated Secrets)."""
        if self.config_path is None:
            return None
        main = _file_state(self.config_path)
        if main is None:
            return None
        keys = [*key_file_paths(self.config, str(self.config_path)), *self.clients.hash_files()]
        return (main, *(_file_state(path) for path in keys))

    async def _watch(self, interval_s: float) -> None:
        """Reload when the file changes: a ConfigMap update swaps the file behind a symlink."""
        while True:
            await asyncio.sleep(interval_s)
            state = self._watched_state()
            if state is None or state == self._file_state:
                continue
            self._file_state = state
            with contextlib.suppress(ConfigError):
                self.reload(source="file-watch")

    def audit(self, operator: str, action: str, **fields: str | int | float) -> None:
        try:
            self.audit_log.append(operator, action, **fields)
        except OSError:
            log.exception("cannot write the decisions log", extra={"action": action})

    # -- serving -----------------------------------------------------------------------------
    async def start(
        self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False
    ) -> int:
        """Start listening; returns the bound port."""
        bind_host = self.config.server.host if host is None else host
        bind_port = self.config.server.port if port is None else port
        if self.config.redis is not None and self.fleet is None:
            self.fleet = Fleet(self.config.redis, self, self.metrics.registry)
            self.clients.use_counters(self.fleet.key_usage)  # client-key limits fleet-wide
            await self.fleet.start()
            self.status_sections["fleet"] = self.fleet.status_section
        self.port = await self.server.start(bind_host, bind_port, reuse_port=reuse_port)
        self.reporter.refresh(self.router)
        interval = self.config.server.watch_config_s
        if self.config_path is not None and interval > 0:
            self._watcher = asyncio.create_task(self._watch(interval))
        self.health_checks.start()
        self.health.start()
        self.ready = True
        return self.port

    async def close(self, drain_timeout_s: float | None = None) -> None:
        """Drain: readiness turns 503, new connections are refused, in-flight answers finish."""
        self.draining = True
        await self.rollouts.close()
        await self.health_checks.close()
        await self.health.stop()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        timeout = self.config.server.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        await self.server.close(timeout)
        if isinstance(self.fleet, Fleet):  # close what start() built, not a test's stand-in
            await self.fleet.close()
        await self.pool.close()
        self.access_log.flush()


def _configure_clients(guard: ClientGuard, config: Config, path: str | Path | None) -> None:
    try:
        guard.configure(config.clients)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path or "<config>"), "clients", str(exc)) from exc


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def _fingerprint(config: Config) -> str:
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()
    return digest[:12]


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)  # follows the symlink a ConfigMap or Secret mount swaps
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
