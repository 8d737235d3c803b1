"""Outage drills: the runbook's scenarios rehearsed end to end against the simulator."""

from routeguard.ops.drills.report import DrillReport
from routeguard.ops.drills.scenarios import SCENARIOS, run_drill

__all__ = ["SCENARIOS", "DrillReport", "run_drill"]
