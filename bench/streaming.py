"""Sequential streaming chat requests on one keep-alive connection: time to first event, total.

The client speaks HTTP/1.1 over a raw asyncio stream so that nothing but the socket sits
between the clock and the bytes: time-to-first-byte is taken when the first ``data:`` line of
the SSE body arrives, total time when the body ends (last chunk of a chunked body, or
``Content-Length`` bytes). A response that is not 200 or does not end with ``data: [DONE]``
counts as an error; a connection the server closes is reopened (and counted).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop

__all__ = ["StreamResult", "run_streams"]


@dataclass
class StreamResult:
    """Per-request times in milliseconds, plus failure counts."""

    ttfb_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    errors: int = 0
    reconnects: int = 0
    first_error: str = ""

    def extend(self, other: StreamResult) -> None:
        self.ttfb_ms += other.ttfb_ms
        self.total_ms += other.total_ms
        self.errors += other.errors
        self.reconnects += other.reconnects
        self.first_error = self.first_error or other.first_error

    def summary(self) -> dict[str, Any]:
        return {
            "streams": len(self.ttfb_ms),
            "errors": self.errors,
            "reconnects": self.reconnects,
            "first_error": self.first_error,
            "ttfb_p50_ms": _pct(self.ttfb_ms, 50),
            "ttfb_p99_ms": _pct(self.ttfb_ms, 99),
            "total_p50_ms": _pct(self.total_ms, 50),
            "total_p99_ms": _pct(self.total_ms, 99),
        }


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if pct == 50:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def ensure(self) -> bool:
        """Open the connection if needed; report whether a new one was opened."""
        if self.writer is not None and not self.writer.is_closing():
            return False
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(conn: _Conn, request: bytes) -> tuple[float, float, bool]:
    """Send one request; return (ttfb_ms, total_ms, server_keeps_connection)."""
    assert conn.reader is not None
    assert conn.writer is not None
    reader = conn.reader
    start = time.perf_counter()
    conn.writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = bytearray()
    first = 0.0

    def took(data: bytes) -> None:
        nonlocal first
        body.extend(data)
        if not first and b"data:" in body:
            first = time.perf_counter()

    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                break
            took((await reader.readexactly(size + 2))[:-2])
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await reader.read(min(left, 65536))
            if not data:
                raise ConnectionError("connection closed mid-body")
            left -= len(data)
            took(data)
    else:
        while data := await reader.read(65536):
            took(data)
        headers["connection"] = "close"
    end = time.perf_counter()
    if status != 200:
        raise RuntimeError(f"status {status}: {bytes(body[:200])!r}")
    if not bytes(body).rstrip().endswith(b"data: [DONE]"):
        raise RuntimeError(f"stream did not end with [DONE]: {bytes(body[-200:])!r}")
    keep = headers.get("connection", "").lower() != "close"
    return (first - start) * 1e3, (end - start) * 1e3, keep


def _request(url: str, model: str, api_key: str, *, max_tokens: int = 16,
             stream: bool = True) -> bytes:
    parts = urlsplit(url)
    body = json.dumps({
        "model": model, "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": max_tokens, "stream": stream,
    }).encode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\n"
        f"Accept: {'text/event-stream' if stream else 'application/json'}\r\n"
        f"Authorization: Bearer {api_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _run(url: str, model: str, api_key: str, count: int, warmup: int) -> StreamResult:
    parts = urlsplit(url)
    conn = _Conn(parts.hostname or "127.0.0.1", parts.port or 80)
    request = _request(url, model, api_key)
    result = StreamResult()
    opened = 0
    try:
        for index in range(warmup + count):
            try:
                opened += await conn.ensure()
                ttfb, total, keep = await asyncio.wait_for(_one(conn, request), 10)
            except (OSError, RuntimeError, ValueError, EOFError) as exc:  # TimeoutError is OSError
                if index >= warmup:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                conn.close()
                continue
            if not keep:
                conn.close()
            if index >= warmup:
                result.ttfb_ms.append(ttfb)
                result.total_ms.append(total)
    finally:
        conn.close()
    result.reconnects = max(0, opened - 1)
    return result


def run_streams(url: str, model: str, api_key: str, count: int, warmup: int) -> StreamResult:
    """``count`` measured streams after ``warmup`` unmeasured ones, one after another."""
    return uvloop.run(_run(url, model, api_key, count, warmup))
