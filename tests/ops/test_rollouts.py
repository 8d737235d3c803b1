"""Router-run rollouts: restore that completes, restore that rolls back, canary pass and fail."""

from __future__ import annotations

import json

import pytest
from ops_support import Router, Traffic, cli, config_text, wait_for

from routeguard.simulator import FaultSpec

DEPLOYMENTS = {"a": "openai", "b": "azure", "c": "anthropic"}


@pytest.fixture
def router(loop_thread, simulator, tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        config_text(simulator, tmp_path / "DECISIONS.log", DEPLOYMENTS, {"a": 40, "b": 40, "c": 20})
    )
    r = Router(loop_thread, path)
    assert r.admin.post("/admin/drain", json={"target": "c"}).status_code == 200
    yield r
    r.close()


def restore_body(**over):
    body = {
        "kind": "restore",
        "deployment": "c",
        "steps": [10, 25, 50, 100],
        "hold_s": "1s",
        "max_error_rate": 0.02,
        "min_requests": 3,
    }
    return {**body, **over}


def test_restore_completes_on_a_healthy_deployment(router, tmp_path):
    with Traffic(router.url) as traffic:
        started = router.admin.post("/admin/rollouts", json=restore_body())
        assert started.status_code == 201, started.text
        rollout_id = started.json()["id"]
        shares = set()

        def finished():
            r = router.rollout(rollout_id)
            shares.add(r["share_pct"])
            return r["state"] != "running"

        wait_for(finished, 60, "the restore to finish")
    final = router.rollout(rollout_id)
    assert final["state"] == "completed", final
    assert final["verdict"] == "pass"
    assert {10, 25, 50} <= shares
    assert router.weights()["c"] == 20  # 100 % means the file's weight again
    assert traffic.served["c"] > 0
    assert sum(traffic.errors.values()) == 0
    log = (tmp_path / "DECISIONS.log").read_text()
    assert "ACTION=restore_start" in log
    assert log.count("ACTION=restore_step") == 4
    assert "ACTION=restore_complete" in log
    status_section = router.app.status_sections["rollouts"]()
    assert status_section["recent"][0]["id"] == rollout_id


def test_restore_rolls_back_when_the_deployment_fails_at_25_percent(router, simulator, tmp_path):
    with Traffic(router.url) as traffic:
        rollout_id = router.admin.post("/admin/rollouts", json=restore_body(hold_s=2)).json()["id"]
        wait_for(lambda: router.rollout(rollout_id)["share_pct"] == 25, 30, "step 25 %")
        simulator.set_fault("c", FaultSpec(error_rate=1.0, error_status=500))
        wait_for(lambda: router.rollout(rollout_id)["state"] != "running", 30, "the rollback")
    final = router.rollout(rollout_id)
    assert final["state"] == "rolled_back", final
    assert final["share_pct"] == 10
    assert final["reasons"]
    assert any("error rate" in r or "breaker" in r for r in final["reasons"])
    weights = router.weights()
    assert weights["c"] == pytest.approx(80 * 0.1 / 0.9, rel=1e-3)  # 10 % of the group
    assert sum(traffic.errors.values()) == 0  # retries hid the failing canary from clients
    log = (tmp_path / "DECISIONS.log").read_text()
    assert "ACTION=restore_rollback" in log
    assert "FAILED_AT_PCT=25" in log
    assert "BACK_TO_PCT=10" in log


def test_restore_watch_from_the_cli(router):
    with Traffic(router.url):
        done = cli(
            "restore",
            "c",
            "--steps",
            "20,100",
            "--hold",
            "1s",
            "--min-requests",
            "3",
            "--watch",
            url=router.url,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESTORED" in done.stdout


def test_canary_passes_and_puts_the_weights_back(router):
    before = router.weights()
    with Traffic(router.url):
        done = cli(
            "canary",
            "c",
            "--traffic-pct",
            "30",
            "--duration",
            "2s",
            "--min-requests",
            "3",
            url=router.url,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout
    assert "peers (baseline)" in done.stdout
    assert router.weights() == before


def test_canary_fails_with_reasons_and_exit_code_1(router, simulator):
    simulator.set_fault("c", FaultSpec(error_rate=0.5, error_status=503))
    with Traffic(router.url):
        done = cli(
            "canary",
            "c",
            "--traffic-pct",
            "30",
            "--duration",
            "3s",
            "--min-requests",
            "3",
            "--json",
            url=router.url,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["state"] == "failed"
    assert verdict["verdict"] == "fail"
    assert verdict["figures"]["canary"]["error_rate"] > 0.02
    assert verdict["figures"]["baseline"]["error_rate"] == 0
    assert router.weights()["c"] == 0  # back to drained, as before the canary


def test_rollout_requests_are_validated_and_one_runs_per_group(router):
    bad = router.admin.post("/admin/rollouts", json=restore_body(steps=[50, 10]))
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "steps"
    assert router.admin.post("/admin/rollouts", json=restore_body(hold_s="soon")).status_code == 400
    assert (
        router.admin.post("/admin/rollouts", json=restore_body(deployment="x")).status_code == 404
    )
    first = router.admin.post("/admin/rollouts", json=restore_body(hold_s="15m"))
    assert first.status_code == 201
    second = router.admin.post("/admin/rollouts", json=restore_body())
    assert second.status_code == 409
    aborted = router.admin.request("DELETE", "/admin/rollouts", json={"id": first.json()["id"]})
    assert aborted.status_code == 200
    assert aborted.json()["state"] == "aborted"


def test_restore_refuses_a_deployment_whose_breaker_is_open(router, simulator):
    router.admin.post("/admin/undrain", json={"target": "c"})
    simulator.set_fault("c", FaultSpec(error_rate=1.0, error_status=500))
    with Traffic(router.url):
        wait_for(lambda: router.breaker("c") == "OPEN", what="c's breaker to open")
    refused = router.admin.post("/admin/rollouts", json=restore_body())
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "breaker_open"


def test_canary_fails_on_the_p95_guard_rail_with_peers_side_by_side(router, simulator):
    simulator.set_fault("c", FaultSpec(latency_ms=300))
    with Traffic(router.url):
        started = router.admin.post(
            "/admin/rollouts",
            json={"kind": "canary", "deployment": "c", "traffic_pct": 40, "duration_s": "3s",
                  "max_p95_ms": 150, "min_requests": 3},
        )  # fmt: skip
        assert started.status_code == 201, started.text
        rollout_id = started.json()["id"]
        wait_for(lambda: router.rollout(rollout_id)["state"] != "running", 30, "the verdict")
    verdict = router.rollout(rollout_id)
    assert verdict["state"] == "failed"
    assert any(r.startswith("p95 ") and "above 150 ms" in r for r in verdict["reasons"])
    assert verdict["figures"]["canary"]["p95_ms"] > 150
    assert verdict["figures"]["baseline"]["p95_ms"] < 150


def test_cli_errors_exit_codes(router):
    unknown = cli("restore", "nope", "--hold", "1s", url=router.url)
    assert unknown.returncode == 1
    assert "unknown deployment" in unknown.stderr
    bad_hold = cli("restore", "c", "--hold", "a while", url=router.url)
    assert bad_hold.returncode == 2
    unreachable = cli("canary", "c", "--duration", "1s", url="http://127.0.0.1:9")
    assert unreachable.returncode == 4


def test_a_rollout_whose_deployment_leaves_the_config_is_aborted_with_the_reason(router, simulator):
    with Traffic(router.url):
        rollout_id = router.admin.post("/admin/rollouts", json=restore_body(hold_s=1.5)).json()[
            "id"
        ]
        wait_for(lambda: router.rollout(rollout_id)["share_pct"] == 10, 30, "the first step")
        text = router.path.read_text().replace(", c: 20}", "}")
        router.path.write_text(text)
        assert router.admin.post("/admin/config/reload").status_code == 200
        wait_for(lambda: router.rollout(rollout_id)["state"] != "running", 30, "the abort")
    final = router.rollout(rollout_id)
    assert final["state"] == "aborted"
    assert "no longer in gpt-4-turbo" in final["reasons"][0]
