"""Shared test infrastructure.

Servers under test (RouteGuard, the simulator) run on a real event loop in a background
thread and listen on real sockets; tests drive them with ordinary blocking clients such as
the official ``openai`` and ``anthropic`` SDKs, exactly as users do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvloop

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

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()
