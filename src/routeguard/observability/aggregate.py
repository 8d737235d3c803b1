"""Merging several processes' ``/metrics`` expositions into one, for ``serve --workers N``.

A Prometheus scrape reaches one worker (the kernel spreads connections over ``SO_REUSEPORT``
listeners); for the runbook's PromQL to hold, that worker must answer for all of them. Rather
than prometheus_client's multiprocess mode, which only covers its own metric classes and needs
its environment set before import, the merge works on the text exposition itself, so it stays
right whatever a worker's registry holds (custom collectors included).

How each family merges:

* counters, histograms, summaries, untyped: summed per label set (each worker counts its own
  requests, so the sum is the process group's count, and it only grows);
* ``*_created`` series: the earliest;
* gauges: summed when they measure a quantity each worker holds a part of (in-flight, queues,
  pool connections), the minimum for ``up``-style health (one worker without Redis is a worker
  without Redis), and otherwise the maximum (breaker states, weights, info: the same or the
  worst across workers).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["GAUGE_MIN", "GAUGE_SUM", "merge_expositions"]

GAUGE_SUM = frozenset(
    {"router_in_flight", "router_queue_depth", "router_redis_pool_in_use", "router_redis_pool_max"}
)
GAUGE_MIN = frozenset({"router_redis_up"})
_SUMMED = frozenset({"counter", "histogram", "summary", "untyped", "unknown", "gaugehistogram"})

_Key = tuple[str, tuple[tuple[str, str], ...]]


def _combine(family: str, kind: str, sample: str, old: float, new: float) -> float:
    if sample.endswith("_created"):
        return min(old, new)
    if kind in _SUMMED or family in GAUGE_SUM:
        return old + new
    if family in GAUGE_MIN:
        return min(old, new)
    return max(old, new)


class _Merged(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


def merge_expositions(texts: Iterable[str]) -> bytes:
    """One text exposition whose samples combine those of ``texts`` (see the module doc)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[_Key, float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type
                )
                values[family.name] = {}
            table = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = table.get(key)
                table[key] = (
                    sample.value
                    if old is None
                    else _combine(family.name, family.type, sample.name, old, sample.value)
                )
    out = []
    for name, metric in families.items():
        for (sample_name, labels), value in values[name].items():
            metric.add_sample(sample_name, dict(labels), value)
        out.append(metric)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(out))
    return generate_latest(registry)
