"""Incident class transitions (P2 -> P1 -> P0 -> OK) over real sockets with a manual clock, the
incident they open and close, the runbook's DECISIONS.log line and the report."""

from __future__ import annotations

import base64
import io
import random
import re
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from routeguard.config.loader import load_config
from routeguard.observability.audit import parse_line
from routeguard.resilience import ManualClock
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import FaultSpec

TOKEN = "rg-admin-token-SECRET"
CLI = [sys.executable, "-m", "routeguard.cli"]
# The runbook's line: ts | OPERATOR= | CHAPTER=38 | ACTION=resolve_outage | INCIDENT= | CAUSE= |
# MTTR=Nm | IMPACT=
RUNBOOK_RESOLVE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \| OPERATOR=[^|\n]+ \| CHAPTER=38 \| "
    r"ACTION=resolve_outage \| INCIDENT=[^|\n]+ \| CAUSE=[^|\n]* \| MTTR=\d+m \| IMPACT=[^|\n]*$"
)


def config_text(sim, tmp_path: Path) -> str:
    return f"""
admin:
  audit_log: "{tmp_path / "DECISIONS.log"}"
  tokens: {{oncall: "{TOKEN}"}}
incidents:
  reports_dir: "{tmp_path / "reports"}"
  evaluate_interval_s: 60
  error_window_s: 60
  min_requests: 10
  p2_for_s: 60
  p1_for_s: 60
  p0_for_s: 60
  all_providers_for_s: 60
  provider_failing_for_s: 100000
routing:
  num_retries: 0
  circuit_breaker_min_requests: 1000000
deployments:
  good: {{provider: openai, model: m, api_base: "{sim.url("good")}", api_key: sk-a}}
  bad: {{provider: openai, model: m, api_base: "{sim.url("bad")}", api_key: sk-b}}
weights:
  fine: {{good: 1}}
  broken: {{bad: 1}}
"""


@pytest.fixture
def clocked(loop_thread, simulator, tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(config_text(simulator, tmp_path))
    clock = ManualClock(1_000_000.0)
    app = RouteGuardApp(load_config(path), config_path=path, rng=random.Random(3), clock=clock)
    loop_thread.run(app.start("127.0.0.1", 0))
    simulator.set_fault("bad", FaultSpec(error_rate=1.0, error_status=500))
    base = f"http://127.0.0.1:{app.port}"
    llm = openai.OpenAI(base_url=f"{base}/v1", api_key="k", max_retries=0)
    with httpx.Client(
        base_url=base, timeout=30, headers={"authorization": f"Bearer {TOKEN}"}
    ) as admin:
        yield app, clock, llm, admin, tmp_path
    loop_thread.run(app.close(drain_timeout_s=1))


def send(llm, good: int, bad: int) -> None:
    failures = []
    for model, n in (("fine", good), ("broken", bad)):
        for _ in range(n):
            try:
                llm.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}]
                )
            except openai.APIStatusError as exc:
                failures.append((model, exc.status_code))
    # "broken" fails upstream (502) or, once its breaker is open, at the router (503).
    assert all(model == "broken" and status in (502, 503) for model, status in failures)
    assert len(failures) == bad


def step(clock, llm, admin, *, good: int, bad: int) -> dict:
    """Ten seconds of traffic at a fixed error ratio, then the status the router reports."""
    send(llm, good, bad)
    clock.advance(10)
    answer = admin.get("/admin/status")
    assert answer.status_code == 200
    return answer.json()


def incident_class_metric(admin) -> float:
    text = admin.get("/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == "router_incident_class":
            return family.samples[0].value
    raise AssertionError("router_incident_class missing")


def drive_p2_p1_p0_ok(clock, llm, admin) -> dict:
    """Traffic through P2, P1, P0 and back to OK; returns the incident it opened."""
    classes = []
    # 2 % errors: P2 once it has held for 60 s, never before (Prometheus `for:` semantics).
    for _ in range(9):
        doc = step(clock, llm, admin, good=49, bad=1)
        classes.append(doc["class"])
    assert classes[0] == "OK", classes
    assert doc["class"] == "P2", classes
    assert any("above 1.0% for 1m" in r for r in doc["reasons"]), doc["reasons"]
    first_p2 = classes.index("P2")
    assert first_p2 >= 5  # 10 s steps: the condition had to hold 60 s first
    assert incident_class_metric(admin) == 1
    assert admin.get("/admin/incidents").json()["open"] is None  # P2 opens no incident

    # 20 %: P1 after its 60 s, and then an incident opens by itself.
    for _ in range(12):
        doc = step(clock, llm, admin, good=40, bad=10)
    assert doc["class"] == "P1", doc["reasons"]
    assert incident_class_metric(admin) == 2
    incident = doc["incident"]
    assert incident is not None
    assert incident["class"] == "P1"
    assert incident["auto"]

    # An operator acts during the incident: it must show up under "Actions Taken".
    put = admin.put("/admin/weights", json={"broken": {"bad": 0}, "force": True})
    assert put.status_code == 200, put.text
    admin.delete("/admin/weights")
    assert (
        admin.post("/admin/incidents/note", json={"text": "drained bad, then undid it"}).status_code
        == 200
    )

    # 70 %: P0 (error rate and all providers failing).
    for _ in range(13):  # the 1m window fills with the new ratio, then it holds for 1m
        doc = step(clock, llm, admin, good=15, bad=35)
    assert doc["class"] == "P0", (doc["reasons"], doc["pending"], doc["windows"]["1m"])
    assert any("above 50.0% for 1m" in r for r in doc["reasons"]), doc["reasons"]
    assert incident_class_metric(admin) == 3

    # Recovery: no errors; the window empties of errors and the class drops to OK at once.
    for _ in range(8):
        doc = step(clock, llm, admin, good=20, bad=0)
    assert doc["class"] == "OK", doc["reasons"]
    assert incident_class_metric(admin) == 0
    incidents = admin.get("/admin/incidents").json()
    current = incidents["open"]
    events = [e["event"] for e in current["timeline"]]
    assert events[0].startswith("opened automatically as P1")
    assert any("P1 -> P0" in e for e in events)
    assert any(e.startswith("class back to OK") for e in events)
    assert any("drained bad" in e for e in events)
    assert current["worst_class"] == "P0"
    assert current["recovered_at"] is not None
    mttr = current["mttr_minutes"]
    assert 2 <= mttr <= 4  # opened at ~P1, recovered ~2.5-3 simulated minutes later
    return current


def check_decision_line(tmp: Path, current: dict) -> None:
    mttr = current["mttr_minutes"]
    lines = (tmp / "DECISIONS.log").read_text().splitlines()
    resolve_line = next(line for line in lines if "ACTION=resolve_outage" in line)
    assert RUNBOOK_RESOLVE.fullmatch(resolve_line), resolve_line
    entry = parse_line(resolve_line)
    assert entry is not None
    assert list(entry) == [
        "ts",
        "OPERATOR",
        "CHAPTER",
        "ACTION",
        "INCIDENT",
        "CAUSE",
        "MTTR",
        "IMPACT",
    ]
    assert entry["OPERATOR"] == "oncall"
    assert entry["CHAPTER"] == "38"
    assert entry["INCIDENT"] == current["id"]
    assert entry["MTTR"] == f"{mttr}m"
    assert entry["CAUSE"].startswith("openai 5xx / CHAPTER=99 second line")
    assert "abcdefghijklmnopqrst" not in resolve_line
    assert entry["IMPACT"] == "20% of broken-group requests failed"
    actions = [parse_line(line)["ACTION"] for line in lines]
    assert actions.count("open_incident") == 1
    assert "incident_recovered" in actions


def check_report(tmp: Path, admin, current: dict) -> None:
    mttr = current["mttr_minutes"]
    opened_at = current["opened_at"]
    # The report on disk: the runbook's template, the chart beside it.
    reports = sorted((tmp / "reports").glob("router_incident_*.md"))
    assert len(reports) == 1
    assert re.fullmatch(r"router_incident_\d{8}_\d{4}\.md", reports[0].name)
    markdown = reports[0].read_text()
    for heading in ("## Summary", "## Root Cause", "## Actions Taken", "## Prevention Measures",
                    "## Timeline", "## Error rate"):  # fmt: skip
        assert heading in markdown
    for field in ("**Incident ID**: " + current["id"], "**Start Time**: " + opened_at,
                  "**End Time**: ", f"**MTTR**: {mttr} minutes",
                  "**Impact**: 20% of broken-group requests failed"):  # fmt: skip
        assert field in markdown
    actions_taken = markdown.split("## Actions Taken")[1].split("## Prevention")[0]
    assert "oncall: " in actions_taken  # the weight override and its clearing, from the audit log
    assert re.search(r"breaker bad \(openai\): \w+ -> open", actions_taken)
    assert "alert earlier" in markdown
    assert "abcdefghijklmnopqrst" not in markdown  # secrets are masked in the report too
    png = reports[0].with_suffix(".png")
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size == (900, 340)
    assert f"]({png.name})" in markdown

    # The same report over the API, and through `routeguard incident report --out`.
    answer = admin.get("/admin/incidents/report", params={"id": current["id"]}).json()
    assert answer["id"] == current["id"]
    assert "## Root Cause" in answer["markdown"]
    with Image.open(io.BytesIO(base64.b64decode(answer["chart_png_base64"]))) as image:
        assert image.format == "PNG"
    out = tmp / "fetched"
    result = subprocess.run(
        [*CLI, "incident", "report", current["id"], "--out", str(out), "--router",
         str(admin.base_url), "--token", TOKEN],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("*.md"))) == 1
    assert len(list(out.glob("*.png"))) == 1
    assert admin.get("/admin/incidents").json()["open"] is None


def test_p2_p1_p0_ok_opens_and_closes_an_incident(clocked):
    _, clock, llm, admin, tmp = clocked
    current = drive_p2_p1_p0_ok(clock, llm, admin)
    # Resolve through the CLI (a real process), with values that try to break the line format.
    result = subprocess.run(
        [*CLI, "incident", "resolve", "--router", str(admin.base_url), "--cause",
         "openai 5xx | CHAPTER=99\nsecond line api_key=sk-live-abcdefghijklmnopqrst",
         "--impact", "20% of broken-group requests failed", "--prevention", "alert earlier"],
        capture_output=True, text=True, check=False,
        env={"ROUTEGUARD_ADMIN_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "resolved" in result.stdout
    assert "DECISIONS.log" in result.stdout
    check_decision_line(tmp, current)
    check_report(tmp, admin, current)


def test_incident_calls_refuse_bad_input_and_wrong_state(clocked):
    _, _, _, admin, _ = clocked
    assert admin.post("/admin/incidents/note", json={"text": "x"}).status_code == 404
    bad = admin.post("/admin/incidents/resolve", json={"cause": "", "impact": "x"})
    assert bad.status_code in (400, 404)
    opened = admin.post(
        "/admin/incidents/open", json={"id": "INC-7", "class": "P2", "summary": "slow"}
    )
    assert opened.status_code == 200
    assert opened.json()["id"] == "INC-7"
    again = admin.post("/admin/incidents/open", json={})
    assert again.status_code == 409
    assert again.json()["error"]["message"].startswith("Incident INC-7 is open")
    assert admin.post("/admin/incidents/open", json={"id": "a b|c"}).status_code == 400
    missing = admin.post("/admin/incidents/resolve", json={"impact": "none"})
    assert missing.status_code == 400
    assert "cause" in missing.json()["error"]["message"]
    assert admin.post("/admin/incidents/note", json={"text": 5}).status_code == 400
    assert admin.get("/admin/incidents/report", params={"id": "nope"}).status_code == 404
    assert httpx.get(f"{admin.base_url}/admin/incidents").status_code == 401
