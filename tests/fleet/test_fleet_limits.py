"""rpm is a fleet-wide budget: two replicas together send a deployment at most its rpm."""

from __future__ import annotations

import time
from pathlib import Path

from fleetkit import fleet_config, poll, redis_server, replicas

from routeguard.simulator import Simulator

RPM = 30


def test_two_replicas_share_one_rpm_budget(simulator: Simulator, tmp_path: Path) -> None:
    with redis_server(tmp_path) as redis:
        configs = []
        for index in range(2):
            path = tmp_path / f"router-{index}.yaml"
            # Generous timeouts: this tests the budget, not Redis failures (which fall back to
            # per-process limits, see docs/fleet.md), on a machine shared with other tests.
            redis_section = f'url: "{redis.url}"\nsocket_timeout_s: 5\nconnect_timeout_s: 5'
            text = fleet_config(simulator.url, redis_section, tmp_path / f"D-{index}.log")
            # dep-a carries the group's traffic until its fleet-wide budget is spent.
            text = text.replace("api_key: sk-x}", f"api_key: sk-x, rpm: {RPM}}}", 1)
            text = text.replace("{dep-a: 1, dep-b: 1}", "{dep-a: 1000, dep-b: 1}")
            path.write_text(text)
            configs.append(path)
        with replicas(configs, tmp_path) as (a, b):
            poll(lambda: len(a.admin("GET", "/admin/fleet").json()["members"]) == 2)
            if time.time() % 60 > 35:  # keep the burst inside one wall-clock minute
                time.sleep(61 - time.time() % 60)
            simulator.reset_stats()
            sent = 0

            def dep_a() -> int:
                stats = simulator.stats().get("dep-a")
                return 0 if stats is None else stats.requests

            while dep_a() < RPM and sent < 400:
                assert a.chat().status_code == 200
                assert b.chat().status_code == 200
                sent += 2
            for _ in range(40):  # the budget is spent: everything else goes to dep-b
                assert a.chat().status_code == 200
                assert b.chat().status_code == 200
                sent += 2
            print(f"dep-a got {dep_a()} of {sent} requests (rpm {RPM} across 2 replicas)")
            # Alone, each replica would allow RPM: 2 x RPM in total.
            assert dep_a() == RPM
