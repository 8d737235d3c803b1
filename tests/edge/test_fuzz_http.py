"""Property-based fuzzing of the HTTP framing, over a real socket: whatever bytes arrive, the
router answers with an HTTP/1.1 4xx (or a success for a valid request), never a 500, never a
traceback, and keeps serving."""

from __future__ import annotations

import socket

import httpx
import orjson
import pytest
from fuzz_support import running_router
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawhttp import read_answers

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TOKEN_CHARS = st.sampled_from(list("abcXYZ-_~!#$%&'*+.^`|019"))
HEADER_NAMES = st.sampled_from(
    [
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "Expect",
        "Content-Type",
        "Authorization",
        "X-Api-Key",
        "X-Request-Id",
    ]
) | st.text(TOKEN_CHARS, min_size=1, max_size=12)
HEADER_VALUES = st.sampled_from(
    ["chunked", "gzip, chunked", "0", "5", "-1", "100-continue", "upgrade", "close", "h2c", ""]
) | st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
TARGETS = st.sampled_from(
    ["/v1/chat/completions", "/health", "/v1/messages", "/admin/keys", "*", "/v1/models/x"]
) | st.text(max_size=30).map(lambda t: "/" + t)


@st.composite
def http_requests(draw) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]))
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "CONNECT", "PRI", "G T"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9"]))
    target = draw(TARGETS).encode("utf-8", "replace")
    lines = [method.encode() + b" " + target + b" " + version.encode()]
    for name, value in draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8)):
        lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
    body = draw(
        st.sampled_from(
            [b"", b'{"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "x"}]}']
        )
        | st.binary(max_size=64)
    )
    if draw(st.booleans()):
        lines.append(b"Content-Length: %d" % len(body))
    return eol.join(lines) + eol + eol + body


def exchange_to_eof(port: int, data: bytes):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        return read_answers(sock, 20, timeout=10)


@pytest.fixture(scope="module")
def fuzz_router(loop_thread):
    with running_router(loop_thread) as app:
        yield app


def check(answers) -> None:
    for answer in answers:
        assert answer.status != 500
        assert 100 <= answer.status < 600
        assert b"Traceback" not in answer.body
        if answer.status >= 400 and answer.body:
            data = orjson.loads(answer.body)
            error = data["error"]
            assert isinstance(error["message"], str)
            assert error["message"]


@FUZZ
@given(data=http_requests())
def test_structured_request_fuzz(fuzz_router, data):
    check(exchange_to_eof(fuzz_router.port, data))


@FUZZ
@given(data=st.binary(min_size=1, max_size=200))
def test_random_bytes_fuzz(fuzz_router, data):
    check(exchange_to_eof(fuzz_router.port, data))


@FUZZ
@given(data=http_requests(), cut=st.integers(min_value=1, max_value=400))
def test_requests_split_at_any_byte(fuzz_router, data, cut):
    """The same bytes in two segments parse as in one (header counting across reads)."""
    with socket.create_connection(("127.0.0.1", fuzz_router.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(data[:cut])
            sock.sendall(data[cut:])
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        check(read_answers(sock, 20, timeout=10))


def test_router_still_serves_after_the_fuzzing(fuzz_router):
    assert httpx.get(f"http://127.0.0.1:{fuzz_router.port}/health").status_code == 200
