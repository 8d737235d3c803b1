"""The access log: one line per client request, cheap enough for the request path.

The logging module costs tens of microseconds per record (a LogRecord, filters, a formatter, a
flushed write), which on a router whose own overhead is the product would double it. Access
lines have a fixed, known-safe set of fields, so they are encoded directly (orjson, or logfmt
for humans) into a buffer and written in batches: one ``write`` per flush interval instead of
one per request. The lines look exactly like those of :mod:`.logs` (same ``ts``, ``level``,
``logger``, ``event`` fields), so one parser reads both.

When no stream is given, lines go through the ``routeguard.requests`` logger instead, which is
what tests and embedders get without any set-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import orjson

from routeguard.observability.logs import LogFormat, logfmt_value, redact

__all__ = ["AccessLog"]

_LOGGER = "routeguard.requests"
_FLUSH_S = 0.05
_FLUSH_BYTES = 64 * 1024


class LineSink(Protocol):
    """Where access lines go: a text stream (stderr) or a rotation-aware log file."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class AccessLog:
    """Buffered access lines to ``stream`` in ``fmt``; or via logging when ``stream`` is None."""

    def __init__(
        self, fmt: LogFormat = "json", stream: LineSink | None = None, *, enabled: bool = True
    ) -> None:
        self.fmt = fmt
        self.stream = stream
        self.enabled = enabled
        self._logger = logging.getLogger(_LOGGER)
        self._buffer: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def request(
        self,
        *,
        request_id: str,
        model_group: str,
        api: str = "chat",
        deployment: str | None,
        attempts: int,
        status: int,
        latency_ms: float,
        upstream_ms: float,
        ttft_ms: float | None = None,
        key_id: str | None = None,
    ) -> None:
        if not self.enabled:
            return
        fields: dict[str, object] = {
            "request_id": request_id,
            "api": api,
            "model_group": model_group,
            "deployment": deployment,
            "attempts": attempts,
            "status": status,
            "latency_ms": round(latency_ms, 3),
            "upstream_ms": round(upstream_ms, 3),
        }
        if ttft_ms is not None:
            fields["ttft_ms"] = round(ttft_ms, 3)
        if key_id is not None:
            fields["key_id"] = key_id
        if self.stream is None:
            self._logger.info("request", extra=fields)  # the handler's filter redacts
            return
        # The client chose the request id: never trust it to hold no key.
        fields["request_id"] = redact(request_id)
        fields = {
            "ts": self._timestamp(),
            "level": "INFO",
            "logger": _LOGGER,
            "event": "request",
            **fields,
        }
        line = orjson.dumps(fields).decode() if self.fmt == "json" else _logfmt(fields)
        self._buffer.append(line)
        self._size += len(line) + 1
        if self._size >= _FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the event loop: nothing to batch with
                self.flush()
                return
            self._timer = loop.call_later(_FLUSH_S, self.flush)

    def _timestamp(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer or self.stream is None:
            return
        text = "\n".join(self._buffer) + "\n"
        self._buffer.clear()
        self._size = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr must not take requests down with it


def _logfmt(fields: dict[str, object]) -> str:
    return " ".join(f"{key}={logfmt_value(value)}" for key, value in fields.items())
