"""Half-open across a fleet: the fleet probes a recovering deployment, not every replica."""

from __future__ import annotations

import time
from pathlib import Path

from fleetkit import fleet_config, poll, redis_server, replicas

from routeguard.simulator import FaultSpec, Simulator

COOLDOWN_S = 2.0


def test_three_replicas_send_one_probe_per_cooldown(
    simulator: Simulator, tmp_path: Path, record_property
) -> None:
    with redis_server(tmp_path) as redis:
        configs = []
        for index in range(3):
            path = tmp_path / f"router-{index}.yaml"
            path.write_text(
                fleet_config(
                    simulator.url,
                    f'url: "{redis.url}"',
                    tmp_path / f"DECISIONS-{index}.log",
                    routing=f"cooldown_s: {COOLDOWN_S}\nhalf_open_probes: 1",
                )
            )
            configs.append(path)
        with replicas(configs, tmp_path) as fleet:
            simulator.set_fault("dep-a", FaultSpec(error_rate=1.0, error_status=500))
            while fleet[0].breaker("dep-a") != "open":
                fleet[0].chat()
            poll(lambda: all(r.breaker("dep-a") == "open" for r in fleet))
            simulator.reset_stats()
            started = time.monotonic()
            answered = 0
            while time.monotonic() - started < 4 * COOLDOWN_S:
                for replica in fleet:  # a balancer spreading traffic over the replicas
                    assert replica.chat().status_code == 200
                    answered += 1
            elapsed = time.monotonic() - started
            stats = simulator.stats().get("dep-a")
            probes = 0 if stats is None else stats.requests
            cycles = elapsed / COOLDOWN_S
            record_property("probes", probes)
            print(
                f"{probes} probes in {elapsed:.1f} s ({cycles:.1f} cooldowns), {answered} answered"
            )
            # Uncoordinated, each of the 3 replicas would probe once per cooldown (~12 here).
            assert 1 <= probes <= int(cycles) + 1
            simulator.clear_faults("dep-a")

            def closed_everywhere() -> bool:
                for replica in fleet:
                    replica.chat()
                return all(r.breaker("dep-a") == "closed" for r in fleet)

            poll(closed_everywhere, deadline_s=30, every_s=0.05)
