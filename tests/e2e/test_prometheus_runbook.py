"""Every PromQL query of the outage runbook, asked of a real Prometheus scraping RouteGuard.

A real ``prometheus`` server (the Debian package CI installs) scrapes a running router every
second under the runbook's job name, ``litellm-router``, and evaluates ``deploy/prometheus/
alerts.yml`` live. Steady traffic from the official ``openai`` SDK flows while the
``openai-gpt4-turbo`` target of the simulator answers every request with a 500, long enough for
its breaker to open; then each runbook query is sent to Prometheus's HTTP API exactly as the
runbook writes it, and the answers must tell the on-call what really happened: which provider
failed and why, which breaker opened, where the latency goes, and that clients saw no error.

A missing ``prometheus`` binary fails the test instead of skipping it: a silently skipped check
would let a metric the runbook relies on disappear unnoticed.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from processes import free_port

from routeguard.simulator import FaultSpec, Simulator

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
JOB = "litellm-router"
GROUP = "gpt-4-turbo"
OPENAI, AZURE, ANTHROPIC = "openai-gpt4-turbo", "azure-gpt4-turbo", "anthropic-claude-3-opus"
MESSAGES = [{"role": "user", "content": "Is the router healthy?"}]
DEADLINE_S = 60.0

# The runbook's queries, character for character (docs: /work/shared/runbook.md).
ERROR_RATIO = "sum(rate(router_errors_total[5m])) / sum(rate(router_requests_total[5m]))"
UP = 'up{job="litellm-router"}'
BREAKER_STATE = "router_circuit_breaker_state"
ERRORS_BY_PROVIDER_REASON = "sum(rate(router_errors_total[30m])) by (provider, reason)"
P95_BY_COMPONENT = (
    "histogram_quantile(0.95, sum(rate(router_latency_seconds_bucket[30m])) by (le, component))"
)
BREAKER_CHANGES = "changes(router_circuit_breaker_state[30m])"
PROVIDER_ERROR_RATIO = (
    'sum(rate(router_errors_total{provider="openai"}[5m])) '
    '/ sum(rate(router_requests_total{provider="openai"}[5m]))'
)
CLIENT_ERRORS = 'sum(router_client_requests_total{status!="200"})'

Vector = list[dict[str, Any]]


def router_config(sim: Simulator) -> str:
    # The breaker opens at an 80% error rate over its 30 s window, so a provider that served a
    # few dozen requests before failing keeps failing over several 1 s scrapes before it opens:
    # the error counters then rise between scrapes, which is what rate() measures. (A run of
    # failures would open it sooner: that rule is set out of the way here.)
    return (
        "routing:\n"
        "  timeout_s: 5\n"
        "  num_retries: 2\n"
        "  retry_backoff_s: 0\n"
        "  circuit_breaker_error_rate: 0.8\n"
        "  circuit_breaker_min_requests: 5\n"
        "  circuit_breaker_consecutive_failures: 1000\n"
        "  circuit_breaker_window_s: 30\n"
        "  cooldown_s: 600\n"
        "server:\n  access_log: false\n"
        "deployments:\n"
        f'  {OPENAI}: {{provider: openai, model: gpt-4-turbo, api_base: "{sim.url(OPENAI)}", api_key: sk-oa}}\n'
        f'  {AZURE}: {{provider: azure, model: gpt-4-turbo, api_base: "{sim.url(AZURE, "azure")}", '
        "api_key: az-key, api_version: '2024-10-21'}\n"
        f'  {ANTHROPIC}: {{provider: anthropic, model: claude-3-opus, api_base: "{sim.url(ANTHROPIC, "anthropic")}", api_key: sk-ant}}\n'
        "weights:\n"
        f"  {GROUP}: {{{OPENAI}: 1, {AZURE}: 1, {ANTHROPIC}: 1}}\n"
    )


# -- a real Prometheus ---------------------------------------------------------------------------


class Prometheus:
    """A ``prometheus`` process scraping one router as job ``litellm-router``, every second."""

    def __init__(self, tmp_path: Path, target_port: int) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail(
                "prometheus not found on PATH. Install the Debian/Ubuntu package `prometheus` "
                "(apt-get install prometheus), which provides /usr/bin/prometheus; CI installs it."
            )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            f"rule_files:\n  - {ALERTS}\n"
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            "    metrics_path: /metrics\n"
            f'    static_configs: [{{targets: ["127.0.0.1:{target_port}"]}}]\n'
        )
        self.log_path = tmp_path / "prometheus.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"prometheus exited:\n{self.log_tail()}"
            with contextlib.suppress(httpx.TransportError):
                if self.http.get("/-/ready").status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready within {DEADLINE_S}s:\n{self.log_tail()}")

    def query(self, promql: str) -> Vector:
        response = self.http.get("/api/v1/query", params={"query": promql})
        body = response.json()
        assert response.status_code == 200, (promql, body)
        assert body["status"] == "success", (promql, body)
        assert body["data"]["resultType"] == "vector", (promql, body)
        return body["data"]["result"]

    def rules(self) -> list[dict[str, Any]]:
        body = self.http.get("/api/v1/rules").json()
        assert body["status"] == "success", body
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.http.close()
        self._log.close()


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[int], Prometheus]]:
    started: list[Prometheus] = []

    def start(target_port: int) -> Prometheus:
        started.append(Prometheus(tmp_path, target_port))
        return started[-1]

    yield start
    for prometheus in started:
        prometheus.close()


def eventually(
    prometheus: Prometheus, promql: str, check: Callable[[Vector], bool], what: str
) -> Vector:
    """Query until ``check`` accepts the answer; fail with the last answer after the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        result = prometheus.query(promql)
        if check(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: after {DEADLINE_S}s, {promql!r} answers {result!r}")
        time.sleep(0.25)


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def scalar(result: Vector) -> float | None:
    """The value of a one-sample answer; None for an empty one."""
    assert len(result) <= 1, result
    return value(result[0]) if result else None


def by_label(result: Vector, label: str) -> dict[str, float]:
    return {sample["metric"][label]: value(sample) for sample in result}


# -- traffic -------------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Background clients using the official SDK, streaming and not, until stopped.

    ``max_retries=0``: an error the router lets through must reach the count here, not be hidden
    by the SDK's own retries.
    """

    base_url: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for stream in (False, True):
            thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, stream: bool) -> None:
        with openai.OpenAI(base_url=self.base_url, api_key="k", max_retries=0) as client:
            while not self.stop.is_set():
                try:
                    finish = self._one(client, stream)
                except Exception as exc:  # recorded: every failure is a finding
                    self._record(f"{'stream' if stream else 'call'}: {exc!r}")
                else:
                    self._record(None if finish else "answer without finish_reason")
                self.stop.wait(0.02)  # steady, not flooding: a few dozen requests a second

    @staticmethod
    def _one(client: openai.OpenAI, stream: bool) -> str | None:
        if not stream:
            reply = client.chat.completions.create(model=GROUP, messages=MESSAGES)
            return reply.choices[0].finish_reason
        finish = None
        with client.chat.completions.create(model=GROUP, messages=MESSAGES, stream=True) as chunks:
            for chunk in chunks:
                for choice in chunk.choices:
                    finish = choice.finish_reason or finish
        return finish

    def _record(self, failure: str | None) -> None:
        with self.lock:
            if failure is None:
                self.ok += 1
            else:
                self.failures.append(failure)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self.threads), "traffic did not stop"


@pytest.fixture
def traffic() -> Iterator[Callable[[str], Traffic]]:
    started: list[Traffic] = []

    def start(base_url: str) -> Traffic:
        started.append(Traffic(base_url))
        started[-1].start()
        return started[-1]

    yield start
    for t in started:
        t.close()


def check_runbook_curls(router: str) -> None:
    """The runbook's first checks: `curl -f .../health` and `curl -f .../metrics | grep -E`."""
    with httpx.Client(base_url=router, timeout=10) as http:
        health = http.get("/health")
        assert health.status_code == 200, health.text  # what `curl -f` requires
        assert health.headers["content-type"].startswith("application/json")
        assert health.json()["model_groups"][GROUP]["breakers"][OPENAI] == "open"
        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        assert re.search(r"(router_requests_total|router_errors_total)", metrics.text)


def check_rules_evaluated(prometheus: Prometheus) -> None:
    """deploy/prometheus/alerts.yml was evaluated live against these series without an error."""
    rules = prometheus.rules()
    assert len(rules) > 10
    broken = {r.get("name"): r.get("lastError") for r in rules if r.get("health") == "err"}
    assert not broken, broken
    assert all(r.get("health") == "ok" for r in rules), [
        (r.get("name"), r.get("health")) for r in rules
    ]


# -- the test ------------------------------------------------------------------------------------


def test_runbook_queries_answer_sensibly_during_an_openai_outage(
    simulator, start_router, start_prometheus, traffic
):
    simulator.set_fault("*", FaultSpec(latency_ms=20))  # a provider takes real time
    app = start_router(router_config(simulator))
    router = f"http://127.0.0.1:{app.port}"
    prometheus = start_prometheus(app.port)
    prometheus.wait_ready()

    # The first scrape lands before any traffic, so every counter starts from a sample at 0.
    eventually(prometheus, UP, lambda r: scalar(r) == 1, "router scraped")
    load = traffic(f"{router}/v1")

    # Healthy for a few scrapes: the openai deployment serves some of the traffic.
    openai_requests = f'router_requests_total{{deployment="{OPENAI}"}}'
    eventually(
        prometheus,
        openai_requests,
        lambda r: (scalar(r) or 0) >= 15,
        "openai served traffic",
    )

    # The outage: every openai request fails with a 500 until its breaker opens.
    simulator.set_fault(OPENAI, FaultSpec(latency_ms=20, error_rate=1.0, error_status=500))
    eventually(
        prometheus,
        f'{BREAKER_STATE}{{deployment="{OPENAI}"}}',
        lambda r: scalar(r) == 2,
        "openai breaker seen open",
    )
    simulator.clear_faults(OPENAI)  # the provider is back; the breaker stays open (cooldown)

    check_runbook_curls(router)

    # Quick metrics review.
    ratio = scalar(eventually(prometheus, ERROR_RATIO, bool, "overall error ratio"))
    assert ratio is not None
    assert 0 < ratio < 1, ratio  # openai failed, azure and anthropic did not
    assert scalar(prometheus.query(UP)) == 1
    states = by_label(prometheus.query(BREAKER_STATE), "deployment")
    assert states == {OPENAI: 2, AZURE: 0, ANTHROPIC: 0}

    # Deep dive.
    errors = prometheus.query(ERRORS_BY_PROVIDER_REASON)
    rates = {(s["metric"]["provider"], s["metric"]["reason"]): value(s) for s in errors}
    assert rates.get(("openai", "server_error"), 0) > 0, rates
    # Every provider has zero series from the start; only openai's grew.
    assert {provider for (provider, _), rate in rates.items() if rate > 0} == {"openai"}, rates

    changes = by_label(prometheus.query(BREAKER_CHANGES), "deployment")
    assert changes[OPENAI] >= 1, changes
    assert changes[AZURE] == 0, changes
    assert changes[ANTHROPIC] == 0, changes

    p95 = by_label(prometheus.query(P95_BY_COMPONENT), "component")
    assert {"total", "upstream", "overhead"} <= p95.keys(), p95
    for component in ("total", "upstream", "overhead"):
        assert math.isfinite(p95[component]), p95
    assert p95["overhead"] < p95["total"], p95

    # Canary check on the provider that failed.
    openai_ratio = scalar(prometheus.query(PROVIDER_ERROR_RATIO))
    assert openai_ratio is not None
    assert openai_ratio > 0.5, openai_ratio

    # RouteGuard's promise: retries on the other providers absorbed the whole outage.
    load.close()
    assert not load.failures, load.failures[:10]
    assert load.ok > 0
    client_errors = scalar(prometheus.query(CLIENT_ERRORS))
    assert client_errors in (None, 0), client_errors

    check_rules_evaluated(prometheus)
