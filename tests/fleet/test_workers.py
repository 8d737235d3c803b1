"""``serve --workers 4``: one router to Prometheus and to operators, whichever worker answers."""

from __future__ import annotations

from pathlib import Path

import httpx
from fleetkit import AUTH, Replica, fleet_config, metric_sum, poll

from routeguard.simulator import FaultSpec, Simulator

BODY = {"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "hi"}]}


def test_four_workers_scrape_as_one_and_share_breakers(
    simulator: Simulator, tmp_path: Path
) -> None:
    config = tmp_path / "router.yaml"
    # No redis: section: the workers share state through the group's private redis-server.
    config.write_text(fleet_config(simulator.url, "", tmp_path / "DECISIONS.log"))
    replica = Replica(config, tmp_path / "workers.log", "--workers", "4").start()
    try:
        base = f"http://127.0.0.1:{replica.port}"
        poll(
            lambda: len(httpx.get(f"{base}/admin/fleet", headers=AUTH).json()["members"]) == 4,
            deadline_s=30,
            every_s=0.1,
        )
        sent = 0
        previous = 0.0
        answered_by = set()
        for _ in range(20):
            for _ in range(5):  # new connections, so the kernel spreads them over the workers
                assert httpx.post(f"{base}/v1/chat/completions", json=BODY).status_code == 200
                sent += 1
            scrape = httpx.get(f"{base}/metrics")
            answered_by.add(scrape.headers["x-routeguard-worker"])
            total = metric_sum(scrape.text, "router_requests_total")
            assert total >= previous
            assert total == sent
            previous = total
        assert len(answered_by) >= 2, "every scrape reached the same worker"
        # A breaker one worker opens is open on all four.
        simulator.set_fault("dep-a", FaultSpec(error_rate=1.0))

        def open_everywhere() -> bool:
            httpx.post(f"{base}/v1/chat/completions", json=BODY)
            members = httpx.get(f"{base}/admin/fleet", headers=AUTH).json()["members"]
            return len(members) == 4 and all(m["breakers"]["dep-a"] == "open" for m in members)

        poll(open_everywhere, deadline_s=30, every_s=0.05)
        # An admin reset reaching one worker is acknowledged by all four.
        reset = httpx.post(f"{base}/admin/circuit-breaker/reset", json={}, headers=AUTH)
        assert reset.json()["acknowledged_by"] == 4
    finally:
        replica.stop()
