"""Pooled HTTP/1.1 client for upstream providers, on asyncio with httptools' response parser.

Forwarding is half of the hot path, so the client keeps warm keep-alive connections per origin
and does no work beyond framing: one ``write`` per request, bodies handed over as the parser
yields them. Every wait is bounded by :class:`Timeouts`: connecting, the first byte of the
answer, the gap between body pieces, and the whole exchange. Socket and parser failures are
translated here, once, into :class:`~routeguard.errors.UpstreamError` subclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

from routeguard.errors import (
    UpstreamBadResponseError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
)

__all__ = ["Origin", "Timeouts", "UpstreamPool", "UpstreamResponse"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Bounds for one upstream exchange; ``None`` means unbounded (never used by the router)."""

    connect_s: float = 5.0
    first_byte_s: float = 30.0
    idle_s: float = 30.0
    total_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a deployment lives: scheme, host, port, and the path prefix of its ``api_base``."""

    scheme: str
    host: str
    port: int
    base_path: str
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str, ca_file: str | None = None) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), ca_file)

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


class _Conn(asyncio.Protocol):
    """One upstream connection; carries one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.got_bytes = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.pieces: deque[bytes] = deque()
        self.complete = False
        self.keep_alive = False
        self.error: UpstreamError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.headers_done = False
        # Flow control while a stream is relayed: bytes parsed but not yet taken by the
        # consumer. Past the high-water mark, reading stops, so a client that reads slowly
        # slows the provider down (TCP) instead of growing this buffer.
        self.streaming = False
        self.buffered = 0
        self.paused = False

    def reset(self) -> None:
        self.got_bytes = False
        self.status = 0
        self.headers = {}
        self.pieces.clear()
        self.complete = False
        self.keep_alive = False
        self.error = None
        self.headers_done = False
        self.streaming = False
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.transport.resume_reading()
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            # A body without length ends at EOF; anything else cut short is a failure.
            with contextlib.suppress(httptools.HttpParserError):
                self.parser.feed_data(b"")
            if not self.complete:
                self.error = UpstreamConnectionError("upstream closed the connection mid-answer")
        self._wake()

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = UpstreamBadResponseError(f"malformed HTTP from upstream: {exc}")
            self.close()
        self._wake()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)
        if self.streaming:
            self.buffered += len(body)
            if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
                self.paused = True
                self.transport.pause_reading()

    def take(self) -> bytes:
        """The oldest buffered piece; reading resumes once the buffer has drained enough."""
        piece = self.pieces.popleft()
        self.buffered -= len(piece)
        if self.paused and self.buffered <= _LOW_WATER and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return piece

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = bool(self.parser.should_keep_alive())

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout_s: float, what: str) -> None:
        """Wait for more data (or the end), at most ``timeout_s`` seconds."""
        waiter = self.loop.create_future()
        self.waiter = waiter
        handle = self.loop.call_later(timeout_s, _expire, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self.waiter = None
        if waiter.result() is _EXPIRED:
            raise UpstreamTimeoutError(f"upstream {what} timed out after {timeout_s:g}s")

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


_EXPIRED: Any = object()
# Upstream bytes buffered per relayed stream before reading from the provider pauses.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(_EXPIRED)


class UpstreamResponse:
    """The answer to one exchange. Read it whole (:meth:`read`) or as it comes (:meth:`iter`).

    The connection goes back to the pool only when the body was read to its end; otherwise
    :meth:`close` drops it, which is also how a cancelled stream cancels the upstream request.
    """

    def __init__(
        self, pool: UpstreamPool, origin: Origin, conn: _Conn, deadline: float, timeouts: Timeouts
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._conn = conn
        self._deadline = deadline
        self._timeouts = timeouts
        self._done = False
        self.status = conn.status
        self.headers = conn.headers

    async def read(self) -> bytes:
        conn = self._conn
        try:
            while not conn.complete:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self._remaining(), "answer")
        except BaseException:
            self.close()
            raise
        body = b"".join(conn.pieces)
        conn.pieces.clear()
        self._finish()
        return body

    async def iter(self) -> AsyncIterator[bytes]:
        """Yield body pieces as they arrive, bounded by the idle and total timeouts."""
        conn = self._conn
        conn.streaming = True
        conn.buffered = sum(len(piece) for piece in conn.pieces)
        try:
            while True:
                while conn.pieces:
                    yield conn.take()
                if conn.complete:
                    self._finish()
                    return
                if conn.error is not None:
                    raise conn.error
                remaining = self._remaining()
                await conn.wait(min(self._timeouts.idle_s, remaining), "stream")
        finally:
            if not self._done:
                self.close()

    def _remaining(self) -> float:
        remaining = self._deadline - self._conn.loop.time()
        if remaining <= 0:
            self.close()
            raise UpstreamTimeoutError(
                f"upstream exceeded total timeout {self._timeouts.total_s:g}s"
            )
        return remaining

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._pool._release(self._origin, self._conn)

    def close(self) -> None:
        """Abandon the answer: drop the connection (the upstream sees the request cancelled)."""
        if not self._done:
            self._done = True
            self._conn.close()


class UpstreamPool:
    """Keep-alive connections per origin, shared by every deployment of one process."""

    def __init__(self, *, max_idle_per_origin: int = 256) -> None:
        self._idle: dict[Origin, deque[_Conn]] = {}
        self._max_idle = max_idle_per_origin
        self._ssl: dict[str | None, ssl.SSLContext] = {}
        self._closed = False

    async def request(  # noqa: PLR0917 - positional on purpose: the hot path's one call
        self,
        origin: Origin,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeouts: Timeouts,
    ) -> UpstreamResponse:
        """Send one request; return once the status line and headers have arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeouts.total_s
        head = [f"{method} {origin.base_path}{path} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers)
        head.append(f"content-length: {len(body)}\r\n\r\n")
        payload = "".join(head).encode("latin-1") + body
        for _ in range(2):
            conn = await self._acquire(loop, origin, timeouts.connect_s)
            conn.reset()
            assert conn.transport is not None
            conn.transport.write(payload)
            try:
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    budget = min(timeouts.first_byte_s, deadline - loop.time())
                    if budget <= 0:
                        raise UpstreamTimeoutError(
                            f"upstream first byte timed out after {timeouts.first_byte_s:g}s"
                        )
                    await conn.wait(budget, "first byte")
            except UpstreamConnectionError:
                conn.close()
                # A kept-alive connection the server closed while idle: try once more, fresh.
                if conn.reused and not conn.got_bytes:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            return UpstreamResponse(self, origin, conn, deadline, timeouts)
        raise UpstreamConnectionError("upstream closed the connection")  # pragma: no cover

    async def _acquire(
        self, loop: asyncio.AbstractEventLoop, origin: Origin, connect_s: float
    ) -> _Conn:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                return conn
        try:
            ssl_context = self._ssl_context(origin.ca_file) if origin.scheme == "https" else None
            async with asyncio.timeout(connect_s):
                _, protocol = await loop.create_connection(
                    lambda: _Conn(loop),
                    origin.host,
                    origin.port,
                    ssl=ssl_context,
                    server_hostname=origin.host if ssl_context else None,
                )
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"connecting to upstream timed out after {connect_s:g}s"
            ) from exc
        except OSError as exc:
            raise UpstreamConnectionError(
                f"cannot connect to upstream: {exc.strerror or exc}",
                refused=isinstance(exc, ConnectionRefusedError),
            ) from exc
        return protocol

    def _release(self, origin: Origin, conn: _Conn) -> None:
        if conn.closed or not conn.keep_alive or self._closed:
            conn.close()
            return
        idle = self._idle.setdefault(origin, deque())
        if len(idle) >= self._max_idle:
            conn.close()
            return
        idle.append(conn)

    def _ssl_context(self, ca_file: str | None) -> ssl.SSLContext:
        """Verifying TLS: the system's CAs (``SSL_CERT_FILE`` honoured), plus ``ca_file``."""
        context = self._ssl.get(ca_file)
        if context is None:
            context = ssl.create_default_context()
            if ca_file is not None:
                context.load_verify_locations(cafile=ca_file)
            self._ssl[ca_file] = context
        return context

    async def close(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
