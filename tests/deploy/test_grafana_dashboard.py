"""The Grafana dashboard: a sound JSON model, and every PromQL expression in it answered with
data by a real Prometheus scraping a real router under simulator load.

The load is the runbook's world in small: group ``gpt-4-turbo`` over OpenAI, Azure and
Anthropic with OpenAI failing a third of its calls, and group ``gpt-4o-mini`` whose only
deployment always fails, so its breaker opens and its requests fall back to ``gpt-4-turbo``.
That produces every series the dashboard reads: errors by reason, retries, fallbacks, breaker
transitions, tokens, cost, and pending alerts of ``deploy/prometheus/alerts.yml``.

The Redis panels read the fleet's ``router_redis_*``/``router_fleet_*`` series. Where the
schema has the fleet's ``redis:`` section, the router gets a real ``redis-server`` and those
queries must return data like the rest; on a tree without the fleet they must still be valid
PromQL (Prometheus answers ``success``), and the test prints which ones it could not see answered.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml
from support import REPO, free_port

from routeguard.config.schema import Config
from routeguard.simulator import FaultSpec, Simulator

DASHBOARD = REPO / "deploy" / "grafana" / "routeguard.json"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
DEADLINE_S = 90.0
# Grafana's built-in variables, as Grafana would expand them at a 1 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
MESSAGES = [{"role": "user", "content": "status?"}]
FLEET = "redis" in Config.model_fields
FLEET_METRICS = ("router_redis_", "router_fleet_")


def dashboard() -> dict[str, Any]:
    model: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return model


def expressions() -> list[tuple[str, str]]:
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


# -- the JSON model ---------------------------------------------------------------------------


def test_dashboard_is_generated_and_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-grafana-dashboard"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_json_model() -> None:
    model = dashboard()
    assert model["uid"] == "routeguard"
    assert model["title"]
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = model["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        where = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["fieldConfig"]["defaults"]["unit"], f"{where}: no unit"
        assert panel["description"], where
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, where
        assert len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], where
            assert target["legendFormat"], where
        grid = panel["gridPos"]
        assert grid["x"] >= 0, where
        assert grid["x"] + grid["w"] <= 24, where
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{where} overlaps another panel"
        occupied |= cells


def test_dashboard_covers_the_triage_questions() -> None:
    exprs = " ".join(expr for _, expr in expressions())
    for metric in (
        "router_errors_total",
        "router_client_requests_total",
        "router_latency_seconds_bucket",
        "router_circuit_breaker_state",
        "router_retries_total",
        "router_fallbacks_total",
        "router_in_flight",
        "router_tokens_total",
        "router_cost_usd_total",
        "ALERTS",
        "router_redis_up",
        "router_redis_sync_lag_seconds",
        "routeguard:client_error_ratio:rate5m",
        "provider:upstream_error_ratio:rate5m",
    ):
        assert metric in exprs, metric
    thresholds = [
        step["value"]
        for panel in dashboard()["panels"]
        if "ratio" in panel["title"].lower()
        for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]
    assert {0.01, 0.05, 0.5} <= set(thresholds), "the runbook's P2/P1/P0 lines"


def test_provisioning_matches_compose() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"])
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "routeguard.yaml").read_text())
    folder = providers["providers"][0]["options"]["path"]
    dashboard_mount = mounts["./grafana/routeguard.json"]
    assert dashboard_mount.rsplit("/", 1)[0] == folder
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    sources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]


# -- against a real Prometheus ----------------------------------------------------------------


def router_config(sim: Simulator, redis_port: int | None) -> str:
    redis = f"redis: {{url: 'redis://127.0.0.1:{redis_port}/0', sync_interval_s: 0.5}}\n"
    price = "input_cost_per_token: 0.00001, output_cost_per_token: 0.00003"
    return (
        "server: {access_log: false}\n"
        "routing: {timeout_s: 5, num_retries: 2, retry_backoff_s: 0, circuit_breaker_error_rate: 0.5, "
        "circuit_breaker_min_requests: 5, circuit_breaker_window_s: 30, cooldown_s: 600}\n"
        "deployments:\n"
        f'  openai-gpt4-turbo: {{provider: openai, model: gpt-4-turbo, api_base: "{sim.url("openai-gpt4-turbo")}", api_key: k, {price}, circuit_breaker_error_rate: 0.9}}\n'
        f'  azure-gpt4-turbo: {{provider: azure, model: gpt-4-turbo, api_base: "{sim.url("azure-gpt4-turbo", "azure")}", api_key: k, api_version: "2024-10-21", {price}}}\n'
        f'  anthropic-claude-3-opus: {{provider: anthropic, model: claude-3-opus, api_base: "{sim.url("anthropic-claude-3-opus", "anthropic")}", api_key: k, {price}}}\n'
        f'  flaky-mini: {{provider: openai, model: gpt-4o-mini, api_base: "{sim.url("flaky-mini")}", api_key: k, {price}}}\n'
        "weights:\n"
        "  gpt-4-turbo: {openai-gpt4-turbo: 1, azure-gpt4-turbo: 1, anthropic-claude-3-opus: 1}\n"
        "  gpt-4o-mini: {flaky-mini: 1}\n"
        "fallbacks: {gpt-4o-mini: [gpt-4-turbo]}\n"
    ) + (redis if redis_port is not None else "")


@contextlib.contextmanager
def redis_server(tmp_path: Path) -> Iterator[int | None]:
    """A real redis-server for the fleet's state, when this tree has the fleet."""
    if not FLEET:
        yield None
        return
    binary = shutil.which("redis-server")
    assert binary, "redis-server not found: install the Debian package redis-server"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def reads_fleet(expr: str) -> bool:
    return any(prefix in expr for prefix in FLEET_METRICS)


class Prometheus:
    """A ``prometheus`` process scraping one router every second, evaluating alerts.yml."""

    def __init__(self, tmp_path: Path, target_port: int) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: install the Debian package prometheus (CI does)"
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{ALERTS}]\n"
            "scrape_configs:\n"
            f"  - {{job_name: litellm-router, static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]}}\n"
        )
        self.log = (tmp_path / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (tmp_path / "prometheus.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if self.http.get("/-/ready").status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError("prometheus did not become ready")

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = self.http.get("/api/v1/query", params={"query": promql}).json()
        assert body["status"] == "success", (promql, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.http.close()
        self.log.close()


@contextlib.contextmanager
def load(base_url: str) -> Iterator[list[int]]:
    """Clients of both groups, streaming and not, until the block ends; yields [ok, failed]."""
    stop, counts = threading.Event(), [0, 0]

    def run(model: str, stream: bool) -> None:
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
            while not stop.is_set():
                try:
                    if stream:
                        with client.chat.completions.create(
                            model=model, messages=MESSAGES, stream=True
                        ) as chunks:  # type: ignore[arg-type]
                            for _ in chunks:
                                pass
                    else:
                        client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
                    counts[0] += 1
                except openai.APIError:
                    counts[1] += 1
                stop.wait(0.02)

    threads = [
        threading.Thread(target=run, args=(model, stream), daemon=True)
        for model in ("gpt-4-turbo", "gpt-4o-mini")
        for stream in (False, True)
    ]
    for thread in threads:
        thread.start()
    try:
        yield counts
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unexpanded Grafana variable in {expr!r}"
    return expr


def test_every_panel_query_returns_data(
    simulator: Simulator, start_router: Any, tmp_path: Path
) -> None:
    simulator.set_fault("*", FaultSpec(latency_ms=5))
    simulator.set_fault("openai-gpt4-turbo", FaultSpec(latency_ms=5, error_rate=0.34))
    simulator.set_fault("flaky-mini", FaultSpec(error_rate=1.0, error_status=500))
    with redis_server(tmp_path) as redis_port:
        app = start_router(router_config(simulator, redis_port))
        prometheus = Prometheus(tmp_path, app.port)
        try:
            check_queries(prometheus, f"http://127.0.0.1:{app.port}/v1")
        finally:
            prometheus.close()


def check_queries(prometheus: Prometheus, base_url: str) -> None:
    with load(base_url) as counts:
        pending = dict(expressions())
        answered: dict[str, int] = {}
        start = time.monotonic()
        while time.monotonic() - start < DEADLINE_S:
            for name, expr in list(pending.items()):
                result = prometheus.query(expand(expr))  # asserts the PromQL is valid
                if result:
                    answered[name] = len(result)
                    del pending[name]
            if not pending or all(reads_fleet(e) and not FLEET for e in pending.values()):
                break
            time.sleep(0.5)
        took = time.monotonic() - start
    without_fleet = sorted(n for n, e in pending.items() if reads_fleet(e) and not FLEET)
    if without_fleet:
        print(f"valid, but no data without the fleet's redis section: {without_fleet}")
    missing = {n: e for n, e in pending.items() if n not in without_fleet}
    assert not missing, f"no data after {DEADLINE_S}s for: {missing} (answered: {answered})"
    assert counts[0] > 0, counts
    print(f"{len(answered)} dashboard queries answered within {took:.1f}s; traffic {counts}")
    # The data is the data the load produced, not just any sample.
    reasons = prometheus.query(
        expand("sum by (provider, reason) (rate(router_errors_total[$__rate_interval]))")
    )
    assert {"openai"} <= {r["metric"]["provider"] for r in reasons}
    states = prometheus.query("max by (deployment) (router_circuit_breaker_state)")
    assert {r["metric"]["deployment"]: r["value"][1] for r in states}["flaky-mini"] == "2"
