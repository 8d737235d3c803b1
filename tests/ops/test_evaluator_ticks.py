"""The evaluator runs by itself in the background: ``router_incident_class`` follows the traffic
with nobody asking ``/admin/status``, so Prometheus scraping ``/metrics`` alone sees the class."""

from __future__ import annotations

import time

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from routeguard.simulator import FaultSpec


def incident_class(base: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        if family.name == "router_incident_class":
            return family.samples[0].value
    raise AssertionError("no router_incident_class")


def test_the_class_gauge_moves_without_a_status_call(start_router, simulator, tmp_path):
    app = start_router(
        f"""
admin: {{audit_log: "{tmp_path / "DECISIONS.log"}"}}
incidents: {{evaluate_interval_s: 0.1, min_requests: 5, p0_for_s: 0, p1_for_s: 0, p2_for_s: 0,
             all_providers_for_s: 0, reports_dir: "{tmp_path / "reports"}"}}
routing: {{num_retries: 0}}
deployments:
  only: {{provider: openai, model: m, api_base: "{simulator.url("only")}", api_key: sk-x}}
weights:
  g: {{only: 1}}
"""
    )
    base = f"http://127.0.0.1:{app.port}"
    assert incident_class(base) == 0
    simulator.set_fault("only", FaultSpec(error_rate=1.0, error_status=500))
    llm = openai.OpenAI(base_url=f"{base}/v1", api_key="k", max_retries=0)
    failed = 0
    for _ in range(10):
        try:
            llm.chat.completions.create(model="g", messages=[{"role": "user", "content": "x"}])
        except openai.APIStatusError:
            failed += 1
    assert failed == 10
    started = time.monotonic()
    deadline = started + 15
    while incident_class(base) != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert incident_class(base) == 3
    print(f"class gauge reached P0 {time.monotonic() - started:.2f} s after the traffic")
    # The tick also opened the incident and audited it, with no admin call at all.
    assert app.health.incidents.current is not None
    assert "ACTION=open_incident" in (tmp_path / "DECISIONS.log").read_text()
