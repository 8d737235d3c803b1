"""Operator actions on one replica take effect on all, are audited once each, and persist."""

from __future__ import annotations

from pathlib import Path

from fleetkit import Replica, fleet_config, metric_sum, poll, redis_server, replicas

from routeguard.simulator import FaultSpec, Simulator


def _config(tmp: Path, sim: Simulator, redis_url: str, index: int) -> Path:
    path = tmp / f"router-{index}.yaml"
    path.write_text(
        fleet_config(
            sim.url,
            f'url: "{redis_url}"',
            tmp / f"DECISIONS-{index}.log",
            routing="cooldown_s: 600",
        )
    )
    return path


def test_reset_and_weights_on_a_reach_b_and_a_late_replica(
    simulator: Simulator, tmp_path: Path, record_property
) -> None:
    timings: dict[str, float] = {}
    with redis_server(tmp_path) as redis:
        configs = [_config(tmp_path, simulator, redis.url, i) for i in range(3)]
        with replicas(configs[:2], tmp_path) as (a, b):
            poll(lambda: len(a.admin("GET", "/admin/fleet").json()["members"]) == 2)
            status = a.admin("GET", "/admin/status").json()  # the fleet's status_sections entry
            assert len(status["fleet"]["members"]) == 2
            assert status["fleet"]["redis"]["status"] == "ok"
            # An open breaker on both (A found it; B followed).
            simulator.set_fault("dep-a", FaultSpec(error_rate=1.0))
            while a.breaker("dep-a") != "open":
                a.chat()
            poll(lambda: b.breaker("dep-a") == "open")
            simulator.clear_faults("dep-a")

            answer = a.admin("POST", "/admin/circuit-breaker/reset", {"deployment": "dep-a"})
            assert answer.status_code == 200
            assert answer.json()["acknowledged_by"] == 2
            _, timings["reset"] = poll(lambda: b.breaker("dep-a") == "closed")
            scrape = b.client.get("/metrics").text
            assert metric_sum(scrape, "router_circuit_breaker_state", deployment="dep-a") == 0

            answer = a.admin("PUT", "/admin/weights", {"gpt-4-turbo": {"dep-a": 0, "dep-b": 1}})
            assert answer.status_code == 200, answer.text
            assert answer.json()["acknowledged_by"] == 2
            _, timings["weights"] = poll(
                lambda: (
                    b.admin("GET", "/admin/weights").json()["overrides"]
                    == {"gpt-4-turbo": {"dep-a": 0.0, "dep-b": 1.0}}
                )
            )
            poll(
                lambda: (
                    metric_sum(
                        b.client.get("/metrics").text,
                        "router_effective_weight",
                        deployment="dep-a",
                    )
                    == 0
                )
            )
            # A replica started now adopts the persisted override.
            late = Replica(configs[2], tmp_path / "late.log").start()
            try:
                poll(
                    lambda: (
                        late.admin("GET", "/admin/weights").json()["overrides"]
                        == {"gpt-4-turbo": {"dep-a": 0.0, "dep-b": 1.0}}
                    )
                )
                members = poll(
                    lambda: len(m := a.admin("GET", "/admin/fleet").json()["members"]) == 3 and m
                )[0]
                assert {m["config_mismatch"] for m in members} == {False}
                cleared = b.admin("DELETE", "/admin/weights")
                assert cleared.json()["acknowledged_by"] == 3
                poll(lambda: late.admin("GET", "/admin/weights").json()["overrides"] == {})
                poll(lambda: a.admin("GET", "/admin/weights").json()["overrides"] == {})
            finally:
                late.stop()
            _reload_on_a_reaches_b(a, b, configs[:2])
    record_property("admin_propagation_s", timings)
    print(f"after the answer, visible on B: {timings}")
    # Each replica's decisions log has each action once; the others name the origin replica.
    a_log = (tmp_path / "DECISIONS-0.log").read_text()
    b_log = (tmp_path / "DECISIONS-1.log").read_text()
    assert a_log.count("ACTION=circuit_breaker_reset") == 1
    assert b_log.count("ACTION=circuit_breaker_reset") == 1
    assert "ORIGIN=" in b_log.split("ACTION=circuit_breaker_reset")[1].splitlines()[0]
    assert b_log.count("ACTION=set_weights") == 1
    assert a_log.count("ACTION=config_reload") == 1
    assert b_log.count("ACTION=config_reload") == 1
    assert "ORIGIN=" not in a_log.split("ACTION=circuit_breaker_reset")[1].splitlines()[0]


def _reload_on_a_reaches_b(a: Replica, b: Replica, configs: list[Path]) -> None:
    """A reload sent to A re-reads the files of both (each replica its own file)."""
    for index in (0, 1):
        text = configs[index].read_text().replace("{dep-a: 1, dep-b: 1}", "{dep-a: 1, dep-b: 3}")
        configs[index].write_text(text)
    before = b.admin("GET", "/admin/config").json()["config_version"]
    answer = a.admin("POST", "/admin/config/reload")
    assert answer.status_code == 200, answer.text
    assert answer.json()["acknowledged_by"] == 2
    assert b.admin("GET", "/admin/config").json()["config_version"] != before
    assert b.admin("GET", "/admin/weights").json()["file"]["gpt-4-turbo"]["dep-b"] == 3
