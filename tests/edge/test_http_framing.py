"""Request smuggling and malformed framing: 400, connection closed, nothing reaches a provider."""

from __future__ import annotations

import resource
import socket
import time

import httpx
import openai
import pytest
from edge_config import router_yaml, upstream_requests
from rawhttp import connect, exchange, read_answers

BODY = b'{"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}'
START = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"

SMUGGLING = {
    "cl-and-te": START + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate-cl": START
    + b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n%b" % (len(BODY), BODY),
    "same-cl-twice": START
    + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%b" % (len(BODY), len(BODY), BODY),
    "cl-list": START + b"Content-Length: 4, 4\r\n\r\nabcd",
    "cl-negative": START + b"Content-Length: -1\r\n\r\n",
    "bad-chunk-size": START + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + BODY + b"\r\n0\r\n\r\n",
    "chunk-size-overflow": START
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "chunk-without-crlf": START + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
    "te-gzip": START + b"Transfer-Encoding: gzip\r\n\r\n" + BODY,
    "te-gzip-chunked": START
    + b"Transfer-Encoding: gzip, chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(BODY), BODY),
    "te-chunked-twice": START
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-space-before-colon": START + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-xchunked": START + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-http10": b"POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n"
    % (len(BODY), BODY),
    "obs-fold": START + b"X-Folded: a\r\n  b\r\nContent-Length: %d\r\n\r\n%b" % (len(BODY), BODY),
    "bare-lf": b"POST /v1/chat/completions HTTP/1.1\nHost: x\nContent-Length: %d\n\n%b"
    % (len(BODY), BODY),
    "bare-lf-in-headers": START + b"X-A: b\nContent-Length: %d\r\n\r\n%b" % (len(BODY), BODY),
    "bare-cr": START + b"X-A: b\rContent-Length: %d\r\n\r\n%b" % (len(BODY), BODY),
    "nul-in-value": START + b"X-A: b\x00c\r\nContent-Length: %d\r\n\r\n%b" % (len(BODY), BODY),
    "ctl-in-value": START + b"X-A: b\x01c\r\nContent-Length: %d\r\n\r\n%b" % (len(BODY), BODY),
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on a plain port
}


@pytest.mark.parametrize("payload", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_ambiguous_framing_gets_400_close_and_no_upstream_request(simulator, small_router, payload):
    answer, closed = exchange(small_router.port, payload)
    assert answer is not None
    assert answer.status == 400
    assert answer.headers["connection"] == "close"
    error = httpx.Response(400, content=answer.body).json()["error"]
    assert error["type"] == "invalid_request_error"
    assert b"Traceback" not in answer.body
    assert b"httptools" not in answer.body
    assert closed
    assert upstream_requests(simulator) == 0


def test_a_smuggled_request_after_a_good_one_is_not_forwarded(simulator, small_router):
    """A valid request, then a CL+TE one on the same connection: one answer, one upstream call."""
    payload = (
        START
        + b"Content-Length: %d\r\n\r\n%b" % (len(BODY), BODY)
        + START
        + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG"
    )
    with connect(small_router.port) as sock:
        sock.sendall(payload)
        answers = read_answers(sock, 2)
    assert [a.status for a in answers] == [200, 400]
    assert upstream_requests(simulator) == 1


def test_pipelined_requests_still_answered_in_order(small_router):
    with connect(small_router.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
        answers = read_answers(sock, 5)
    assert [a.status for a in answers] == [200] * 5


def test_both_sdks_work_through_the_limits(simulator, small_router):
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{small_router.port}/v1", api_key="k", max_retries=0
    )
    reply = client.chat.completions.create(
        model="gpt-4-turbo", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    stream = client.chat.completions.create(
        model="gpt-4-turbo", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_5000_slow_header_connections_do_not_stop_a_normal_request(simulator, start_router):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 12_000  # 5,000 client sockets + 5,000 router sockets in this one process
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "raise the fd hard limit"
    app = start_router(router_yaml(simulator, server="  header_timeout_s: 60\n"))
    slow: list[socket.socket] = []
    try:
        for _ in range(5000):
            sock = socket.create_connection(("127.0.0.1", app.port), timeout=10)
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            slow.append(sock)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(app.server.connections) < 5000:
            time.sleep(0.1)
        assert len(app.server.connections) >= 5000
        for sock in slow[::50]:
            sock.sendall(b"a")  # still trickling
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0
        )
        latencies = []
        for _ in range(5):
            started = time.perf_counter()
            reply = client.chat.completions.create(
                model="gpt-4-turbo", messages=[{"role": "user", "content": "hi"}]
            )
            latencies.append(time.perf_counter() - started)
            assert reply.choices[0].message.content
        latencies.sort()
        print(
            f"with 5000 slow-header connections open: median request {latencies[2] * 1000:.1f} ms"
        )
    finally:
        for sock in slow:
            sock.close()
