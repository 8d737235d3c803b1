"""probe, active health checks, drain/undrain and rotate-key over real sockets."""

from __future__ import annotations

import json

import pytest
from ops_support import Router, Traffic, cli, config_text, wait_for

from routeguard.simulator import FaultSpec, Simulator

KINDS = {"oa": "openai", "az": "azure", "an": "anthropic", "vl": "vllm"}


@pytest.fixture
def router(loop_thread, simulator, tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        config_text(simulator, tmp_path / "DECISIONS.log", KINDS, dict.fromkeys(KINDS, 25))
    )
    r = Router(loop_thread, path)
    yield r
    r.close()


def test_probe_reaches_every_provider_kind_in_its_wire_format(router, simulator):
    answer = router.admin.post("/admin/probe", json={"all": True})
    assert answer.status_code == 200
    results = {r["deployment"]: r for r in answer.json()["results"]}
    assert set(results) == set(KINDS)
    for name, result in results.items():
        assert result["status"] == 200, result
        assert result["provider"] == KINDS[name]
        assert 0 < result["ttfb_ms"] <= result["total_ms"]
    stats = simulator.stats()
    assert all(stats[name].streams == 1 for name in KINDS)  # one streamed request each, no routing


def test_probe_reports_a_failing_deployment_and_the_cli_exit_code(router, simulator):
    simulator.set_fault("az", FaultSpec(error_rate=1.0, error_status=503))
    one = router.admin.post("/admin/probe", json={"deployment": "az"}).json()["results"]
    assert one[0]["status"] == 503
    assert one[0]["ok"] is False
    assert one[0]["error"]
    done = cli("probe", "--all", "--json", url=router.url)
    assert done.returncode == 1, done.stderr
    by_name = {r["deployment"]: r for r in json.loads(done.stdout)["results"]}
    assert by_name["az"]["status"] == 503
    assert by_name["oa"]["status"] == 200
    simulator.clear_faults()
    table = cli("probe", "an", url=router.url)
    assert table.returncode == 0, table.stderr
    assert "anthropic" in table.stdout
    assert "200" in table.stdout
    bad = router.admin.post("/admin/probe", json={})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    unknown = router.admin.post("/admin/probe", json={"deployment": "nope"})
    assert unknown.status_code == 404


def test_active_health_check_closes_a_recovered_breaker_without_user_traffic(router, simulator):
    simulator.set_fault("oa", FaultSpec(error_rate=1.0, error_status=500))
    with Traffic(router.url) as traffic:
        wait_for(lambda: router.breaker("oa") != "CLOSED", what="oa's breaker to open")
    assert sum(traffic.errors.values()) == 0  # siblings absorbed it
    simulator.clear_faults()
    before = simulator.stats()["oa"].requests
    took = wait_for(lambda: router.breaker("oa") == "CLOSED", what="health check recovery")
    after = simulator.stats()["oa"].requests
    assert after > before  # the router's own probe, not a user's request, closed it
    section = router.app.status_sections["health_checks"]()
    assert section["enabled"] is True
    assert section["recoveries"] >= 1
    print(f"recovered by active health check {took:.2f} s after the fault cleared (cooldown 1 s)")


def test_drain_provider_then_refuse_the_last_healthy_and_undrain(router, tmp_path):
    answer = router.admin.post("/admin/drain", json={"target": "azure"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["drained"] == ["az"]
    assert router.weights()["az"] == 0
    for name in ("oa", "an"):
        assert router.admin.post("/admin/drain", json={"target": name}).status_code == 200
    refused = cli("drain", "vl", url=router.url)
    assert refused.returncode == 1
    assert "no healthy deployment" in refused.stderr
    assert router.weights()["vl"] == 25
    forced = router.admin.post("/admin/drain", json={"target": "vl", "force": True})
    assert forced.status_code == 200
    assert set(router.weights().values()) == {0}
    undrained = cli("undrain", "oa", "--json", url=router.url)
    assert undrained.returncode == 0, undrained.stderr
    assert json.loads(undrained.stdout)["weights"]["gpt-4-turbo"]["oa"] == 25
    assert router.admin.post("/admin/drain", json={"target": "gcp"}).status_code == 404
    log = (tmp_path / "DECISIONS.log").read_text()
    assert "ACTION=drain | TARGET=azure | DEPLOYMENTS=az" in log
    assert "ACTION=undrain | TARGET=oa" in log
    assert "SECRET" not in log


def test_drain_refuses_when_the_only_other_deployment_has_an_open_breaker(router, simulator):
    for name in ("az", "an"):
        router.admin.post("/admin/drain", json={"target": name})
    simulator.set_fault("vl", FaultSpec(error_rate=1.0, error_status=500))
    with Traffic(router.url):
        wait_for(lambda: router.breaker("vl") == "OPEN", what="vl's breaker to open")
    refused = router.admin.post("/admin/drain", json={"target": "oa"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "last_healthy_deployment"


def test_weights_cli_set_show_clear(router):
    done = cli("weights", "set", "gpt-4-turbo", "oa=70", "az=30", url=router.url)
    assert done.returncode == 0, done.stderr
    assert router.weights()["oa"] == 70
    shown = cli("weights", "show", url=router.url)
    assert "70 (override)" in shown.stdout
    assert cli("weights", "clear", url=router.url).returncode == 0
    assert router.weights()["oa"] == 25
    bad = cli("weights", "set", "gpt-4-turbo", "oa", url=router.url)
    assert bad.returncode == 2


def test_rotate_key_fixes_a_401_storm_without_a_restart(loop_thread, tmp_path):
    sim = Simulator(seed=3, api_keys={"key-old", "sibling-key"})
    loop_thread.run(sim.start())
    key_file = tmp_path / "oa.key"
    key_file.write_text("key-old\n")
    path = tmp_path / "router.yaml"
    extra = {"oa": f'api_key_file: "{key_file}"', "b": "api_key: sibling-key"}
    path.write_text(
        config_text(
            sim,
            tmp_path / "DECISIONS.log",
            {"oa": "openai", "b": "openai"},
            {"oa": 50, "b": 50},
            extra=extra,
        )
    )
    router = Router(loop_thread, path)
    try:
        sim.set_api_keys({"key-new", "sibling-key"})  # the provider revoked the old key
        with Traffic(router.url) as traffic:
            wait_for(lambda: router.breaker("oa") == "OPEN", what="401s to open oa's breaker")
            key_file.write_text("key-new\n")
            done = cli("rotate-key", "oa", url=router.url)
            assert done.returncode == 0, done.stdout + done.stderr
            assert "breaker closed" in done.stdout
            assert router.breaker("oa") == "CLOSED"
            served_before = traffic.served["oa"]
            wait_for(lambda: traffic.served["oa"] > served_before + 5, what="oa to serve again")
        assert sum(traffic.errors.values()) == 0
        log = (tmp_path / "DECISIONS.log").read_text()
        assert "ACTION=rotate_key | DEPLOYMENT=oa | KEY_SOURCE=api_key_file | PROBE=200" in log
        assert "key-new" not in log
        assert "key-old" not in log
    finally:
        router.close()
        loop_thread.run(sim.stop())
