"""How an answer reaches the wire, faults included.

Provider modules decide *what* to say (a completion, a stream of events, an error body);
this module decides *how it arrives*: late, never, cut off, corrupted or as an injected
error. Keeping that in one place means every fault behaves the same for every provider,
and the provider modules stay pure translations of the wire formats.

The fault-free path is kept lean because the simulator serves as the upstream of
benchmarks: no fault means no sleep, no random draw and a stream written in one piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from routeguard.simulator.faults import FaultSpec, TargetStats

__all__ = ["ConnectionDropped", "Dialect", "Exchange", "InvalidRequest", "json_response"]

_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_HANG_POLL_S = 0.25


class ConnectionDropped(Exception):
    """The connection was deliberately dropped; there is no response to send."""


class InvalidRequest(Exception):
    """A request failed validation; the server renders it in the provider's 400 shape."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response serialised with orjson (the hot path's only serialiser)."""
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type=_JSON, headers=headers
    )


class Dialect(ABC):
    """A provider's way of saying "error" on the wire: bodies, headers, in-band events.

    The server uses a dialect for everything it must refuse before a provider handler runs
    (authentication, unparsable bodies, unknown paths), and the fault pipeline uses it for
    injected errors, so every refusal has the shape the real provider gives it.
    """

    name: str
    key_required: bool = True
    """Whether a request without any API key is refused even when keys are not checked."""

    @abstractmethod
    def api_key(self, request: web.Request) -> str | None:
        """The API key the request presents, from the header this provider uses."""

    @abstractmethod
    def unauthorized(self, missing: bool) -> web.Response:
        """The provider's 401 for a missing (``missing``) or wrong key."""

    @abstractmethod
    def invalid_request(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> web.Response:
        """The provider's 400 for a request that fails validation."""

    @abstractmethod
    def bad_json(self) -> web.Response:
        """The provider's 400 for a body that is not JSON."""

    @abstractmethod
    def not_found(self, method: str, path: str) -> web.Response:
        """The provider's 404 for a path it does not serve."""

    @abstractmethod
    def fault_error(self, status: int, retry_after_s: float) -> web.Response:
        """The provider's real response for an injected error of ``status``."""

    @abstractmethod
    def stream_error_event(self) -> bytes:
        """An in-band error event, sent mid-stream by ``stream_error_after_chunks``."""

    @abstractmethod
    def malformed_event(self) -> bytes:
        """A stream event whose data is not JSON."""

    @staticmethod
    def retry_headers(status: int, retry_after_s: float) -> dict[str, str]:
        """``Retry-After`` for 429s, plus the millisecond variant the OpenAI SDK prefers."""
        if status != 429:
            return {}
        seconds = int(retry_after_s) if retry_after_s == int(retry_after_s) else retry_after_s
        return {"Retry-After": str(seconds), "retry-after-ms": str(int(retry_after_s * 1000))}


class Exchange:
    """One request on its way through the fault pipeline.

    Built by the server for every provider request; the provider handler calls
    ``intercept`` first and then answers with ``json`` or ``stream``.
    """

    __slots__ = (
        "dialect",
        "fault",
        "gate",
        "request",
        "rng",
        "stats",
        "stopping",
        "target",
        "words",
    )

    def __init__(
        self,
        request: web.Request,
        *,
        target: str,
        fault: FaultSpec | None,
        stats: TargetStats,
        rng: random.Random,
        stopping: asyncio.Event,
        dialect: Dialect,
        words: int,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.request = request
        self.gate = gate
        self.target = target
        self.fault = fault
        self.stats = stats
        self.rng = rng
        self.stopping = stopping
        self.dialect = dialect
        self.words = words

    async def intercept(self) -> web.Response | None:
        """Apply the pre-response faults; return an injected error response, if any.

        Raises ``ConnectionDropped`` for ``reset`` and ``hang``, whose point is that no
        response is ever sent.
        """
        fault = self.fault
        if fault is None:
            return None
        delay_ms = fault.latency_ms
        if fault.jitter_ms:
            delay_ms += self.rng.uniform(0.0, fault.jitter_ms)
        if delay_ms and self.gate is not None:
            async with self.gate:
                await asyncio.sleep(delay_ms / 1000.0)
        elif delay_ms:
            await asyncio.sleep(delay_ms / 1000.0)
        if fault.reset:
            self.stats.resets += 1
            self._abort()
            raise ConnectionDropped
        if fault.hang:
            self.stats.hangs += 1
            await self._hang()
            raise ConnectionDropped
        if fault.error_rate and self.rng.random() < fault.error_rate:
            self.stats.errors_injected += 1
            return self.dialect.fault_error(fault.error_status, fault.retry_after_s)
        return None

    def _malformed(self) -> bool:
        fault = self.fault
        if fault is None or not fault.malformed_rate:
            return False
        if self.rng.random() < fault.malformed_rate:
            self.stats.malformed += 1
            return True
        return False

    def json(self, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
        """A 200 JSON answer, truncated into invalid JSON if ``malformed_rate`` hits."""
        body = orjson.dumps(payload)
        if self._malformed():
            body = body[: len(body) // 2]
        return web.Response(body=body, content_type=_JSON, headers=headers)

    async def stream(
        self,
        events: Sequence[bytes],
        *,
        headers: Mapping[str, str] | None = None,
        error_offset: int = 1,
    ) -> web.StreamResponse:
        """Send ``events`` (complete SSE frames) as a 200 event stream, faults applied.

        ``error_offset`` is the index of the first event counted by
        ``stream_error_after_chunks`` (1: events after the opening one).
        """
        self.stats.streams += 1
        response = web.StreamResponse(headers=_SSE_HEADERS)
        if headers:
            response.headers.update(headers)
        await response.prepare(self.request)
        fault = self.fault
        if fault is None:
            await response.write(b"".join(events))
            return response
        plan = list(events)
        if self._malformed():
            plan[min(2, len(plan) - 1)] = self.dialect.malformed_event()
        if fault.stream_error_after_chunks is not None:
            cut = min(error_offset + fault.stream_error_after_chunks, len(plan))
            plan = [*plan[:cut], self.dialect.stream_error_event()]
        disconnect = fault.disconnect_after_chunks is not None
        if fault.disconnect_after_chunks is not None:
            plan = plan[: fault.disconnect_after_chunks]
        await self._write_paced(response, plan, fault.chunk_delay_ms / 1000.0)
        if disconnect:
            self.stats.disconnects += 1
            self._close()
        return response

    async def _write_paced(
        self, response: web.StreamResponse, plan: Sequence[bytes], delay_s: float
    ) -> None:
        try:
            if not delay_s:
                await response.write(b"".join(plan))
                return
            for index, event in enumerate(plan):
                if index:
                    await asyncio.sleep(delay_s)
                await response.write(event)
        except ConnectionError:
            # The client went away mid-stream (often on purpose: a timeout or a cancel).
            self.stats.disconnects += 1

    async def _hang(self) -> None:
        """Wait until the client gives up or the simulator stops, then drop the connection."""
        while not self.stopping.is_set():
            transport = self.request.transport
            if transport is None or transport.is_closing():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), _HANG_POLL_S)
        self._close()

    def _close(self) -> None:
        """Close the connection after flushing what was written (FIN, not RST).

        A client mid-stream then sees an incomplete chunked body, which is exactly what a
        crashed upstream or a dropped proxy connection looks like.
        """
        transport = self.request.transport
        if transport is not None:
            transport.close()

    def _abort(self) -> None:
        """Reset the connection: ``SO_LINGER`` 0 turns the close into a TCP RST."""
        transport = self.request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
