"""Many clients at once: concurrent streams, streams held open, idle keep-alive connections.

All three run in the bench process (on the load core) over raw asyncio sockets, reusing the
HTTP framing of :mod:`streaming`, so the only thing between the clock and the bytes is the
socket:

* :func:`run_concurrent_streams`: ``clients`` connections, each sending streams back to back
  for ``duration_s``; per stream the time to the first ``data:`` line and to the end.
* :func:`hold_streams`: open ``count`` streams at once, wait until each has its first event,
  call back (the bench reads the gateway's memory then), and read every stream to its end.
* :func:`hold_idle`: open ``count`` keep-alive connections, send one request on each, keep them
  open and silent, call back, close them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop
from streaming import StreamResult, _Conn, _one, _request

__all__ = ["HoldResult", "hold_idle", "hold_streams", "run_concurrent_streams"]


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def _client(url: str, request: bytes, until: float, result: StreamResult,
                  measure_from: float) -> None:
    conn = _Conn(*_address(url))
    try:
        while time.perf_counter() < until:
            try:
                if await conn.ensure() and result.ttfb_ms:
                    result.reconnects += 1
                ttfb, total, keep = await asyncio.wait_for(_one(conn, request), 30)
            except (OSError, RuntimeError, ValueError, EOFError) as exc:
                result.errors += 1
                result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                conn.close()
                await asyncio.sleep(0.01)
                continue
            if not keep:
                conn.close()
            if time.perf_counter() >= measure_from:
                result.ttfb_ms.append(ttfb)
                result.total_ms.append(total)
    finally:
        conn.close()


async def _concurrent(url: str, model: str, api_key: str, clients: int, duration_s: float,
                      warmup_s: float, max_tokens: int) -> tuple[StreamResult, float]:
    request = _request(url, model, api_key, max_tokens=max_tokens)
    result = StreamResult()
    start = time.perf_counter()
    measure_from = start + warmup_s
    until = measure_from + duration_s
    await asyncio.gather(*(_client(url, request, until, result, measure_from)
                           for _ in range(clients)))
    return result, time.perf_counter() - measure_from


def run_concurrent_streams(url: str, model: str, api_key: str, *, clients: int,
                           duration_s: float, warmup_s: float = 0.5,
                           max_tokens: int = 18) -> tuple[StreamResult, float]:
    """``clients`` keep-alive connections streaming back to back; (result, measured seconds).

    Streams that end within the first ``warmup_s`` are not recorded (connections opening,
    caches warming); a stream that starts inside the window and ends after it is still counted,
    so streams/s is ``len(result.ttfb_ms) / seconds``.
    """
    return uvloop.run(_concurrent(url, model, api_key, clients, duration_s, warmup_s,
                                  max_tokens))


@dataclass
class HoldResult:
    opened: int = 0
    completed: int = 0
    errors: int = 0
    first_error: str = ""
    seconds_to_open: float = 0.0
    seconds_total: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


async def _hold_one(url: str, request: bytes, first: asyncio.Event, opened: list[int],
                    target: int, all_open: asyncio.Event, result: HoldResult,
                    gate: asyncio.Semaphore) -> None:
    host, port = _address(url)
    try:
        async with gate:  # bounded connect rate: a SYN flood would only measure the backlog
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status = await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)
            if b" 200 " not in status:
                writer.close()
                raise ConnectionError(f"answered {status.decode(errors='replace').strip()}")
            await asyncio.wait_for(reader.readuntil(b"data:"), 60)
        opened[0] += 1
        if opened[0] >= target:
            all_open.set()
        await first.wait()
        body = await asyncio.wait_for(_drain(reader), 120)
        if b"data: [DONE]" in body:
            result.completed += 1
        writer.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        # TimeoutError is an OSError; a refused stream ends its task here, open or not.
        result.errors += 1
        result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
        opened[0] += 1
        if opened[0] >= target:
            all_open.set()


async def _drain(reader: asyncio.StreamReader) -> bytes:
    """Read a chunked SSE body to its terminating chunk (the connection stays open)."""
    tail = b""
    while True:
        data = await reader.read(65536)
        if not data:
            return tail
        tail = (tail + data)[-256:]
        if tail.endswith(b"0\r\n\r\n") and b"[DONE]" in tail:
            return tail


async def _hold(url: str, model: str, api_key: str, count: int,
                on_open: Callable[[], None], open_timeout_s: float) -> HoldResult:
    request = _request(url, model, api_key, max_tokens=18)
    result = HoldResult()
    opened = [0]
    all_open, first = asyncio.Event(), asyncio.Event()
    gate = asyncio.Semaphore(256)
    start = time.perf_counter()
    tasks = [asyncio.create_task(_hold_one(url, request, first, opened, count, all_open, result,
                                           gate)) for _ in range(count)]
    try:
        await asyncio.wait_for(all_open.wait(), open_timeout_s)
    except TimeoutError:
        result.first_error = result.first_error or f"only {opened[0]} of {count} opened in time"
    result.opened = opened[0] - result.errors
    result.seconds_to_open = time.perf_counter() - start
    on_open()
    first.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    result.seconds_total = time.perf_counter() - start
    return result


def hold_streams(url: str, model: str, api_key: str, count: int, on_open: Callable[[], None],
                 open_timeout_s: float = 120.0) -> HoldResult:
    """Open ``count`` streams at once; ``on_open()`` runs when all have their first event."""
    return uvloop.run(_hold(url, model, api_key, count, on_open, open_timeout_s))


async def _idle(url: str, model: str, api_key: str, count: int,
                on_open: Callable[[], None]) -> HoldResult:
    host, port = _address(url)
    request = _plain_request(url, model, api_key)
    result = HoldResult()
    writers: list[asyncio.StreamWriter] = []
    gate = asyncio.Semaphore(256)
    start = time.perf_counter()

    async def one() -> None:
        try:
            async with gate:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
            writers.append(writer)
        except (OSError, asyncio.IncompleteReadError, StopIteration) as exc:
            result.errors += 1
            result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"

    await asyncio.gather(*(one() for _ in range(count)))
    result.opened = len(writers)
    result.seconds_to_open = time.perf_counter() - start
    await asyncio.sleep(0.5)  # let the gateway settle (timers, freed request objects)
    on_open()
    for writer in writers:
        writer.close()
    result.seconds_total = time.perf_counter() - start
    return result


def _plain_request(url: str, model: str, api_key: str) -> bytes:
    return _request(url, model, api_key, stream=False)


def hold_idle(url: str, model: str, api_key: str, count: int,
              on_open: Callable[[], None]) -> HoldResult:
    """Open ``count`` keep-alive connections, one answered request each, then leave them idle."""
    return uvloop.run(_idle(url, model, api_key, count, on_open))
