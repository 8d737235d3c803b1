"""Running RouteGuard as a process: event loop, signals, graceful shutdown, worker processes.

``SIGTERM`` and ``SIGINT`` stop accepting new connections and let in-flight requests and streams
finish (up to the drain timeout) before the process exits 0, which is what makes a rolling
restart (the runbook's ``kubectl rollout restart``) lose no request.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from pathlib import Path

import uvloop

from routeguard.config.loader import load_config
from routeguard.server.app import RouteGuardApp

__all__ = ["serve", "serve_forever"]

log = logging.getLogger("routeguard")


async def serve_forever(
    config_path: Path,
    host: str | None,
    port: int | None,
    *,
    reuse_port: bool = False,
    drain_timeout_s: float = 10.0,
) -> None:
    config = load_config(config_path)
    app = RouteGuardApp(config)
    bound = await app.start(host, port, reuse_port=reuse_port)
    log.info("routeguard listening on %s:%d", host or config.server.host, bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("routeguard draining (up to %.0fs)", drain_timeout_s)
        await app.close(drain_timeout_s)


def _worker(config_path: Path, host: str | None, port: int | None, reuse_port: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvloop.run(serve_forever(config_path, host, port, reuse_port=reuse_port))


def serve(config_path: Path, host: str | None, port: int | None, workers: int = 1) -> None:
    """Serve in this process, or in ``workers`` processes sharing the port (``SO_REUSEPORT``)."""
    load_config(config_path)  # fail fast, once, with the config error, before forking
    if workers <= 1:
        _worker(config_path, host, port, False)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(config_path, host, port, True), daemon=False)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()

    def forward(_signum: int, _frame: object) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: each worker drains, then exits

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, lambda *_: None)  # children get SIGINT from the terminal
    for process in processes:
        process.join()
