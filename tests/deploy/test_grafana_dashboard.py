"""The Grafana dashboard: a sound JSON model, and every PromQL expression in it answered with
data by a real Prometheus scraping a real router under simulator load.

The load is the runbook's world in small: group ``gpt-4-turbo`` over OpenAI, Azure and
Anthropic with OpenAI failing a third of its calls, and group ``gpt-4o-mini`` whose only
deployment always fails, so its breaker opens and its requests fall back to ``gpt-4-turbo``.
That produces every series the dashboard reads: errors by reason, retries, fallbacks, breaker
transitions, tokens, cost, and pending alerts of ``deploy/prometheus/alerts.yml``.
"""

from __future__ import annotations

import contextlib
import json
import re
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
import pytest
import yaml
from support import REPO, free_port

from routeguard.simulator import FaultSpec, Simulator

DASHBOARD = REPO / "deploy" / "grafana" / "routeguard.json"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
DEADLINE_S = 90.0
# Grafana's built-in variables, as Grafana would expand them at a 1 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}
MESSAGES = [{"role": "user", "content": "status?"}]


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


def router_config(sim: Simulator) -> str:
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
    )


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
    app = start_router(router_config(simulator))
    prometheus = Prometheus(tmp_path, app.port)
    try:
        with load(f"http://127.0.0.1:{app.port}/v1") as counts:
            pending = dict(expressions())
            answered: dict[str, int] = {}
            start = time.monotonic()
            while pending and time.monotonic() - start < DEADLINE_S:
                for name, expr in list(pending.items()):
                    result = prometheus.query(expand(expr))
                    if result:
                        answered[name] = len(result)
                        del pending[name]
                time.sleep(0.5)
            took = time.monotonic() - start
        assert not pending, f"no data after {DEADLINE_S}s for: {pending} (answered: {answered})"
        assert counts[0] > 0, counts
        print(f"{len(answered)} dashboard queries answered within {took:.1f}s; traffic {counts}")
        # The data is the data the load produced, not just any sample.
        reasons = prometheus.query(
            expand("sum by (provider, reason) (rate(router_errors_total[$__rate_interval]))")
        )
        assert {"openai"} <= {r["metric"]["provider"] for r in reasons}
        states = prometheus.query("max by (deployment) (router_circuit_breaker_state)")
        assert {r["metric"]["deployment"]: r["value"][1] for r in states}["flaky-mini"] == "2"
    finally:
        prometheus.close()


@pytest.mark.parametrize("expr", [e for _, e in expressions()])
def test_expressions_only_use_metrics_routeguard_exports(expr: str) -> None:
    known = {
        "router_requests_total",
        "router_errors_total",
        "router_client_requests_total",
        "router_latency_seconds_bucket",
        "router_circuit_breaker_state",
        "router_circuit_breaker_transitions_total",
        "router_in_flight",
        "router_queue_depth",
        "router_retries_total",
        "router_fallbacks_total",
        "router_tokens_total",
        "router_cost_usd_total",
        "router_effective_weight",
        "router_config_reloads_total",
        "router_info",
        "up",
        "ALERTS",
    }
    recorded = set(re.findall(r"record: (\S+)", ALERTS.read_text(encoding="utf-8")))
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{|\[|\))", expr))
    functions = {
        "sum",
        "rate",
        "increase",
        "max",
        "count",
        "histogram_quantile",
        "group",
        "by",
        "on",
        "group_left",
    }
    metric_names = {
        n
        for n in names
        if n not in functions
        and (n.startswith(("router_", "routeguard:", "provider:")) or n in {"up", "ALERTS"})
    }
    assert metric_names <= known | recorded, metric_names - known - recorded
