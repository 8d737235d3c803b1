"""The accept loop: a connection cap that stops accepting instead of accepting and dropping.

``loop.create_server`` accepts whatever arrives; past a connection limit the only choices left
are to hold the socket or to close it at once. nginx's ``worker_connections`` instead stops
taking connections off the backlog, so the kernel queues them (and, when that queue is full,
the client's SYN retries) until a slot frees up. This module does the same with its own accept
loop, and it is also where inbound TLS is attached, from certificate files reloaded when they
change on disk (a renewed certificate needs no restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
from collections.abc import Callable

__all__ = ["Listener", "TlsFiles"]

log = logging.getLogger("routeguard.server")

# How often, at most, the certificate files are stat()ed for a change.
_TLS_CHECK_S = 2.0
# Accept errors that mean "out of descriptors or memory for now": back off, then retry.
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class TlsFiles:
    """A server-side TLS context built from PEM files and rebuilt when either file changes."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._state = self._stat()
        self.context = self._build()
        self.reloads = 0
        self._checked_at = 0.0

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for path in (self.cert_file, self.key_file):
            st = os.stat(path)
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _build(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def current(self, now: float) -> ssl.SSLContext:
        """The context for the next connection, rebuilt first if the files changed."""
        if now - self._checked_at < _TLS_CHECK_S:
            return self.context
        self._checked_at = now
        try:
            state = self._stat()
            if state != self._state:
                self.context = self._build()
                self._state = state
                self.reloads += 1
                log.info("TLS certificate reloaded", extra={"cert_file": self.cert_file})
        except (OSError, ssl.SSLError) as exc:
            # A half-written renewal: keep serving the old certificate and try again later.
            log.warning("TLS certificate reload failed: %s", exc, extra={"file": self.cert_file})
        return self.context


class Listener:
    """Accepts connections while fewer than ``max_connections`` are open."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.Protocol],
        *,
        max_connections: int,
        tls: TlsFiles | None,
        handshake_timeout_s: float,
        on_refused: Callable[[str], None],
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._max = max_connections
        self._tls = tls
        self._handshake_timeout_s = handshake_timeout_s
        self._on_refused = on_refused
        self.open = 0  # accepted and not yet closed (including TLS handshakes in progress)
        self._room = asyncio.Event()
        self._room.set()
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()

    def bind(self, host: str, port: int, *, reuse_port: bool, backlog: int = 2048) -> int:
        """Bind and listen; returns the bound port (useful with ``port=0``)."""
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(infos[0][4])
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._task = self._loop.create_task(self._accept_loop())
        return int(sock.getsockname()[1])

    def released(self) -> None:
        """A connection closed: one more slot."""
        self.open -= 1
        if self.open < self._max:
            self._room.set()

    async def _accept_loop(self) -> None:
        sock, loop = self._sock, self._loop
        assert sock is not None
        while True:
            if self.open >= self._max:
                self._room.clear()
                self._on_refused("max_connections")
                log.warning("connection limit reached; not accepting", extra={"open": self.open})
                await self._room.wait()
            try:
                conn, _addr = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    log.error("accept failed: %s; retrying", exc)
                    await asyncio.sleep(0.1)
                    continue
                raise
            self.open += 1
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is None:
                try:
                    await loop.connect_accepted_socket(self._factory, conn)
                except OSError:
                    conn.close()
                    self.released()
            else:
                # A handshake takes round trips: never make the next accept wait for it.
                task = loop.create_task(self._handshake(conn, self._tls.current(loop.time())))
                self._handshakes.add(task)
                task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, conn: socket.socket, context: ssl.SSLContext) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self._factory,
                conn,
                ssl=context,
                ssl_handshake_timeout=self._handshake_timeout_s,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            conn.close()
            self.released()
        except asyncio.CancelledError:
            conn.close()
            raise

    async def close(self) -> None:
        """Stop accepting and close the listening socket."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._handshakes):
            task.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
