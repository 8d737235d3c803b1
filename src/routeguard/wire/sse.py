"""An incremental decoder for server-sent events (the WHATWG ``text/event-stream`` format).

Upstream bodies arrive in pieces cut wherever the network cut them: an event, a line, even a
``\\r\\n`` pair may straddle two pieces. The decoder keeps the unfinished tail and hands back
only whole events, with ``data`` left as bytes so the caller can give it straight to
``orjson.loads`` without a decode-and-copy.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its ``event:`` name (``message`` when absent) and its data lines."""

    event: str
    data: bytes


class SSEDecoder:
    """Feed body pieces in, get whole events out.

    Lines may end in ``\\n``, ``\\r\\n`` or ``\\r`` (the spec allows all three); comments and the
    ``id``/``retry`` fields are ignored because no provider we speak relies on them.
    """

    __slots__ = ("_buffer", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished event are held (a stream cut mid-event)."""
        return bool(self._buffer.strip())

    def feed(self, piece: bytes) -> list[SSEEvent]:
        if self._skip_lf:
            # The previous piece ended in CR: an LF here is the second half of that CRLF.
            self._skip_lf = False
            if piece[:1] == b"\n":
                piece = piece[1:]
        buffer = self._buffer + piece if self._buffer else piece
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        events: list[SSEEvent] = []
        for block in blocks:
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events


def _parse_block(block: bytes) -> SSEEvent | None:
    name = "message"
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # blank, or a ":" comment (keep-alive)
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace") or "message"
    if not data:
        return None  # per the spec, an event without data is not dispatched
    return SSEEvent(name, data[0] if len(data) == 1 else b"\n".join(data))
