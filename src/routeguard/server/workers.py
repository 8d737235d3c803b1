"""``serve --workers N``: the workers of one replica behave as one router.

The parent creates a private directory (mode 0700) for the group. Two things live there:

* **Metrics.** Each worker also listens on a private loopback port, written to
  ``worker-<pid>.port``, that serves its own exposition. Whichever worker a scrape reaches
  fetches the others' and answers the merged total (:mod:`routeguard.observability.aggregate`),
  so counters are the group's and only grow. A worker that does not answer in time counts with
  its last exposition, so a slow worker cannot make a counter go backwards.
* **Shared state.** With ``redis:`` configured the workers are ordinary fleet members. Without
  it, the parent starts a private ``redis-server`` on a unix socket in the directory (no TCP
  port, no persistence) and the workers use it: one sync mechanism, the fleet's, tested once,
  instead of a second one for workers only. Without ``redis-server`` on PATH the workers' breakers
  and weights stay per worker, and start-up says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST

from routeguard.net.server import HttpServer, Request, Response
from routeguard.observability.aggregate import merge_expositions

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["WorkerGroup", "WorkerMetrics"]

log = logging.getLogger("routeguard.workers")

_PEER_TIMEOUT_S = 1.0
WORKER_HEADER = "x-routeguard-worker"


class WorkerGroup:
    """The parent's side: the private directory and, when needed, the private Redis."""

    def __init__(self, need_redis: bool) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="routeguard-workers-"))
        os.chmod(self.dir, 0o700)
        self.redis_url: str | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        if need_redis:
            self._start_redis()

    def _start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            log.warning(
                "no redis: section and no redis-server on PATH: breakers, weights and admin "
                "actions are per worker (metrics are still aggregated)"
            )
            return
        socket_path = self.dir / "redis.sock"
        self._redis = subprocess.Popen(
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if self._redis.poll() is not None or time.monotonic() > deadline:
                log.warning("the workers' private redis-server did not start; state is per worker")
                self._redis = None
                return
            time.sleep(0.02)
        self.redis_url = f"unix://{socket_path}"

    def close(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._redis.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class WorkerMetrics:
    """A worker's side: its private exposition endpoint and the merged ``/metrics``."""

    def __init__(self, app: RouteGuardApp, directory: Path) -> None:
        self.app = app
        self.dir = directory
        self.server = HttpServer(self._local)
        self._last: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._port_file = directory / f"worker-{os.getpid()}.port"

    async def start(self) -> None:
        port = await self.server.start("127.0.0.1", 0)
        partial = self._port_file.with_suffix(".tmp")
        partial.write_text(str(port))
        partial.replace(self._port_file)  # readers never see a half-written port
        self.app.routes.table["/metrics"] = {"GET": self.metrics}

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            self._port_file.unlink()
        await self.server.close(1.0)
        if self._session is not None:
            await self._session.close()

    def _render_local(self) -> str:
        self.app.reporter.refresh(self.app.router)
        return self.app.metrics.render()[0].decode()

    async def _local(self, request: Request) -> Response:
        return Response(200, self._render_local().encode(), content_type=CONTENT_TYPE_LATEST)

    async def _fetch(self, port_file: Path) -> str | None:
        try:
            port = int(await asyncio.to_thread(port_file.read_text))
        except (OSError, ValueError):
            return self._last.get(port_file.name)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_PEER_TIMEOUT_S)
            )
        try:
            async with self._session.get(f"http://127.0.0.1:{port}/") as answer:
                text = await answer.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return self._last.get(port_file.name)
        self._last[port_file.name] = text
        return text

    async def metrics(self, request: Request) -> Response:
        peers = [p for p in self.dir.glob("worker-*.port") if p != self._port_file]
        fetched = await asyncio.gather(*(self._fetch(p) for p in peers))
        texts = [self._render_local(), *(t for t in fetched if t is not None)]
        # A worker that is gone still counts with its last exposition: totals never shrink.
        current = {p.name for p in peers}
        texts += [text for name, text in self._last.items() if name not in current]
        body = merge_expositions(texts)
        headers = [(WORKER_HEADER, str(os.getpid()))]
        return Response(200, body, headers, content_type=CONTENT_TYPE_LATEST)
