"""Client keys across the fleet: a revocation on one replica refuses the key on all of them,
is audited once per replica, and is adopted by a replica started later."""

from __future__ import annotations

import hashlib
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
