"""The RouteGuard application: configuration, upstream pool, router and HTTP routes in one object.

Everything a running router needs is built here at start-up and closed at shutdown, and nothing
is global, so two apps can run in one process (tests do exactly that).
"""

from __future__ import annotations

import random
import time

from routeguard import __version__
from routeguard.config.schema import Config
from routeguard.net.client import UpstreamPool
from routeguard.net.server import HttpServer, Request, Response, StreamingResponse
from routeguard.routing.groups import build_groups
from routeguard.routing.router import Router
from routeguard.routing.strategies import WeightedStrategy
from routeguard.server.routes import Routes

__all__ = ["RouteGuardApp"]


class RouteGuardApp:
    """A configured router, ready to serve on a socket."""

    def __init__(self, config: Config, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.started_at = time.time()
        self.pool = UpstreamPool()
        self.router = Router(build_groups(config, self.pool), WeightedStrategy(rng))
        self.routes = Routes(self.router, version=__version__, started_at=self.started_at)
        self.server = HttpServer(self.handle, max_body_bytes=config.server.max_body_bytes)
        self.port = 0

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
