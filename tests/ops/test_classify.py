"""The class evaluator's ``for:`` semantics, with a manual clock and the real traffic windows."""

from __future__ import annotations

import pytest

from routeguard.config.incidents import IncidentsConfig
from routeguard.config.loader import parse_config
from routeguard.errors import ConfigError
from routeguard.observability.windows import TrafficWindows
from routeguard.ops.classify import ClassEvaluator, IncidentClass, Topology, conditions
from routeguard.resilience import ManualClock

TOPOLOGY = Topology(
    deployments={"a": ("openai", False), "b": ("azure", False)}, groups={"g": ["a", "b"]}
)


def traffic(windows: TrafficWindows, clock: ManualClock, seconds: int, error_every: int) -> None:
    """One attempt per second on each deployment; every ``error_every``-th fails on "a"."""
    for i in range(seconds):
        windows.attempt("a", "openai", "server_error" if i % error_every == 0 else None, 0.1)
        windows.attempt("b", "azure", None, 0.1)
        windows.client("g", 200, 0.1)
        clock.advance(1)


def test_a_condition_counts_only_after_holding_for_its_duration():
    clock = ManualClock(0)
    windows = TrafficWindows(clock)
    cfg = IncidentsConfig()
    evaluator = ClassEvaluator(clock)
    seen = []
    # 1 error in 20 attempts = 5 % of 40: P2 (above 1 %), not P1 (above 5 %).
    for _ in range(40):  # 40 evaluations, 30 s apart: 20 minutes
        traffic(windows, clock, 30, error_every=10)
        seen.append(evaluator.evaluate(conditions(windows, TOPOLOGY, cfg)).cls)
    first = seen.index(IncidentClass.P2)
    # The condition holds from the first evaluation and counts after 15 minutes (30 x 30 s).
    assert seen[:first] == [IncidentClass.OK] * first
    assert first == 30
    verdict = evaluator.last
    assert verdict.reasons == ["upstream error rate 5.0% over 5m above 1.0% for 15m"]
    assert evaluator.since == clock() - 30 * (len(seen) - 1 - first)


def test_a_condition_that_stops_holding_starts_over():
    clock = ManualClock(0)
    windows = TrafficWindows(clock)
    cfg = IncidentsConfig(p0_for_s=60, error_window_s=60, min_requests=5)
    evaluator = ClassEvaluator(clock)
    traffic(windows, clock, 50, error_every=1)  # "a" always fails: exactly 50 %, not above
    assert evaluator.evaluate(conditions(windows, TOPOLOGY, cfg)).cls is IncidentClass.OK
    for _ in range(30):
        windows.attempt("a", "openai", "timeout", 1.0)
    clock.advance(30)
    verdict = evaluator.evaluate(conditions(windows, TOPOLOGY, cfg))
    assert verdict.cls is not IncidentClass.P0  # holding for 0 s of 60 s
    assert any("(pending)" in p for p in verdict.pending)
    clock.advance(70)  # the window empties: the condition stops, its clock is forgotten
    assert evaluator.evaluate(conditions(windows, TOPOLOGY, cfg)).cls is IncidentClass.OK
    for _ in range(60):
        windows.attempt("a", "openai", "timeout", 1.0)
    clock.advance(59)
    assert evaluator.evaluate(conditions(windows, TOPOLOGY, cfg)).cls is not IncidentClass.P0


def test_client_caused_errors_are_not_an_outage():
    clock = ManualClock(0)
    windows = TrafficWindows(clock)
    for _ in range(100):
        windows.attempt("a", "openai", "context_window", 0.1)
    assert conditions(windows, TOPOLOGY, IncidentsConfig(p0_for_s=0)) == []


def test_breaker_cascade_and_all_open():
    cfg = IncidentsConfig()
    windows = TrafficWindows(ManualClock(0))
    both = Topology({"a": ("openai", True), "b": ("azure", True), "c": ("x", False)}, {})
    keys = {c.key for c in conditions(windows, both, cfg)}
    assert keys == {"breaker_cascade"}
    every = Topology({"a": ("openai", True), "b": ("azure", True)}, {}, churned=3)
    found = {c.key: c for c in conditions(windows, every, cfg)}
    assert found["all_breakers"].cls is IncidentClass.P0
    assert found["breaker_churn"].cls is IncidentClass.P1


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("incidents: {p1_error_rate: 0.6}\n", "incidents: error rates must rise"),
        ("incidents: {p0_for_s: -1}\n", "incidents.p0_for_s"),
        ("incidents: {evaluate_interval_s: 0}\n", "incidents.evaluate_interval_s"),
        ("incidents: {pager: true}\n", "incidents.pager"),
    ],
)
def test_bad_incidents_config_is_rejected_with_its_key_path(yaml_text, where):
    with pytest.raises(ConfigError) as info:
        parse_config(yaml_text, "router.yaml")
    assert str(info.value).startswith("router.yaml: ")
    assert where in str(info.value)


def test_defaults_are_the_runbooks():
    cfg = IncidentsConfig()
    assert (cfg.p0_error_rate, cfg.p0_for_s) == (0.5, 300)
    assert (cfg.p1_error_rate, cfg.p1_for_s) == (0.05, 600)
    assert (cfg.p2_error_rate, cfg.p2_for_s) == (0.01, 900)
