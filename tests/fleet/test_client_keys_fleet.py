"""Client keys across the fleet: a revocation on one replica refuses the key on all of them,
is audited once per replica, and is adopted by a replica started later."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
from fleetkit import Replica, fleet_config, poll, redis_server, replicas

from routeguard.simulator import Simulator

KEY = "client"  # what Replica.chat sends as its bearer key
KEY_ID = hashlib.sha256(KEY.encode()).hexdigest()[:12]


def _config(tmp: Path, sim: Simulator, redis_url: str, index: int, keys: str) -> Path:
    path = tmp / f"router-{index}.yaml"
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    path.write_text(
        fleet_config(sim.url, f'url: "{redis_url}"', tmp / f"DECISIONS-{index}.log")
        + "clients:\n  keys:\n"
        + f"    team-a: {{key_hash: 'sha256:{digest}'{keys}}}\n"
    )
    return path


def _refused(replica: Replica) -> httpx.Response | None:
    answer = replica.chat()
    return answer if answer.status_code == 401 else None


def test_revocation_on_a_refuses_the_key_on_b_and_on_a_late_replica(
    simulator: Simulator, tmp_path: Path, record_property
) -> None:
    timings: dict[str, float] = {}
    with redis_server(tmp_path) as redis:
        configs = [_config(tmp_path, simulator, redis.url, i, "") for i in range(3)]
        with replicas(configs[:2], tmp_path) as (a, b):
            poll(lambda: len(a.admin("GET", "/admin/fleet").json()["members"]) == 2)
            assert a.chat().status_code == 200
            assert b.chat().status_code == 200

            answer = a.admin("POST", "/admin/keys/revoke", {"key_id": KEY_ID})
            assert answer.status_code == 200, answer.text
            assert answer.json()["revoked"] == KEY_ID
            assert answer.json()["acknowledged_by"] == 2
            assert _refused(a) is not None
            refused, timings["revoke"] = poll(lambda: _refused(b))
            assert refused.json()["error"]["code"] == "key_revoked"
            listed = b.admin("GET", "/admin/keys").json()["keys"]
            assert [k["revoked"] for k in listed] == [True]

            late = Replica(configs[2], tmp_path / "late.log").start()
            try:
                _, timings["late_replica"] = poll(lambda: _refused(late))
                answer = b.admin("POST", "/admin/keys/unrevoke", {"name": "team-a"})
                assert answer.status_code == 200, answer.text
                assert answer.json()["unrevoked"] == KEY_ID
                _, timings["unrevoke"] = poll(lambda: a.chat().status_code == 200)
                poll(lambda: late.chat().status_code == 200)
                assert b.chat().status_code == 200
            finally:
                late.stop()
    record_property("key_revocation_propagation_s", timings)
    print(f"after the answer, visible elsewhere: {timings}")
    # Each replica's decisions log has each action once; the others name the origin replica.
    a_log = (tmp_path / "DECISIONS-0.log").read_text()
    b_log = (tmp_path / "DECISIONS-1.log").read_text()
    for log in (a_log, b_log):
        assert log.count("ACTION=revoke_client_key") == 1
        assert log.count("ACTION=unrevoke_client_key") == 1
    assert f"KEY_ID={KEY_ID}" in b_log.split("ACTION=revoke_client_key")[1].splitlines()[0]
    assert "ORIGIN=" in b_log.split("ACTION=revoke_client_key")[1].splitlines()[0]
    assert "ORIGIN=" not in a_log.split("ACTION=revoke_client_key")[1].splitlines()[0]
    assert "ORIGIN=" in a_log.split("ACTION=unrevoke_client_key")[1].splitlines()[0]


def test_key_rpm_holds_across_two_replicas(
    simulator: Simulator, tmp_path: Path, record_property
) -> None:
    rpm = 10
    with redis_server(tmp_path) as redis:
        configs = [_config(tmp_path, simulator, redis.url, i, f", rpm: {rpm}") for i in range(2)]
        with replicas(configs, tmp_path) as (a, b):
            poll(lambda: len(a.admin("GET", "/admin/fleet").json()["members"]) == 2)
            # One wall-clock minute (the fleet's counting unit) must hold the whole burst.
            if time.time() % 60 > 40:
                time.sleep(61 - time.time() % 60)
            minute = int(time.time() // 60)
            answers = [(a if i % 2 else b).chat() for i in range(3 * rpm)]
            assert int(time.time() // 60) == minute
            statuses = [answer.status_code for answer in answers]
            admitted = statuses.count(200)
            assert set(statuses) == {200, 429}, statuses
            # Each replica alone would admit rpm; together they admit at most rpm, and at least
            # rpm minus the grants (batch = 1 here) the other replica holds unspent.
            assert rpm - 2 <= admitted <= rpm, statuses
            refused = next(answer for answer in answers if answer.status_code == 429)
            assert "across the fleet" in refused.json()["error"]["message"]
            assert int(refused.headers["retry-after"]) >= 1
    record_property("key_rpm_admitted", admitted)
    print(f"rpm {rpm}: admitted {admitted} of {3 * rpm} across two replicas")


def _spent(replica: Replica) -> float:
    keys = replica.admin("GET", "/admin/keys").json()["keys"]
    return float(keys[0]["budget"]["spent_usd"])


def test_key_budget_is_spent_across_two_replicas(simulator: Simulator, tmp_path: Path) -> None:
    priced = "api_key: sk-x, input_cost_per_token: 0.001, output_cost_per_token: 0.002}"
    with redis_server(tmp_path) as redis:
        configs = []
        for i in range(2):
            path = _config(tmp_path, simulator, redis.url, i, ", budget_usd: 0.05")
            path.write_text(path.read_text().replace("api_key: sk-x}", priced))
            configs.append(path)
        with replicas(configs, tmp_path) as (a, b):
            poll(lambda: len(a.admin("GET", "/admin/fleet").json()["members"]) == 2)
            assert a.chat().status_code == 200
            cost = _spent(a)
            assert cost > 0
            poll(lambda: _spent(b) == cost)  # B counts what A spent
            assert b.chat().status_code == 200  # under budget: the key may still spend
            assert _spent(b) >= 0.05  # the fleet's total crossed the budget
            poll(lambda: _spent(a) >= 0.05)  # A learns of B's spend within a tick or so
            refused = a.chat()
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "insufficient_quota"
            assert b.chat().status_code == 429


def test_key_rpm_falls_back_to_each_replica_while_redis_is_down(
    simulator: Simulator, tmp_path: Path
) -> None:
    rpm = 4
    with redis_server(tmp_path) as redis:
        configs = [_config(tmp_path, simulator, redis.url, i, f", rpm: {rpm}") for i in range(2)]
        with replicas(configs, tmp_path) as (a, b):
            poll(lambda: len(a.admin("GET", "/admin/fleet").json()["members"]) == 2)
            redis.kill()
            for replica in (a, b):
                poll(lambda r=replica: r.health()["redis"]["status"] == "degraded")
            # Each process limits on its own counts: the documented members x rpm. (A grant
            # held from before may refuse once until the next tick sees Redis gone; a refusal
            # does not count against the key's own window.)
            for replica in (a, b):
                poll(lambda r=replica: r.chat().status_code == 200)
                statuses = [replica.chat().status_code for _ in range(rpm + 1)]
                assert statuses == [200] * (rpm - 1) + [429] * 2, statuses
