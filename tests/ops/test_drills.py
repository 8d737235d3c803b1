"""Every drill, end to end at a CI duration, as ``routeguard drill`` processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_support import cli

SCENARIOS = ["provider-outage", "redis-pool-exhaustion", "key-rotation", "vllm-oom", "memory-leak"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_drill_passes_at_a_short_duration(scenario, tmp_path):
    done = cli("drill", scenario, "--duration", "6s", "--out", str(tmp_path), "--json",
               url="http://127.0.0.1:9", timeout=180)  # fmt: skip
    report = json.loads(done.stdout)
    assert done.returncode == 0, json.dumps(report["checks"], indent=1) + done.stderr
    assert report["passed"] is True
    assert report["client_errors"] == 0
    assert report["client_requests"] > 100
    classes = report["class_over_time"]  # from GET /admin/status, sampled once a second
    assert classes
    assert classes[0][1] == "OK"
    assert {cls for _, cls in classes} <= {"OK", "P2", "P1", "P0"}
    for path in report["saved"]:
        assert (tmp_path / path.rsplit("/", 1)[1]).exists()
    markdown = next(p for p in report["saved"] if p.endswith(".md"))
    assert "| check | target | measured | result |" in Path(markdown).read_text()
    if scenario != "memory-leak":
        assert report["detect_s"] < 10
        assert report["recover_s"] <= report["cooldown_s"] + 5
        assert report["mttr_s"] >= report["recover_s"]
        print(f"{scenario}: detect {report['detect_s']} s, recover {report['recover_s']} s")
    if scenario == "redis-pool-exhaustion":
        figures = report["figures"]
        print(f"{scenario}: {figures}")
        assert report["skipped"] is None
        assert figures["replicas"] == 3
        # The routers saw the refusal itself, not some other failure.
        assert "max number of clients reached" in figures["redis_last_error"]
        assert figures["detect_all_replicas_s"] is not None
        assert figures["requests_per_s"]["during"] > 0  # traffic kept flowing while Redis refused
        events = [text for _, text in report["timeline"]]
        assert any("degraded, degraded, degraded" in text for text in events)
        assert any(text.endswith("ok, ok, ok; members in redis: 3") for text in events)


def test_unknown_drill_is_a_usage_error(tmp_path):
    done = cli("drill", "meteor-strike", "--out", str(tmp_path), url="http://127.0.0.1:9")
    assert done.returncode == 2
    assert "provider-outage" in done.stderr
