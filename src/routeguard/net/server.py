"""A lean HTTP/1.1 server on asyncio (uvloop) with httptools' parser.

The router's own overhead is the product, so the server is one level below a framework: the
kept ``httptools`` parser (the one uvicorn uses) does the protocol work, and this module only
frames requests for a single handler coroutine and writes its answer. What it guarantees:

* keep-alive and pipelined requests are answered in order, one handler at a time per connection;
* a body over ``max_body_bytes`` is refused with 413 before it is buffered;
* streaming answers use chunked transfer encoding and respect the socket's write backpressure;
* when the client goes away, the running handler is cancelled, so the upstream call it awaits is
  cancelled too (no orphaned provider requests burning tokens);
* ``close()`` stops accepting, lets in-flight requests finish, then closes idle connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast

import httptools
import orjson

from routeguard.wire.errors import error_envelope

__all__ = [
    "Handler",
    "HttpServer",
    "Request",
    "Response",
    "StreamingResponse",
]

log = logging.getLogger("routeguard.server")


@dataclass(slots=True)
class Request:
    """One parsed request. Header names are lower-case; the last value of a repeated one wins."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Response:
    """A complete answer, sent with ``content-length``."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


@dataclass(slots=True)
class StreamingResponse:
    """An answer sent piece by piece with chunked transfer encoding.

    ``chunks`` is consumed as it yields; it is closed (``aclose``) whether the stream ends, fails
    or the client disconnects, so the producer can release its upstream connection.
    """

    status: int
    chunks: AsyncIterator[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/event-stream"


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]

# Requests parsed ahead of the one being answered, per connection, before reading pauses.
_MAX_PIPELINED = 16

_STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} Status\r\n".encode("latin-1")


def _head(
    status: int, content_type: str, headers: list[tuple[str, str]], keep_alive: bool
) -> list[bytes]:
    parts = [_status_line(status), b"content-type: ", content_type.encode("latin-1"), b"\r\n"]
    for name, value in headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    return parts


_ERROR_BODIES = {
    400: orjson.dumps(error_envelope("Malformed HTTP request", "invalid_request_error")),
    413: orjson.dumps(
        error_envelope("Request body too large", "invalid_request_error", code="request_too_large")
    ),
    500: orjson.dumps(error_envelope("Internal server error", "api_error")),
}


class _TickWriter:
    """Coalesces a stream's writes made within one event-loop tick into one ``write``.

    The head, the first chunk (the router has it in hand before the head goes out), and, when
    the upstream sent its whole answer at once, every chunk and the terminator all arrive in
    the same tick: one system call instead of three or more. Pending bytes go out when the
    producer next waits (a ``call_soon`` callback) or at the end, so a chunk is never held
    back while the stream waits for the next one.
    """

    __slots__ = ("_conn", "_parts", "_scheduled")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self._parts: list[bytes] = []
        self._scheduled = False

    def add(self, data: bytes) -> None:
        self._parts.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._conn._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        parts = self._parts
        if not parts:
            return
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        transport = self._conn._transport
        if transport is not None and not self._conn._closed:
            transport.write(data)


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and runs the handler for each, in order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._loop = server.loop
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._queue: deque[tuple[Request, bool]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._reading_paused = False
        self._idle_handle: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server.connections.add(self)
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.connections.discard(self)
        if not self._server.connections:
            self._server.drained.set()
        self._writable.set()
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400)
        except httptools.HttpParserError:
            self._reject(413 if self._too_large else 400)

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._server.max_body_bytes:
            self._too_large = True
            raise httptools.HttpParserError("body too large")
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport:
            # curl asks before sending a body over 1 KiB; without an answer it waits a second.
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._server.max_body_bytes:
            self._too_large = True
            raise httptools.HttpParserError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        path, _, query = self._url.decode("latin-1").partition("?")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(self._parser.get_method().decode(), path, query, self._headers, body)
        self._queue.append((request, bool(self._parser.should_keep_alive())))
        if len(self._queue) >= _MAX_PIPELINED and self._transport is not None:
            # A client pipelining faster than we answer waits in its socket, not in our memory.
            self._transport.pause_reading()
            self._reading_paused = True
        if self._task is None:
            self._task = self._loop.create_task(self._serve_queue())

    # -- serving -----------------------------------------------------------------------------
    async def _serve_queue(self) -> None:
        try:
            while self._queue and not self._closed:
                request, keep_alive = self._queue.popleft()
                if self._reading_paused and self._transport is not None:
                    self._reading_paused = False
                    self._transport.resume_reading()
                self._server.in_flight += 1
                try:
                    await self._serve_one(request, keep_alive)
                finally:
                    self._server.in_flight -= 1
                if not keep_alive or self._server.closing:
                    self._close()
                    return
        finally:
            self._task = None
            if not self._closed:
                if self._server.closing:
                    self._close()
                else:
                    self._arm_idle_timer()

    async def _serve_one(self, request: Request, keep_alive: bool) -> None:
        try:
            response = await self._server.handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed", extra={"path": request.path})
            response = Response(500, _ERROR_BODIES[500])
        if isinstance(response, Response):
            self._write_response(response, keep_alive)
        else:
            await self._write_stream(response, keep_alive)

    def _write_response(self, response: Response, keep_alive: bool) -> None:
        if self._transport is None or self._closed:
            return
        # Decided as the answer goes out, not when the request came in: an answer finished
        # during a drain must say "connection: close", or the client reuses a socket about to close.
        keep_alive = keep_alive and not self._server.closing
        parts = _head(response.status, response.content_type, response.headers, keep_alive)
        parts.append(b"content-length: %d\r\n\r\n" % len(response.body))
        parts.append(response.body)
        self._transport.write(b"".join(parts))

    async def _write_stream(self, response: StreamingResponse, keep_alive: bool) -> None:
        transport = self._transport
        chunks = response.chunks
        out = _TickWriter(self)
        try:
            if transport is None or self._closed:
                return
            keep_alive = keep_alive and not self._server.closing
            parts = _head(response.status, response.content_type, response.headers, keep_alive)
            parts.append(b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n")
            out.add(b"".join(parts))
            async for chunk in chunks:
                if self._closed:
                    return
                if chunk:
                    out.add(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                if not self._writable.is_set():
                    out.flush()
                    await self._writable.wait()
            out.add(b"0\r\n\r\n")
        finally:
            out.flush()
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def _reject(self, status: int) -> None:
        """Answer a request the parser refused, then drop the connection."""
        if self._transport is not None and not self._closed and self._task is None:
            self._write_response(Response(status, _ERROR_BODIES[status]), keep_alive=False)
        self._close()

    def _arm_idle_timer(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        self._idle_handle = self._loop.call_later(self._server.keep_alive_s, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self._task is None:
            self._close()

    def _close(self) -> None:
        if not self._closed and self._transport is not None:
            self._closed = True
            self._transport.close()

    def shutdown(self) -> None:
        """Close now if idle; otherwise the serving loop closes after the current answer."""
        if self._task is None:
            self._close()


class HttpServer:
    """Serves ``handler`` on a TCP socket until :meth:`close`."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_bytes: int = 10 * 1024 * 1024,
        keep_alive_s: float = 75.0,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.keep_alive_s = keep_alive_s
        self.connections: set[_Connection] = set()
        self.in_flight = 0
        self.closing = False
        self.drained = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Bind and start accepting; returns the bound port (useful with ``port=0``)."""
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _Connection(self), host, port, reuse_port=reuse_port or None, backlog=2048
        )
        sockname = self._server.sockets[0].getsockname()
        return int(sockname[1])

    async def close(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, let in-flight answers finish (up to the timeout), close the rest."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            self.drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), drain_timeout_s)
        for connection in list(self.connections):
            connection._close()
        if self._server is not None:
            await self._server.wait_closed()
