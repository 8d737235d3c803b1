"""``routeguard demo --replicas 3``: the outage one replica detects, the others follow."""

from __future__ import annotations

import subprocess

from processes import ROUTEGUARD


def test_demo_with_three_replicas_shows_the_others_following() -> None:
    result = subprocess.run(
        [
            *ROUTEGUARD,
            "demo",
            "--replicas",
            "3",
            "--duration",
            "9",
            "--outage-at",
            "2",
            "--outage-for",
            "4",
            "--seed",
            "7",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "shared state: redis" in out
    assert "detected the outage of openai-gpt4-turbo" in out
    assert out.count("followed after") == 2
    assert "client-visible errors 0" in out
