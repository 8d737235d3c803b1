"""A lean HTTP/1.1 server on asyncio (uvloop) with httptools' parser.

The router's own overhead is the product, so the server is one level below a framework: the
kept ``httptools`` parser (the one uvicorn uses) does the protocol work, and this module only
frames requests for a single handler coroutine and writes its answer. What it guarantees:

* keep-alive and pipelined requests are answered in order, one handler at a time per connection;
* every limit of :class:`~routeguard.net.limits.HttpLimits` holds: the URL, each header, all
  headers and their number, and the body (also while a chunked body streams in) are bounded,
  and refused as nginx refuses them (414/431/413) before more than the limit is buffered;
* reading is timed per phase, with one timer per connection: headers must be complete within
  ``header_timeout_s`` of the request's start however slowly they trickle, a body may pause at
  most ``body_timeout_s``, an idle keep-alive connection lives ``keep_alive_s``, and a client
  that stops reading a stream is cut after ``write_timeout_s``;
* ambiguous framing (smuggling) is refused with 400 and the connection closed, never handed
  to the handler: llhttp rejects CL+TE, duplicate lengths, bad chunks, obs-fold, bare LF and
  control characters; this module adds "Transfer-Encoding other than chunked" and chunked
  HTTP/1.0;
* ``Upgrade`` (h2c, websocket) and ``CONNECT`` are answered as plain HTTP/1.1, then closed;
* when the client goes away, the running handler is cancelled, so the upstream call it awaits is
  cancelled too (no orphaned provider requests burning tokens), and the connection drops its
  parser and buffers at once rather than waiting for the cyclic garbage collector;
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

from routeguard.net.limits import HttpLimits, refusal_body
from routeguard.net.listener import Listener, TlsFiles

__all__ = [
    "Handler",
    "HttpLimits",
    "HttpServer",
    "Request",
    "Response",
    "StreamingResponse",
    "TlsFiles",
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

# Where a connection is in reading its current request; each phase has its own deadline.
_IDLE = 0  # between requests on a keep-alive connection: keep_alive_s
_HEADERS = 1  # request line and headers: header_timeout_s from the start
_BODY = 2  # body: body_timeout_s between pieces
_WAITING = 3  # request complete, being answered: no read deadline


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


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the status is on the connection."""


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
        self._limits = server.limits
        self._loop = server.loop
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: str | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._header_bytes = 0
        self._head_bytes = 0  # bytes received while this request's headers were incomplete
        self._body: list[bytes] = []
        self._body_size = 0
        self._refusal: tuple[int, str] | None = None
        self._completed = 0
        self._queue: deque[tuple[Request, bool]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._stopped = False  # no more parsing: an upgrade, or a refusal waiting its turn
        self._refuse_after: int | None = None
        self._reading_paused = False
        self._phase = _HEADERS
        # One lazy timer: moving a deadline later costs an assignment; the timer, when it fires
        # early, re-arms itself for the deadline then in force.
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        server = self._server
        if not server.admit(self, transport.get_extra_info("peername")):
            self._refuse_now(503, "per_client_connections")
            return
        self._set_deadline(self._limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.forget(self)
        self._writable.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._release()

    def _release(self) -> None:
        # The parser holds bound methods of this connection and the connection holds the
        # parser: a cycle only the cyclic GC would free, with the last request's URL, headers
        # and body in it. Break it now, so a closed connection's memory goes back at once.
        self._parser = None
        self._url = b""
        self._headers = {}
        self._body = []
        self._queue.clear()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self._closed or self._stopped:
            return
        completed = self._completed
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
            return
        except httptools.HttpParserError:
            status, reason = self._refusal or (400, "malformed")
            self._refuse_now(status, reason)
            return
        if self._phase == _HEADERS and self._completed == completed:
            # httptools keeps a header that is still arriving to itself, so its size is only
            # known from what came in: every byte since the request began was head.
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_head_bytes:
                self._refuse_now(431, "header_too_large")

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._header_count = 0
        self._header_bytes = 0
        self._head_bytes = 0
        self._body = []
        self._body_size = 0
        if self._phase != _HEADERS:  # a new connection's deadline runs from its accept
            self._phase = _HEADERS
            self._set_deadline(self._limits.header_timeout_s)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url_bytes:
            self._refuse(414, "url_too_long")

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self._limits
        size = len(name) + len(value)
        self._header_count += 1
        self._header_bytes += size
        if self._header_count > limits.max_headers:
            self._refuse(431, "too_many_headers")
        if size > limits.max_header_bytes or self._header_bytes > limits.max_headers_bytes:
            self._refuse(431, "header_too_large")
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        headers = self._headers
        coding = headers.get("transfer-encoding")
        if coding is not None and (
            coding.strip().lower() != "chunked" or self._parser_version() == "1.0"
        ):
            self._refuse(400, "malformed")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._limits.max_body_bytes:
            self._refuse(413, "body_too_large")
        self._phase = _BODY
        self._set_deadline(self._limits.body_timeout_s)
        if headers.get("expect", "").lower() == "100-continue" and self._transport:
            # curl asks before sending a body over 1 KiB; without an answer it waits a second.
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body_bytes:
            self._refuse(413, "body_too_large")
        self._body.append(body)
        self._set_deadline(self._limits.body_timeout_s)

    def on_message_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        self._phase = _WAITING
        self._completed += 1
        path, _, query = self._url.decode("latin-1").partition("?")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(parser.get_method().decode(), path, query, self._headers, body)
        self._body = []
        self._queue.append((request, bool(parser.should_keep_alive())))
        if len(self._queue) >= _MAX_PIPELINED and self._transport is not None:
            # A client pipelining faster than we answer waits in its socket, not in our memory.
            self._transport.pause_reading()
            self._reading_paused = True
        if self._task is None:
            self._task = self._loop.create_task(self._serve_queue())

    def _parser_version(self) -> str:
        return self._parser.get_http_version() if self._parser is not None else "1.1"

    def _refuse(self, status: int, reason: str) -> None:
        """Stop the parser from a callback; ``data_received`` answers ``status``."""
        self._refusal = (status, reason)
        raise _Refused(reason)

    def _upgrade(self) -> None:
        """We speak no other protocol: answer the request as HTTP/1.1, then close.

        What follows an Upgrade request on the wire is the other protocol's bytes, so the
        connection cannot carry another HTTP/1.1 request; reading stops here.
        """
        self._stopped = True
        if self._transport is not None:
            self._transport.pause_reading()
        if not self._queue:
            self._refuse_now(400, "malformed")
            return
        request, _ = self._queue[-1]
        self._queue[-1] = (request, False)

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
            if self._refuse_after is not None and not self._closed:
                self._write_response(
                    Response(self._refuse_after, refusal_body(self._refuse_after)), False
                )
                self._close()
            if not self._closed:
                if self._server.closing:
                    self._close()
                elif self._phase == _WAITING:  # nothing of a next request has arrived yet
                    self._phase = _IDLE
                    self._set_deadline(self._limits.keep_alive_s)

    async def _serve_one(self, request: Request, keep_alive: bool) -> None:
        try:
            response = await self._server.handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed", extra={"path": request.path})
            response = Response(500, refusal_body(500))
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
                    if not await self._wait_writable():
                        return
            out.add(b"0\r\n\r\n")
        finally:
            out.flush()
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _wait_writable(self) -> bool:
        """Wait for a full socket buffer to drain; a client that stops reading is cut off.

        While we wait, nothing more is pulled from the upstream, so the upstream socket fills
        and TCP slows the provider down: memory held per stream stays at the high-water mark.
        """
        try:
            async with asyncio.timeout(self._limits.write_timeout_s):
                await self._writable.wait()
        except TimeoutError:
            self._server.refused("write_timeout")
            self._abort()
            return False
        return not self._closed

    def _refuse_now(self, status: int, reason: str) -> None:
        """Refuse: answer ``status`` and drop the connection.

        Requests parsed before the bad one are still answered first, in order, as nginx does;
        nothing after it is parsed.
        """
        self._server.refused(reason)
        if self._task is not None and not self._closed:
            self._stopped = True
            self._refuse_after = status
            if self._transport is not None:
                self._transport.pause_reading()
            return
        if self._transport is not None and not self._closed:
            self._write_response(Response(status, refusal_body(status)), keep_alive=False)
        self._close()

    # -- deadlines ---------------------------------------------------------------------------
    def _set_deadline(self, seconds: float) -> None:
        """Move the read deadline; the timer is touched only if it would fire too late."""
        deadline = self._loop.time() + seconds
        self._deadline = deadline
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed or self._phase == _WAITING:
            return  # being answered: the serving loop sets the next deadline when it is done
        if self._loop.time() < self._deadline:
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        if self._phase == _IDLE:
            if self._writable.is_set():
                self._close()
            else:
                self._abort()  # the last answer is still unread: do not wait to flush it
        else:
            reason = "header_timeout" if self._phase == _HEADERS else "body_timeout"
            self._refuse_now(408, reason)

    # -- closing -----------------------------------------------------------------------------
    def _close(self) -> None:
        transport = self._transport
        if not self._closed and transport is not None:
            self._closed = True
            transport.close()
            if transport.get_write_buffer_size():
                # close() waits for the buffer to drain; a client that never reads would hold
                # the connection (and its buffer) for ever.
                self._loop.call_later(self._limits.write_timeout_s, self._abort_unflushed)

    def _abort_unflushed(self) -> None:
        if self._parser is not None and self._transport is not None:  # not yet lost
            self._server.refused("write_timeout")
            self._transport.abort()

    def _abort(self) -> None:
        if self._transport is not None:
            self._closed = True
            self._transport.abort()

    def shutdown(self) -> None:
        """Close now if idle; otherwise the serving loop closes after the current answer."""
        if self._task is None:
            self._close()


class HttpServer:
    """Serves ``handler`` on a TCP socket until :meth:`close`."""

    def __init__(
        self,
        handler: Handler,
        limits: HttpLimits | None = None,
        *,
        tls: TlsFiles | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.handler = handler
        self.limits = limits or HttpLimits()
        self.tls = tls
        self.connections: set[_Connection] = set()
        self.per_client: dict[str, int] = {}
        self.in_flight = 0
        self.closing = False
        self.drained = asyncio.Event()
        self._on_refused = on_refused
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    @property
    def max_body_bytes(self) -> int:
        return self.limits.max_body_bytes

    def refused(self, reason: str) -> None:
        if self._on_refused is not None:
            self._on_refused(reason)

    def admit(self, connection: _Connection, peer: object) -> bool:
        """Register a new connection; False when its address already holds its share."""
        self.connections.add(connection)
        limit = self.limits.max_connections_per_client
        if limit is None or not isinstance(peer, tuple):
            return True
        address = str(peer[0])
        connection._peer = address
        count = self.per_client.get(address, 0) + 1
        self.per_client[address] = count
        return count <= limit

    def forget(self, connection: _Connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        if connection._peer is not None:
            left = self.per_client.get(connection._peer, 1) - 1
            if left > 0:
                self.per_client[connection._peer] = left
            else:
                self.per_client.pop(connection._peer, None)
        if self._listener is not None:
            self._listener.released()
        if not self.connections:
            self.drained.set()

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Bind and start accepting; returns the bound port (useful with ``port=0``)."""
        self._loop = asyncio.get_running_loop()
        self._listener = Listener(
            self._loop,
            lambda: _Connection(self),
            max_connections=self.limits.max_connections,
            tls=self.tls,
            handshake_timeout_s=self.limits.header_timeout_s,
            on_refused=self.refused,
        )
        return self._listener.bind(host, port, reuse_port=reuse_port)

    async def close(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, let in-flight answers finish (up to the timeout), close the rest."""
        self.closing = True
        if self._listener is not None:
            await self._listener.close()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            self.drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), drain_timeout_s)
        for connection in list(self.connections):
            connection._close()
