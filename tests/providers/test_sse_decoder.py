"""The incremental SSE decoder: whole events out, however the bytes were cut."""

from __future__ import annotations

import pytest

from routeguard.wire.sse import SSEDecoder, SSEEvent

STREAM = (
    b'event: message_start\ndata: {"a":1}\n\n'
    b": keep-alive comment\n\n"
    b"event: ping\ndata: {}\n\n"
    b"data: line one\ndata: line two\n\n"
    b"id: 7\nretry: 10\n\n"
    b'event: message_stop\ndata:{"z":2}\n\n'
)
EXPECTED = [
    SSEEvent("message_start", b'{"a":1}'),
    SSEEvent("ping", b"{}"),
    SSEEvent("message", b"line one\nline two"),
    SSEEvent("message_stop", b'{"z":2}'),
]


def decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    assert not decoder.pending
    return events


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_whole_stream_any_line_ending(newline: bytes) -> None:
    assert decode([STREAM.replace(b"\n", newline)]) == EXPECTED


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_every_split_point_gives_the_same_events(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    for cut in range(1, len(stream)):
        assert decode([stream[:cut], stream[cut:]]) == EXPECTED, cut


def test_byte_by_byte() -> None:
    assert decode([bytes([b]) for b in STREAM.replace(b"\n", b"\r\n")]) == EXPECTED


def test_unfinished_event_is_pending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: x\ndata: {") == []
    assert decoder.pending
