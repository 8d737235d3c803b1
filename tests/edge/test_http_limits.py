"""Inbound limits and timeouts over real sockets, with small configured values (seconds, not minutes)."""

from __future__ import annotations

import gc
import re
import shutil
import socket
import subprocess
import sys
import time
import weakref

import httpx
import pytest
from edge_config import router_yaml, upstream_requests
from rawhttp import (
    closed_by_peer,
    connect,
    exchange,
    free_port,
    read_answers,
    rss_bytes,
    wait_for_port,
)

from routeguard.simulator import Simulator

CHAT = b'{"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}'


def refused(app, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{app.port}/metrics").text
    match = re.search(rf'routeguard_http_refused_total{{reason="{reason}"}} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


def test_slow_headers_are_cut_at_the_header_timeout_not_rearmed_by_each_byte(small_router):
    with connect(small_router.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        cut = None
        for byte in b"X-Trickle: " + b"a" * 100:  # one byte every 0.1 s: 10 s if never cut
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            sock.settimeout(0.001)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            cut = time.monotonic() - started
            assert data.startswith(b"HTTP/1.1 408"), data
            break
    assert cut is not None, "still open after 10 s of trickled header bytes"
    print(f"slow-header connection cut after {cut:.2f} s (header_timeout_s=1)")
    assert refused(small_router, "header_timeout") >= 1


def test_a_silent_new_connection_is_closed_at_the_header_timeout(small_router):
    with connect(small_router.port) as sock:
        assert closed_by_peer(sock, timeout=10)


def test_slow_body_is_cut_at_the_body_timeout(simulator, small_router):
    with connect(small_router.port) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        time.sleep(0.5)
        sock.sendall(b'"')  # a gap under the timeout is fine
        answers = read_answers(sock, 1, timeout=10)
    assert answers
    assert answers[0].status == 408
    assert answers[0].headers["connection"] == "close"
    assert upstream_requests(simulator) == 0
    assert refused(small_router, "body_timeout") == 1


def test_idle_keep_alive_connection_is_closed(small_router):
    with connect(small_router.port) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answers(sock)[0].status == 200
        assert closed_by_peer(sock, timeout=10)


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "url_too_long"),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n",
            431,
            "header_too_large",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(12))
            + b"\r\n",
            431,
            "header_too_large",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(50))
            + b"\r\n",
            431,
            "too_many_headers",
        ),
        # An unterminated header: refused once the head passes its limit, not buffered forever.
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 200_000,
            431,
            "header_too_large",
        ),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
            413,
            "body_too_large",
        ),
        (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"8000\r\n"
            + b"a" * 0x8000
            + b"\r\n"
            + b"8000\r\n"
            + b"a" * 0x8000
            + b"\r\n"
            + b"8000\r\n"
            + b"a" * 0x8000
            + b"\r\n0\r\n\r\n",
            413,
            "body_too_large",
        ),
    ],
    ids=[
        "url",
        "one-header",
        "all-headers",
        "header-count",
        "unterminated",
        "content-length",
        "chunked",
    ],
)
def test_oversized_requests_get_nginx_statuses_and_close(
    simulator, small_router, request_bytes, status, reason
):
    answer, closed = exchange(small_router.port, request_bytes)
    assert answer is not None
    assert answer.status == status
    error = httpx.Response(status, content=answer.body).json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert answer.headers["connection"] == "close"
    assert closed
    assert upstream_requests(simulator) == 0
    assert refused(small_router, reason) == 1


def test_limits_leave_room_for_normal_requests(small_router):
    headers = {f"x-h{i}": "v" * 100 for i in range(10)}
    response = httpx.get(
        f"http://127.0.0.1:{small_router.port}/health?" + "q" * 900, headers=headers
    )
    assert response.status_code == 200


def test_rss_returns_near_baseline_after_oversized_request_storms(small_router):
    def storm() -> None:
        for _ in range(50):
            for payload in (
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 4_000_000,
                b"GET /" + b"u" * 1_000_000 + b" HTTP/1.1\r\n\r\n",
                b"POST /v1/embeddings HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"100000\r\n"
                + b"b" * 0x100000
                + b"\r\n",
            ):
                exchange(small_router.port, payload, timeout=5)

    storm()  # warm-up: allocator arenas, sockets, code paths
    gc.collect()
    baseline = rss_bytes()
    gc.disable()  # memory must come back without the cyclic collector's help
    try:
        storm()
        after = rss_bytes()
    finally:
        gc.enable()
    growth = (after - baseline) / 2**20
    print(
        f"RSS baseline {baseline / 2**20:.1f} MiB, after 150 oversized requests {after / 2**20:.1f} MiB"
    )
    assert growth < 8, f"RSS grew {growth:.1f} MiB"


def test_a_closed_connection_is_freed_without_the_cyclic_gc(loop_thread, small_router):
    gc.disable()
    try:
        with connect(small_router.port) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 900 + b"\r\n\r\n")
            assert read_answers(sock)[0].status == 200
            connections = loop_thread.call(lambda: list(small_router.server.connections))
            assert len(connections) == 1
            ref = weakref.ref(connections[0])
            del connections
        deadline = time.monotonic() + 10
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ref() is None, gc.get_referrers(ref())
    finally:
        gc.enable()


def test_upgrade_requests_are_answered_as_plain_http11(small_router):
    for upgrade in (
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
        b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    ):
        answer, closed = exchange(
            small_router.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + upgrade + b"\r\n"
        )
        assert answer is not None, upgrade
        assert answer.status == 200, upgrade
        assert answer.headers["connection"] == "close"
        assert closed


def test_curl_http2_upgrade_gets_an_http11_answer(small_router):

    curl = shutil.which("curl")
    assert curl, "curl is needed (Debian package curl)"
    result = subprocess.run(
        [curl, "-sS", "--http2", "-i", f"http://127.0.0.1:{small_router.port}/health"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 200")


def test_connection_cap_stops_accepting_and_resumes_below_it(simulator, start_router):
    app = start_router(
        router_yaml(simulator, server="  max_connections: 3\n  header_timeout_s: 30\n")
    )
    holders = [connect(app.port) for _ in range(3)]
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(app.server.connections) < 3:
            time.sleep(0.02)
        waiting = connect(app.port)  # the kernel queues it; the router does not accept it yet
        waiting.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answers(waiting, 1, timeout=1) == []
        holders.pop().close()
        answers = read_answers(waiting, 1, timeout=10)
        assert answers
        assert answers[0].status == 200
        waiting.close()
        assert refused(app, "max_connections") >= 1
    finally:
        for sock in holders:
            sock.close()


def test_per_client_connection_limit(simulator, start_router):
    app = start_router(
        router_yaml(simulator, server="  max_connections_per_client: 2\n  header_timeout_s: 30\n")
    )
    first, second = connect(app.port), connect(app.port)
    try:
        answer, closed = exchange(app.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer is not None
        assert answer.status == 503
        assert closed
        first.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(app.server.per_client.values()) > 1:
            time.sleep(0.02)
        assert httpx.get(f"http://127.0.0.1:{app.port}/health").status_code == 200
    finally:
        second.close()


@pytest.fixture(scope="module")
def wordy_simulator():
    """A simulator process with 200,000-word answers (its memory is not this process's)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "routeguard.simulator", "--port", str(port), "--words", "200000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield Simulator(port=port)  # not started here: only for its URL scheme
    finally:
        process.kill()
        process.wait(10)


def test_a_client_that_stops_reading_a_stream_is_cut_and_memory_stays_flat(
    start_router, wordy_simulator
):
    """The simulator runs in its own process, so this process's RSS is the router's."""
    sim = wordy_simulator
    if True:
        app = start_router(router_yaml(sim).replace("timeout_s: 5", "timeout_s: 60"))
        body = b'{"model": "gpt-4-turbo", "stream": true, "messages": [{"role": "user", "content": "flood"}]}'
        warm = httpx.post(  # warm-up: the streaming path's first-use allocations
            f"http://127.0.0.1:{app.port}/v1/chat/completions",
            json={
                "model": "gpt-4-turbo",
                "stream": True,
                "max_tokens": 2000,
                "messages": [{"role": "user", "content": "warm"}],
            },
        )
        assert warm.status_code == 200
        gc.collect()
        before = rss_bytes()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", app.port))
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b"
            % (len(body), body)
        )
        deadline = time.monotonic() + 60  # never read: the router must cut us (write_timeout_s=1)
        peak = before
        while time.monotonic() < deadline and refused(app, "write_timeout") < 1:
            peak = max(peak, rss_bytes())
            time.sleep(0.1)
        assert refused(app, "write_timeout") == 1, httpx.get(
            f"http://127.0.0.1:{app.port}/metrics"
        ).text
        grown = (peak - before) / 2**20
        print(f"non-reading stream client cut; router RSS grew at most {grown:.1f} MiB meanwhile")
        assert grown < 16  # measured 8 MiB; 58 MiB before upstream reads paused
        sock.close()


def test_a_client_that_never_reads_a_closing_answer_does_not_keep_the_connection(
    start_router, wordy_simulator
):
    """``Connection: close`` and a 1.2 MB answer never read: ``close()`` alone would wait for
    the buffer to drain for ever; whatever the kernel does not take is cut at write_timeout_s."""
    app = start_router(router_yaml(wordy_simulator).replace("timeout_s: 5", "timeout_s: 60"))
    body = b'{"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "flood"}]}'
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", app.port))
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        time.sleep(0.5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and app.server.connections:
            time.sleep(0.05)
        assert not app.server.connections
