"""Shared test infrastructure.

Servers under test (RouteGuard, the simulator) run on a real event loop in a background
thread and listen on real sockets; tests drive them with ordinary blocking clients such as
the official ``openai`` and ``anthropic`` SDKs, exactly as users do.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvloop

from routeguard.config.loader import parse_config
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import Simulator

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread.

    ``run`` submits a coroutine from the test thread and blocks for its result, so a
    fixture can ``start()`` a server on this loop and a test can talk to it over a socket.
    """

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the loop's thread (for state the loop owns)."""

        async def invoke() -> T:
            return fn(*args)

        return self.run(invoke())

    def close(self) -> None:
        """Cancel what is still running (a simulator handler asleep in a fault), then stop."""

        async def cancel_rest() -> None:
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def simulator(loop_thread: LoopThread) -> Iterator[Simulator]:
    """A provider simulator on a free port, fresh for each test (faults and stats start clean)."""
    sim = Simulator(seed=1234)
    loop_thread.run(sim.start())
    yield sim
    loop_thread.run(sim.stop())


class RouterFactory:
    """Starts RouteGuard apps from YAML text on the loop thread and closes them afterwards."""

    def __init__(self, loop_thread: LoopThread) -> None:
        self.loop_thread = loop_thread
        self.apps: list[RouteGuardApp] = []

    def __call__(self, yaml_text: str, *, seed: int = 7) -> RouteGuardApp:
        app = RouteGuardApp(parse_config(yaml_text, "<test>"), rng=random.Random(seed))
        self.loop_thread.run(app.start("127.0.0.1", 0))
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            self.loop_thread.run(app.close(drain_timeout_s=1))


@pytest.fixture
def start_router(loop_thread: LoopThread) -> Iterator[RouterFactory]:
    factory = RouterFactory(loop_thread)
    yield factory
    factory.close()
