"""SIGTERM drains RouteGuard without breaking a request it accepted.

This is what makes the runbook's ``kubectl rollout restart deployment/litellm-router`` safe: the
old pod gets SIGTERM while clients are mid-request and mid-stream. RouteGuard runs here as a
real process (``python -m routeguard.cli serve``) in front of a slow simulator, several threads
drive it with the official ``openai`` SDK, and the test signals it while requests and streams
are in flight.

What a client may see, and how it is judged:

* a connection refused once the listener has closed: the router never accepted that request,
  which is the load balancer's business (the pod is leaving its endpoints) and fine;
* anything else on a request that was sent: a non-200 answer, a reset or an early close, a
  stream without a ``finish_reason`` or with an in-band error, is a broken request.

Readiness during the drain: the listener closes at once, so a *new* connection cannot ask
``/health/ready`` anything (a kubelet probe is refused, which also reads as not ready). What can
still talk to the draining router is a connection with a request in progress, so the test
pipelines ``GET /health/ready`` behind a slow request on one socket after the router logged
``draining``. If the slow answer kept the connection alive, the router owes the pipelined probe
an answer, and it must be the 503 that tells a load balancer to stop sending; if the answer said
``connection: close``, the probe is rightly left unanswered.

Answers finished during the drain must say ``connection: close``: the router closes those
connections right after writing them, and a client that reuses a connection it was told stays
open has its next request reset (seen here as ``ECONNRESET`` on a call sent 1 ms after the
previous answer, in about one run in ten).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from processes import free_port

from routeguard.simulator import Simulator

ROUTEGUARD = [sys.executable, "-m", "routeguard.cli"]
DRAIN_TIMEOUT_S = 20
DEADLINE_S = 30.0
MESSAGES = [{"role": "user", "content": "Please keep answering while the pod restarts"}]
WORKERS = {"call": 3, "stream": 3}


def router_config(sim: Simulator) -> str:
    return (
        f"server:\n  drain_timeout_s: {DRAIN_TIMEOUT_S}\n"
        "routing:\n  num_retries: 0\n"
        "deployments:\n"
        f'  dep-a: {{provider: openai, model: m, api_base: "{sim.url("dep-a")}", api_key: k}}\n'
        f'  dep-b: {{provider: openai, model: m, api_base: "{sim.url("dep-b")}", api_key: k}}\n'
        f'  slow: {{provider: openai, model: m, api_base: "{sim.url("slow")}", api_key: k}}\n'
        "weights:\n"
        "  gpt-4-turbo: {dep-a: 1, dep-b: 1}\n"
        "  slow-model: {slow: 1}\n"
    )


# -- the router process --------------------------------------------------------------------------


class RouterProcess:
    """``routeguard serve`` in a subprocess; a thread reads its JSON log lines from stderr."""

    def __init__(self, config: Path, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.draining = threading.Event()
        self.process = subprocess.Popen(
            [*ROUTEGUARD, "serve", "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            with contextlib.suppress(ValueError):
                if json.loads(line).get("event") == "draining":
                    self.draining.set()

    def events(self) -> list[str]:
        found = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line).get("event"))
        return found

    def log_tail(self) -> str:
        return "".join(self.lines[-30:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"router exited:\n{self.log_tail()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health/ready").status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"router not ready within {DEADLINE_S}s:\n{self.log_tail()}")

    def metric(self, name: str, labels: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics").text
        for line in text.splitlines():
            if line.startswith(f"{name}{{") and labels in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def router_process(tmp_path: Path, simulator: Simulator) -> Iterator[RouterProcess]:
    config = tmp_path / "router.yaml"
    config.write_text(router_config(simulator))
    router = RouterProcess(config, free_port())
    try:
        router.wait_ready()
        yield router
    finally:
        router.close()


# -- the clients ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str  # "call" or "stream"
    started: float
    ended: float
    result: str  # "ok", "refused" (never accepted) or a description of what broke


@dataclass
class Clients:
    """Threads sending back-to-back requests until the router refuses them or the test stops."""

    base_url: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: list[Outcome] = field(default_factory=list)
    in_flight: int = 0
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for kind, count in WORKERS.items():
            for _ in range(count):
                thread = threading.Thread(target=self._run, args=(kind,), daemon=True)
                thread.start()
                self.threads.append(thread)

    def _run(self, kind: str) -> None:
        with openai.OpenAI(base_url=self.base_url, api_key="k", max_retries=0) as client:
            while not self.stop.is_set():
                with self.lock:
                    self.in_flight += 1
                started = time.monotonic()
                try:
                    result = self._one(client, kind == "stream")
                finally:
                    with self.lock:
                        self.in_flight -= 1
                with self.lock:
                    self.outcomes.append(Outcome(kind, started, time.monotonic(), result))
                if result == "refused":
                    return  # the listener is gone: this client's part is over

    @staticmethod
    def _one(client: openai.OpenAI, stream: bool) -> str:
        try:
            if not stream:
                reply = client.chat.completions.create(model="gpt-4-turbo", messages=MESSAGES)
                return "ok" if reply.choices[0].finish_reason else "no finish_reason"
            finish = None
            with client.chat.completions.create(
                model="gpt-4-turbo", messages=MESSAGES, stream=True
            ) as chunks:
                for chunk in chunks:
                    for choice in chunk.choices:
                        finish = choice.finish_reason or finish
            return "ok" if finish else "stream ended without finish_reason"
        except openai.APIConnectionError as exc:
            if _refused(exc):
                return "refused"
            return f"connection broken after the request was sent: {exc.__cause__!r}"
        except Exception as exc:  # every other failure is a broken request, reported in full
            return f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(DEADLINE_S)
        assert not any(thread.is_alive() for thread in self.threads), "clients did not stop"


def _refused(exc: BaseException) -> bool:
    """Whether the connection was refused: the SDK's transport wraps the OS error in layers."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@pytest.fixture
def clients() -> Iterator[list[Clients]]:
    started: list[Clients] = []
    yield started
    for c in started:
        c.close()


# -- one raw connection, to pipeline a readiness probe behind a slow request ---------------------


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: routeguard\r\n"
    if body:
        head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def read_responses(sock: socket.socket) -> list[tuple[int, dict[str, str], bytes]]:
    """Every response on the socket until the server closes it (content-length bodies only)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    responses = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines)
        length = int(headers["content-length"])
        responses.append((int(status_line.split()[1]), headers, rest[:length]))
        data = rest[length:]
    return responses


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- the test ------------------------------------------------------------------------------------


def test_sigterm_drains_in_flight_requests_and_streams(simulator, router_process, clients):
    router = router_process
    base = f"http://127.0.0.1:{router.port}"
    control = f"http://127.0.0.1:{simulator.port}/_sim/faults"
    # Providers take their time, so a SIGTERM always finds work in progress.
    httpx.put(f"{control}/*", json={"latency_ms": 300, "chunk_delay_ms": 50}).raise_for_status()
    httpx.put(f"{control}/slow", json={"latency_ms": 4000}).raise_for_status()

    load = Clients(f"{base}/v1")
    clients.append(load)
    load.start()
    wait_until(
        lambda: sum(o.result == "ok" for o in load.outcomes) >= 2 * sum(WORKERS.values()),
        "steady traffic",
    )

    probe = socket.create_connection(("127.0.0.1", router.port), timeout=DEADLINE_S)
    with probe:
        slow_body = json.dumps({"model": "slow-model", "messages": MESSAGES}).encode()
        probe.sendall(http_request("POST", "/v1/chat/completions", slow_body))
        wait_until(
            lambda: router.metric("router_in_flight", 'deployment="slow"') == 1,
            "the slow request to reach the provider",
        )
        wait_until(lambda: load.in_flight >= 4, "requests in flight")

        signalled = time.monotonic()
        router.process.send_signal(signal.SIGTERM)
        assert router.draining.wait(DEADLINE_S), f"no draining event:\n{router.log_tail()}"
        drain_seen = time.monotonic()

        # The listener is closed: a new connection is refused (or, in the instant before the
        # close, answered "not ready"); it is never handed a request to drop.
        try:
            fresh = httpx.get(f"{base}/health/ready")
        except httpx.ConnectError:
            fresh_result = "refused"
        else:
            fresh_result = f"{fresh.status_code} {fresh.text}"
        assert fresh_result == "refused" or fresh_result.startswith("503"), fresh_result

        # An open connection still talks to the draining router: readiness is 503.
        probe.sendall(http_request("GET", "/health/ready"))
        answers = read_responses(probe)

    # The slow call was in flight at SIGTERM: it is answered in full during the drain.
    slow_status, slow_headers, slow_body = answers[0]
    assert slow_status == 200, answers
    assert json.loads(slow_body)["choices"][0]["finish_reason"]
    announced_close = slow_headers.get("connection") == "close"
    if not announced_close:
        # The router kept the connection open, so it answers what was pipelined on it: not
        # ready, because it is draining, and this time the connection closes.
        assert [status for status, _, _ in answers[1:]] == [503], answers
        assert json.loads(answers[1][2]) == {"status": "not_ready", "reason": "draining"}
        assert answers[1][1].get("connection") == "close"
    else:
        assert len(answers) == 1, answers  # closed as announced; the probe is not served

    assert router.process.wait(timeout=DRAIN_TIMEOUT_S) == 0, router.log_tail()
    load.close()

    broken = [o for o in load.outcomes if o.result not in ("ok", "refused")]
    assert not broken, broken
    # Accepted before the signal, still running when the router said it was draining, and
    # finished fine: the drain waited for them.
    spanning = [o for o in load.outcomes if o.started < signalled and o.ended > drain_seen]
    assert len(spanning) >= 3, spanning
    assert all(o.result == "ok" for o in spanning)
    assert {o.kind for o in spanning} == {"call", "stream"}, spanning

    events = router.events()
    assert "draining" in events
    assert events.index("draining") < events.index("stopped")

    # A keep-alive answer sent during the drain is a promise the router breaks a moment later,
    # when it closes the connection: a client reusing it at once (as the SDK's pool does) has
    # its next request reset. Answers finished while draining must say `connection: close`.
    assert announced_close, (
        "an answer completed during the drain did not carry `connection: close`, yet once no "
        f"pipelined request is waiting the router closes the connection after it: {slow_headers}"
    )
