"""Subsystem sections in ``GET /admin/status`` and what ``/admin/diagnose`` makes of them."""

from __future__ import annotations

import httpx

TOKEN = "rg-admin-token-SECRET"


def config(simulator, tmp_path) -> str:
    return f"""
admin: {{audit_log: "{tmp_path / "DECISIONS.log"}", tokens: {{oncall: "{TOKEN}"}}}}
incidents: {{reports_dir: "{tmp_path / "reports"}"}}
deployments:
  a: {{provider: openai, model: m, api_base: "{simulator.url("a")}", api_key: sk-x}}
weights:
  g: {{a: 1}}
fallbacks:
  g: []
"""


def test_sections_are_included_and_a_broken_one_is_contained(start_router, simulator, tmp_path):
    app = start_router(config(simulator, tmp_path))

    def broken() -> object:
        raise RuntimeError("redis went away")

    app.status_sections["rollouts"] = lambda: {"rollouts": []}
    app.status_sections["keys"] = broken
    app.status_sections["windows"] = lambda: "must not replace the core field"
    headers = {"authorization": f"Bearer {TOKEN}"}
    doc = httpx.get(f"http://127.0.0.1:{app.port}/admin/status", headers=headers).json()
    assert doc["rollouts"] == {"rollouts": []}
    assert doc["keys"] == {"error": "RuntimeError: redis went away"}
    assert set(doc["windows"]) == {"1m", "5m", "15m"}
    assert doc["groups"]["g"]["fallbacks"] == []


def test_diagnose_reads_the_fleet_and_redis_sections(start_router, simulator, tmp_path):
    app = start_router(config(simulator, tmp_path))
    app.status_sections["fleet"] = lambda: {
        "members": [
            {"id": "router-0", "config_version": "aaa111"},
            {"id": "router-1", "config_version": "bbb222"},
        ]
    }
    app.status_sections["redis"] = lambda: {"ok": True, "pool_in_use": 50, "pool_size": 50}
    headers = {"authorization": f"Bearer {TOKEN}"}
    doc = httpx.get(f"http://127.0.0.1:{app.port}/admin/diagnose", headers=headers).json()
    assert doc["config_versions"] == {"router-0": "aaa111", "router-1": "bbb222"}
    scenarios = [cause["scenario"] for cause in doc["likely_causes"]]
    assert "Scenario 1: Redis connection pool exhaustion" in scenarios
    assert "Configuration drift between replicas" in scenarios
    assert doc["redis"]["pool_in_use"] == 50
