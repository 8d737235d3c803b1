"""RouterMetrics as Prometheus scrapes it: exact names, labels and values on a fresh registry."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from routeguard.observability.metrics import (
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
    ERROR_REASONS,
    LATENCY_BUCKETS,
    OUTAGE_REASONS,
    RouterMetrics,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: RouterMetrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def names(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


@pytest.fixture
def metrics() -> RouterMetrics:
    return RouterMetrics(CollectorRegistry(), version="9.9.9")


DEP = {"model_group": "gpt-4", "deployment": "openai-gpt4", "provider": "openai"}


def test_upstream_attempts_and_errors(metrics: RouterMetrics) -> None:
    dep = metrics.deployment("gpt-4", "openai-gpt4", "openai")
    for _ in range(3):
        dep.attempt()
    dep.error("timeout")
    dep.error("timeout")
    dep.error("rate_limit")
    s = scrape(metrics)
    assert value(s, "router_requests_total", **DEP) == 3
    assert value(s, "router_errors_total", **DEP, reason="timeout") == 2
    assert value(s, "router_errors_total", **DEP, reason="rate_limit") == 1
    # The outage reasons exist from the start at zero (so rate() sees an outage's first errors);
    # other reasons never seen have no series, to keep the scrape small.
    assert {n["reason"] for n in names(s, "router_errors_total")} == set(OUTAGE_REASONS)
    assert value(s, "router_errors_total", **DEP, reason="server_error") == 0


def test_unknown_error_reason_is_counted_as_other(metrics: RouterMetrics) -> None:
    dep = metrics.deployment("gpt-4", "openai-gpt4", "openai")
    for i in range(50):
        dep.error(f"weird-{i}")
    dep.error("other")
    s = scrape(metrics)
    assert {n["reason"] for n in names(s, "router_errors_total")} == {*OUTAGE_REASONS, "other"}
    assert value(s, "router_errors_total", **DEP, reason="other") == 51


def test_every_documented_reason_is_its_own_label(metrics: RouterMetrics) -> None:
    dep = metrics.deployment("gpt-4", "openai-gpt4", "openai")
    for reason in ERROR_REASONS:
        dep.error(reason)
    s = scrape(metrics)
    assert {labels["reason"] for labels in names(s, "router_errors_total")} == ERROR_REASONS


def test_client_requests_by_status_and_unknown_group(metrics: RouterMetrics) -> None:
    group = metrics.group("gpt-4")
    group.client(200)
    group.client(200)
    group.client(503)
    metrics.group(None).client(404)
    s = scrape(metrics)
    assert value(s, "router_client_requests_total", model_group="gpt-4", status="200") == 2
    assert value(s, "router_client_requests_total", model_group="gpt-4", status="503") == 1
    assert value(s, "router_client_requests_total", model_group="unknown", status="404") == 1


def test_client_status_must_be_http(metrics: RouterMetrics) -> None:
    with pytest.raises(ValueError, match="HTTP status"):
        metrics.group("gpt-4").client(1000)


def test_latency_histogram_buckets_and_components(metrics: RouterMetrics) -> None:
    group = metrics.group("gpt-4")
    group.latency("total", 12.0)
    group.latency("upstream", 11.9)
    group.latency("overhead", 0.0012)
    group.latency("ttft", 0.4)
    s = scrape(metrics)
    buckets = [
        labels["le"]
        for labels in names(s, "router_latency_seconds_bucket")
        if labels["component"] == "overhead"
    ]
    assert [float(b) for b in buckets] == [*LATENCY_BUCKETS, float("inf")]
    assert {0.0005, 0.001, 0.002, 0.003, 0.005, 15.0, 30.0, 60.0, 120.0} <= set(LATENCY_BUCKETS)

    def bucket(component: str, le: str) -> float:
        return value(
            s, "router_latency_seconds_bucket", component=component, model_group="gpt-4", le=le
        )

    assert bucket("overhead", "0.001") == 0
    assert bucket("overhead", "0.002") == 1
    assert bucket("total", "10.0") == 0  # the p95 > 10s alert needs buckets above 10s
    assert bucket("total", "15.0") == 1
    assert bucket("ttft", "0.5") == 1
    assert value(s, "router_latency_seconds_count", component="total", model_group="gpt-4") == 1
    assert value(s, "router_latency_seconds_sum", component="upstream", model_group="gpt-4") == (
        pytest.approx(11.9)
    )


def test_unknown_latency_component_is_rejected(metrics: RouterMetrics) -> None:
    with pytest.raises(ValueError, match="component"):
        metrics.group("gpt-4").latency("dns", 0.1)


def test_breaker_state_and_transitions(metrics: RouterMetrics) -> None:
    metrics.deployment("gpt-4", "openai-gpt4", "openai")
    metrics.deployment("gpt-4", "azure-gpt4", "azure")
    s = scrape(metrics)
    # Closed breakers export 0 from the start, or min(router_circuit_breaker_state) >= 1
    # would page as soon as one deployment opens.
    assert (
        value(s, "router_circuit_breaker_state", deployment="openai-gpt4", provider="openai") == 0
    )
    assert value(s, "router_circuit_breaker_state", deployment="azure-gpt4", provider="azure") == 0

    metrics.breaker_transition("openai-gpt4", "openai", BREAKER_OPEN)
    metrics.breaker_transition("openai-gpt4", "openai", BREAKER_HALF_OPEN)
    metrics.breaker_transition("openai-gpt4", "openai", BREAKER_OPEN)
    s = scrape(metrics)
    assert (
        value(s, "router_circuit_breaker_state", deployment="openai-gpt4", provider="openai") == 2
    )
    transitions = "router_circuit_breaker_transitions_total"
    labels = {"deployment": "openai-gpt4", "provider": "openai"}
    assert value(s, transitions, **labels, to_state="open") == 2
    assert value(s, transitions, **labels, to_state="half_open") == 1

    # A second handle for the same deployment (another group) must not reset the gauge.
    metrics.deployment("gpt-4-fallback", "openai-gpt4", "openai")
    metrics.breaker_state("azure-gpt4", "azure", 1)
    s = scrape(metrics)
    assert (
        value(s, "router_circuit_breaker_state", deployment="openai-gpt4", provider="openai") == 2
    )
    assert value(s, "router_circuit_breaker_state", deployment="azure-gpt4", provider="azure") == 1


def test_breaker_help_documents_the_encoding(metrics: RouterMetrics) -> None:
    body, _ = metrics.render()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert "0 closed, 1 half-open, 2 open" in families["router_circuit_breaker_state"].documentation
    with pytest.raises(ValueError, match="state"):
        metrics.breaker_state("openai-gpt4", "openai", 3)


def test_gauges_counters_tokens_cost(metrics: RouterMetrics) -> None:
    dep = metrics.deployment("gpt-4", "openai-gpt4", "openai")
    dep.in_flight(1)
    dep.in_flight(1)
    dep.in_flight(-1)
    dep.queue_depth(3)
    dep.tokens(100, 250, 0.0125)
    dep.tokens(10, 0)
    group = metrics.group("gpt-4")
    group.retry()
    group.fallback("gpt-4o")
    metrics.effective_weight("gpt-4", "openai-gpt4", 0.35)
    metrics.config_reload(True)
    metrics.config_reload(False)
    metrics.config_reload(True)
    s = scrape(metrics)
    assert value(s, "router_in_flight", deployment="openai-gpt4") == 1
    assert value(s, "router_queue_depth", deployment="openai-gpt4") == 3
    tok = {"model_group": "gpt-4", "deployment": "openai-gpt4"}
    assert value(s, "router_tokens_total", **tok, kind="prompt") == 110
    assert value(s, "router_tokens_total", **tok, kind="completion") == 250
    assert value(s, "router_cost_usd_total", **tok) == pytest.approx(0.0125)
    assert value(s, "router_retries_total", model_group="gpt-4") == 1
    assert value(s, "router_fallbacks_total", model_group="gpt-4", fallback_group="gpt-4o") == 1
    assert value(s, "router_effective_weight", **tok) == pytest.approx(0.35)
    assert value(s, "router_config_reloads_total", result="success") == 2
    assert value(s, "router_config_reloads_total", result="failure") == 1
    assert value(s, "router_info", version="9.9.9") == 1


def test_handles_are_cached(metrics: RouterMetrics) -> None:
    assert metrics.deployment("g", "d", "p") is metrics.deployment("g", "d", "p")
    assert metrics.group("g") is metrics.group("g")
    assert metrics.group(None) is metrics.group("unknown")


def test_forget_deployment_drops_its_gauges(metrics: RouterMetrics) -> None:
    metrics.deployment("gpt-4", "openai-gpt4", "openai").attempt()
    metrics.deployment("gpt-4", "azure-gpt4", "azure")
    metrics.breaker_transition("openai-gpt4", "openai", BREAKER_OPEN)
    metrics.effective_weight("gpt-4", "openai-gpt4", 1.0)
    metrics.forget_deployment("gpt-4", "openai-gpt4", "openai")
    s = scrape(metrics)
    assert names(s, "router_circuit_breaker_state") == [
        {"deployment": "azure-gpt4", "provider": "azure"}
    ]
    assert names(s, "router_effective_weight") == []
    assert value(s, "router_requests_total", **DEP) == 1  # counters keep their totals


def test_two_routers_on_two_registries_do_not_interfere() -> None:
    one = RouterMetrics(CollectorRegistry())
    two = RouterMetrics(CollectorRegistry())
    one.deployment("gpt-4", "openai-gpt4", "openai").attempt()
    one.group("gpt-4").client(200)
    two.group("gpt-4").client(503)
    a, b = scrape(one), scrape(two)
    assert value(a, "router_requests_total", **DEP) == 1
    assert ("router_requests_total", tuple(sorted(DEP.items()))) not in b
    assert value(a, "router_client_requests_total", model_group="gpt-4", status="200") == 1
    assert value(b, "router_client_requests_total", model_group="gpt-4", status="200") == 0
    assert value(b, "router_client_requests_total", model_group="gpt-4", status="503") == 1


def test_nothing_lands_in_the_global_registry() -> None:
    before = {f.name for f in REGISTRY.collect()}
    RouterMetrics(CollectorRegistry()).group("gpt-4").client(200)
    assert not any(name.startswith("router_") for name in {f.name for f in REGISTRY.collect()})
    assert not any(name.startswith("router_") for name in before)


def test_runbook_grep_finds_both_counters(metrics: RouterMetrics) -> None:
    dep = metrics.deployment("gpt-4", "openai-gpt4", "openai")
    dep.attempt()
    dep.error("server_error")
    body, _ = metrics.render()
    lines = body.decode().splitlines()
    assert any(line.startswith("router_requests_total{") for line in lines)
    assert any(line.startswith("router_errors_total{") for line in lines)
