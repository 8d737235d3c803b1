"""``routeguard status``, ``diagnose`` and ``incident`` as an operator runs them: real router
and simulator processes, real sockets, output and exit codes in healthy and failed states."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest
from processes import ROUTEGUARD, free_port, routeguard, simulator_process

TOKEN = "rg-admin-token-SECRET"
CONTRACT_KEYS = {"class", "reasons", "class_since", "generated_at", "replica", "windows",
                 "providers", "groups", "in_flight", "incident"}  # fmt: skip
DEPLOYMENT_KEYS = {"name", "provider", "weight", "file_weight", "overridden", "drained",
                   "share_5m", "requests_5m", "error_rate_5m", "p50_ms", "p95_ms", "breaker",
                   "in_flight", "max_parallel_requests"}  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ROUTEGUARD, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "COLUMNS": "140", **(env or {})},
    )


def write_config(tmp_path: Path, sim_port: int) -> Path:
    path = tmp_path / "router.yaml"
    sim = f"http://127.0.0.1:{sim_port}"
    path.write_text(
        f"""
admin:
  audit_log: "{tmp_path / "DECISIONS.log"}"
  tokens: {{oncall: "{TOKEN}"}}
incidents:
  reports_dir: "{tmp_path / "reports"}"
  evaluate_interval_s: 0.2
  min_requests: 5
  p0_for_s: 0
  p1_for_s: 0
  p2_for_s: 0
  all_providers_for_s: 0
routing:
  num_retries: 1
  retry_backoff_s: 0
deployments:
  dep-a: {{provider: openai, model: m, api_base: "{sim}/dep-a/v1", api_key: sk-a, max_parallel_requests: 8}}
  dep-b: {{provider: anthropic, model: claude, api_base: "{sim}/dep-b", api_key: sk-b}}
weights:
  gpt-4-turbo: {{dep-a: 50, dep-b: 50}}
  solo: {{dep-a: 1}}
"""
    )
    return path


@pytest.fixture
def fleet(tmp_path):
    """A simulator process and a router process serving from it."""
    with simulator_process() as sim_port:
        port = free_port()
        config = write_config(tmp_path, sim_port)
        with routeguard("serve", "--config", str(config), "--port", str(port), port=port):
            url = f"http://127.0.0.1:{port}"
            llm = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
            yield url, sim_port, llm, tmp_path


def chat(llm, model: str, n: int) -> int:
    failed = 0
    for _ in range(n):
        try:
            llm.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError:
            failed += 1
    return failed


def fault(sim_port: int, target: str, **spec) -> None:
    answer = httpx.put(f"http://127.0.0.1:{sim_port}/_sim/faults/{target}", json=spec)
    assert answer.status_code == 200, answer.text


def test_status_healthy_then_p0_and_unreachable(fleet):
    url, sim_port, llm, _ = fleet
    assert chat(llm, "gpt-4-turbo", 20) == 0
    env = {"ROUTEGUARD_URL": url, "ROUTEGUARD_ADMIN_TOKEN": TOKEN}

    healthy = run("status", env=env)
    assert healthy.returncode == 0, healthy.stderr
    for text in ("OK", "dep-a", "dep-b", "openai", "anthropic", "closed", "Traffic"):
        assert text in healthy.stdout

    as_json = run("status", "--json", "--router", url, "--token", TOKEN)
    assert as_json.returncode == 0
    doc = json.loads(as_json.stdout)
    assert set(doc) >= CONTRACT_KEYS
    assert doc["class"] == "OK"
    assert doc["reasons"] == []
    assert doc["incident"] is None
    assert set(doc["windows"]) == {"1m", "5m", "15m"}
    assert doc["windows"]["5m"]["requests"] >= 20
    deployments = doc["groups"]["gpt-4-turbo"]["deployments"]
    assert {d["name"] for d in deployments} == {"dep-a", "dep-b"}
    assert all(set(d) >= DEPLOYMENT_KEYS for d in deployments)
    dep_a = next(d for d in deployments if d["name"] == "dep-a")
    assert dep_a["max_parallel_requests"] == 8
    assert dep_a["breaker"]["state"] == "closed"
    assert len(doc["providers"]["openai"]["series"]) == 90
    assert doc["replica"]["pid"] > 0
    assert doc["replica"]["config_version"]

    # Every deployment of "solo" fails: clients get 5xx, the class is P0 (durations are 0 here).
    fault(sim_port, "dep-a", error_rate=1.0, error_status=500)
    assert chat(llm, "solo", 25) == 25
    failed = run("status", env=env)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "P0" in failed.stdout
    assert "above 50.0%" in failed.stdout
    doc = json.loads(run("status", "--json", env=env).stdout)
    assert doc["class"] == "P0"
    assert doc["incident"] is not None
    assert doc["incident"]["auto"]
    breaker = next(d for d in doc["groups"]["solo"]["deployments"])["breaker"]
    assert breaker["state"] == "open"
    assert breaker["since"]
    assert breaker["retry_in_s"] > 0

    diag = run("diagnose", env=env)
    assert diag.returncode == 3, diag.stderr
    for text in ("Errors by provider and reason", "server_error", "Breaker changes in the last hour",
                 "Top error messages", "Likely causes"):  # fmt: skip
        assert text in diag.stdout, diag.stdout

    # Refused and unreachable are told apart from every class.
    refused = run("status", "--router", url, "--token", "wrong")
    assert refused.returncode == 5
    assert "401" in refused.stderr


def test_status_of_a_router_that_does_not_answer_is_p0_exit_4():
    gone = run("status", "--json", "--router", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert gone.returncode == 4
    assert json.loads(gone.stdout) == {
        "class": "P0",
        "reachable": False,
        "reasons": [json.loads(gone.stdout)["reasons"][0]],
    }
    assert json.loads(gone.stdout)["reasons"][0].startswith("router unresponsive")
    text = run("status", "--router", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert text.returncode == 4
    assert "router unresponsive" in text.stdout


def test_diagnose_maps_a_401_storm_to_key_rotation(fleet):
    url, sim_port, llm, _ = fleet
    fault(sim_port, "dep-b", error_rate=1.0, error_status=401)
    chat(llm, "gpt-4-turbo", 30)  # retries land on dep-a, clients are fine
    result = run("diagnose", "--json", "--router", url, "--token", TOKEN)
    assert result.returncode in (0, 1, 2), result.stderr
    doc = json.loads(result.stdout)
    auth = [r for r in doc["errors_by_provider_reason"] if r["reason"] == "auth"]
    assert auth
    assert auth[0]["provider"] == "anthropic"
    scenarios = [c["scenario"] for c in doc["likely_causes"]]
    assert scenarios[0] == "Scenario 2: provider API key rotation", doc["likely_causes"]
    assert "anthropic" in doc["likely_causes"][0]["cause"]
    assert any(c["new"] == "open" and c["deployment"] == "dep-b" for c in doc["breaker_changes_1h"])
    assert doc["top_errors_1h"][0]["reason"] == "auth"
    assert "sk-b" not in result.stdout
    assert doc["config_versions"]
    assert doc["memory"]["rss_mb"] > 0
    text = run("diagnose", "--router", url, "--token", TOKEN)
    assert "Scenario 2: provider API key rotation" in text.stdout


def test_incident_commands_by_hand(fleet):
    url, _, _, tmp_path = fleet
    env = {"ROUTEGUARD_URL": url, "ROUTEGUARD_ADMIN_TOKEN": TOKEN}
    opened = run(
        "incident", "open", "--id", "INC-42", "--class", "P1", "--summary", "openai slow", env=env
    )
    assert opened.returncode == 0, opened.stderr
    assert "INC-42" in opened.stdout
    assert "P1" in opened.stdout
    again = run("incident", "open", env=env)
    assert again.returncode == 1
    assert "409" in again.stderr
    noted = run("incident", "note", "drained openai-gpt4-turbo", "--json", env=env)
    assert json.loads(noted.stdout)["timeline"][-1]["event"] == "oncall: drained openai-gpt4-turbo"
    time.sleep(0.1)
    resolved = run(
        "incident",
        "resolve",
        "--cause",
        "provider outage",
        "--impact",
        "none visible",
        "--json",
        env=env,
    )
    assert resolved.returncode == 0, resolved.stderr
    doc = json.loads(resolved.stdout)
    assert doc["decision_line"].endswith(
        "| CHAPTER=38 | ACTION=resolve_outage | INCIDENT=INC-42 | CAUSE=provider outage | MTTR=1m | IMPACT=none visible"
    )
    assert Path(doc["report_path"]).is_file()
    assert doc["report_path"].startswith(str(tmp_path / "reports"))
    listed = run("incident", "list", env=env)
    assert "INC-42" in listed.stdout
    assert "resolved" in listed.stdout
    report = run("incident", "report", "INC-42", env=env)
    assert report.returncode == 0
    assert "- **Incident ID**: INC-42" in report.stdout
    assert run("incident", "note", "late", env=env).returncode == 1  # nothing open any more
    gone = run("incident", "list", "--router", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert gone.returncode == 4
