"""The RouteGuard application: configuration, upstream pool, router and HTTP routes in one object.

Everything a running router needs is built here at start-up and closed at shutdown, and nothing
is global, so two apps can run in one process (tests do exactly that). Per-deployment runtime
state (breakers, limits, latency) lives in a registry that outlives any one configuration.
"""

from __future__ import annotations

import random
import time

from routeguard import __version__
from routeguard.config.schema import Config
from routeguard.net.client import UpstreamPool
from routeguard.net.server import HttpServer, Request, Response, StreamingResponse
from routeguard.resilience import Clock, InFlightLimit, monotonic
from routeguard.routing.groups import build_groups
from routeguard.routing.router import Router, RouterHooks, RouterSettings
from routeguard.routing.runtime import RuntimeRegistry, TransitionListener
from routeguard.routing.strategies import build_strategy
from routeguard.server.routes import Routes

__all__ = ["RouteGuardApp"]


class RouteGuardApp:
    """A configured router, ready to serve on a socket."""

    def __init__(
        self,
        config: Config,
        *,
        rng: random.Random | None = None,
        clock: Clock = monotonic,
        hooks: RouterHooks | None = None,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.started_at = time.time()
        self.clock = clock
        self.rng = rng or random.Random()
        self.hooks = hooks
        self.pool = UpstreamPool()
        self.runtimes = RuntimeRegistry(clock, on_transition)
        self.in_flight = InFlightLimit(config.routing.max_in_flight)
        self.config = config
        self.router = self._build_router(config)
        self.routes = Routes(self, version=__version__)
        self.server = HttpServer(self.handle, max_body_bytes=config.server.max_body_bytes)
        self.port = 0

    def _build_router(self, config: Config) -> Router:
        self.runtimes.sync(config)
        return Router(
            build_groups(config, self.pool, self.runtimes),
            build_strategy(config.routing.strategy, self.rng, config.routing.latency_buffer),
            RouterSettings.from_config(config),
            hooks=self.hooks,
            clock=self.clock,
            rng=self.rng,
        )

    async def handle(self, request: Request) -> Response | StreamingResponse:
        return await self.routes.dispatch(request)

    async def start(
        self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False
    ) -> int:
        """Start listening; returns the bound port."""
        bind_host = self.config.server.host if host is None else host
        bind_port = self.config.server.port if port is None else port
        self.port = await self.server.start(bind_host, bind_port, reuse_port=reuse_port)
        return self.port

    async def close(self, drain_timeout_s: float = 10.0) -> None:
        await self.server.close(drain_timeout_s)
        await self.pool.close()
