"""The pure parts of the operator commands: durations, shares, and the rollout lease."""

from __future__ import annotations

import pytest
from ops_support import Router, Traffic, config_text, wait_for

from routeguard.ops.durations import format_duration, parse_duration
from routeguard.ops.lease import FleetLease, LocalLease, lease_for
from routeguard.ops.rollouts import weight_for_share


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("90s", 90), ("1h", 3600), ("1h30m", 5400), ("1.5s", 1.5), ("250ms", 0.25),
     ("42", 42), (7, 7), (" 2m ", 120)],
)  # fmt: skip
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "15 minutes", "m", "-1", "1h-5m", "nan", True])
def test_bad_durations(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration():
    assert format_duration(900) == "15m"
    assert format_duration(90) == "1m30s"
    assert format_duration(1.5) == "1.5s"


def test_weight_for_share():
    # others weigh 80: 10 % needs 80 * 0.1 / 0.9; 50 % needs 80
    assert weight_for_share(0.5, 80) == 80
    w = weight_for_share(0.1, 80)
    assert w / (w + 80) == pytest.approx(0.1)
    assert weight_for_share(0.0, 80) == 0
    assert weight_for_share(0.3, 0) == 1.0
    with pytest.raises(ValueError, match="share of 1"):
        weight_for_share(1.0, 80)


class OtherReplicaHoldsIt:
    """A fleet in which another replica holds every lease (the contract's try_lease shape)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, float]] = []

    async def try_lease(self, name: str, ttl_s: float) -> bool:
        self.asked.append((name, ttl_s))
        return False

    async def release_lease(self, name: str) -> None:
        return None


def test_lease_for_picks_local_without_a_fleet():
    assert isinstance(lease_for(None), LocalLease)
    assert isinstance(lease_for(OtherReplicaHoldsIt()), FleetLease)


def test_a_replica_without_the_lease_changes_no_weight(loop_thread, simulator, tmp_path):
    path = tmp_path / "router.yaml"
    deployments = {"a": "openai", "b": "openai"}
    path.write_text(config_text(simulator, tmp_path / "D.log", deployments, {"a": 50, "b": 50}))
    router = Router(loop_thread, path)
    try:
        fleet = OtherReplicaHoldsIt()
        router.app.fleet = fleet  # what the fleet work sets when redis: is configured
        body = {"kind": "restore", "deployment": "b", "steps": [10, 100], "hold_s": 1}
        with Traffic(router.url):
            rollout_id = router.admin.post("/admin/rollouts", json=body).json()["id"]
            wait_for(lambda: len(fleet.asked) >= 3, what="the rollout to ask for its lease")
        rollout = router.rollout(rollout_id)
        assert rollout["state"] == "running"
        assert rollout["share_pct"] is None
        assert rollout["lease_held"] is False
        assert router.weights() == {"a": 50, "b": 50}
        assert fleet.asked[0][0] == "rollout:gpt-4-turbo"
    finally:
        router.close()
