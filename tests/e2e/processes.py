"""Real processes and ports for end-to-end tests: ``routeguard`` commands as a user runs them."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

ROUTEGUARD = [sys.executable, "-m", "routeguard.cli"]


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, deadline_s: float = 30) -> None:
    """Wait until ``process`` listens on ``port``; fail at once if it exits instead."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


@contextlib.contextmanager
def routeguard(
    *args: str, port: int | None = None, stderr: int | None = subprocess.DEVNULL
) -> Iterator[subprocess.Popen]:
    """Run ``routeguard ARGS`` (text mode); wait for ``port`` if given; kill it afterwards."""
    process = subprocess.Popen(
        [*ROUTEGUARD, *args], stdout=subprocess.DEVNULL, stderr=stderr, text=True
    )
    try:
        if port is not None:
            wait_for_port(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@contextlib.contextmanager
def simulator_process() -> Iterator[int]:
    """``routeguard simulate`` on a free port; yields the port."""
    port = free_port()
    with routeguard("simulate", "--port", str(port), port=port):
        yield port
