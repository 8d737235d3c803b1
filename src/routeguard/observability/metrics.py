"""RouteGuard's Prometheus metrics, under the names the runbook and the alert rules query.

Every metric lives in a :class:`RouterMetrics` built on an injected ``CollectorRegistry``: two
routers in one process (or two tests) never share a series, and nothing is registered in
prometheus_client's global ``REGISTRY``.

Label sets are bounded by construction, because one series per client-chosen string is how a
metrics endpoint eats a Prometheus server:

* ``model_group`` and ``deployment`` come from the configuration only. A request naming no valid
  group is counted under :data:`UNKNOWN_GROUP` (pass ``None`` to :meth:`RouterMetrics.group`).
* ``reason`` is one of :data:`ERROR_REASONS`; anything else is counted as ``"other"`` rather than
  rejected, so a new error class in an adapter shows up in the error ratio instead of raising
  on the request path (and ``other`` on a dashboard says "classify me").
* ``status`` is an HTTP status code, ``component`` one of :data:`LATENCY_COMPONENTS`, ``kind``
  prompt or completion, ``to_state`` a breaker state name, ``result`` success or failure.

The per-request path goes through small handle objects (:class:`DeploymentMetrics`,
:class:`GroupMetrics`) that hold the labelled children, so a request pays for a dict lookup and
an increment, not for ``labels()`` (which validates, joins and locks on every call). The
families the request path touches are lock-free accumulators (:mod:`.accumulators`) rendered
by a custom collector, identical on the wire to prometheus-client's own; gauges and the rare
event counters stay prometheus-client objects.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from routeguard import __version__
from routeguard.observability.accumulators import (
    AccumulatorCollector,
    CounterChild,
    CounterFamily,
    HistogramFamily,
)

__all__ = [
    "API_LABELS",
    "BREAKER_CLOSED",
    "BREAKER_HALF_OPEN",
    "BREAKER_OPEN",
    "BREAKER_STATE_NAMES",
    "ERROR_REASONS",
    "LATENCY_BUCKETS",
    "LATENCY_COMPONENTS",
    "OTHER_REASON",
    "UNKNOWN_GROUP",
    "DeploymentMetrics",
    "GroupMetrics",
    "RouterMetrics",
]

ERROR_REASONS: Final = frozenset(
    {
        "timeout",
        "connection",
        "rate_limit",
        "auth",
        "server_error",
        "overloaded",
        "bad_response",
        "content_policy",
        "context_window",
        "bad_request",
    }
)
"""The ``reason`` values of ``router_errors_total``: the ``reason`` of :mod:`routeguard.errors`."""

API_LABELS: Final = frozenset({"chat", "embeddings", "messages", "responses", "completions"})
"""The ``api`` values of ``router_api_requests_total``: the inbound API a client spoke."""

OTHER_REASON: Final = "other"
UNKNOWN_GROUP: Final = "unknown"

LATENCY_COMPONENTS: Final = ("total", "upstream", "overhead", "ttft")

LATENCY_BUCKETS: Final = (
    # Fine below 5 ms: RouteGuardOverheadHigh takes p95 of the router's own overhead against
    # 5 ms, and histogram_quantile can only resolve what the buckets resolve.
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    # Above 10 s: RouteGuardLatencyHigh compares p95 total latency with 10 s, and
    # histogram_quantile never returns more than the highest finite bucket.
    15.0,
    30.0,
    60.0,
    120.0,
)

BREAKER_CLOSED: Final = 0
BREAKER_HALF_OPEN: Final = 1
BREAKER_OPEN: Final = 2
BREAKER_STATE_NAMES: Final = {
    BREAKER_CLOSED: "closed",
    BREAKER_HALF_OPEN: "half_open",
    BREAKER_OPEN: "open",
}


OUTAGE_REASONS = ("server_error", "timeout", "connection", "overloaded", "rate_limit")
WARM_STATUSES = (200, 429, 502, 503, 504)


class DeploymentMetrics:
    """The per-attempt metrics of one deployment serving one model group, children cached.

    Obtained from :meth:`RouterMetrics.deployment`; cheap to call on every attempt.
    """

    __slots__ = (
        "_completion_tokens",
        "_cost",
        "_errors",
        "_errors_family",
        "_in_flight",
        "_labels",
        "_prompt_tokens",
        "_queue_depth",
        "_requests",
    )

    def __init__(self, metrics: RouterMetrics, model_group: str, deployment: str, provider: str):
        self._labels = (model_group, deployment, provider)
        self._requests = metrics.requests.labels(model_group, deployment, provider)
        self._errors_family = metrics.errors
        # The outage reasons start at zero, so rate() sees an outage's very first errors (a
        # series born already above zero hides its first increment from Prometheus); the rarer
        # reasons are created on first use, to keep the scrape small.
        self._errors: dict[str, CounterChild] = {
            reason: metrics.errors.labels(model_group, deployment, provider, reason)
            for reason in OUTAGE_REASONS
        }
        self._prompt_tokens = metrics.tokens.labels(model_group, deployment, "prompt")
        self._completion_tokens = metrics.tokens.labels(model_group, deployment, "completion")
        self._cost = metrics.cost_usd.labels(model_group, deployment)
        self._in_flight = metrics.in_flight.labels(deployment)
        self._queue_depth = metrics.queue_depth.labels(deployment)

    def attempt(self) -> None:
        """Count one upstream attempt (the denominator of every upstream error ratio)."""
        self._requests.inc()

    def error(self, reason: str) -> None:
        """Count one failed attempt; ``reason`` outside :data:`ERROR_REASONS` counts as other."""
        child = self._errors.get(reason)
        if child is None:
            label = reason if reason in ERROR_REASONS else OTHER_REASON
            child = self._errors_family.labels(*self._labels, label)
            if label == reason:
                # Only known reasons are cached under their own key, so a caller passing
                # unbounded strings cannot grow this dict either.
                self._errors[reason] = child
        child.inc()

    def tokens(self, prompt: int, completion: int, cost_usd: float = 0.0) -> None:
        """Count the tokens of one answered request and its cost from the configured prices."""
        if prompt:
            self._prompt_tokens.inc(prompt)
        if completion:
            self._completion_tokens.inc(completion)
        if cost_usd:
            self._cost.inc(cost_usd)

    def in_flight(self, delta: int) -> None:
        """Move the deployment's in-flight gauge: +1 when an attempt starts, -1 when it ends."""
        self._in_flight.inc(delta)

    def queue_depth(self, delta: int) -> None:
        """Move the deployment's queue gauge: +1 when a request waits for a slot, -1 after."""
        self._queue_depth.inc(delta)


class GroupMetrics:
    """The per-request metrics of one model group, children cached.

    Obtained from :meth:`RouterMetrics.group`; cheap to call on every request.
    """

    __slots__ = ("_client", "_client_family", "_fallbacks", "_latency", "_model_group", "_retries")

    def __init__(self, metrics: RouterMetrics, model_group: str) -> None:
        self._model_group = model_group
        self._client_family = metrics.client_requests
        self._client: dict[int, CounterChild] = {}
        self._latency = {c: metrics.latency.labels(c, model_group) for c in LATENCY_COMPONENTS}
        self._retries = metrics.retries.labels(model_group)
        self._fallbacks = metrics.fallbacks
        # Warm the common answers so ratios and rate() have zero series from the start.
        for status in WARM_STATUSES:
            self._client_child(status)

    def _client_child(self, status: int) -> CounterChild:
        child = self._client.get(status)
        if child is None:
            if not 100 <= status <= 599:
                raise ValueError(f"not an HTTP status: {status!r}")
            child = self._client_family.labels(self._model_group, str(status))
            self._client[status] = child
        return child

    def client(self, status: int) -> None:
        """Count one client request by the HTTP status the client got."""
        child = self._client.get(status)
        if child is None:
            child = self._client_child(status)
        child.inc()

    def latency(self, component: str, seconds: float) -> None:
        """Observe one latency of ``component`` (total, upstream, overhead or ttft)."""
        try:
            child = self._latency[component]
        except KeyError:
            raise ValueError(f"unknown latency component: {component!r}") from None
        child.observe(seconds)

    def retry(self) -> None:
        """Count one retry (an attempt after the first, within this group)."""
        self._retries.inc()

    def fallback(self, to_group: str) -> None:
        """Count one fallback from this group to ``to_group`` (a configured group)."""
        self._fallbacks.labels(self._model_group, to_group).inc()


class RouterMetrics:
    """Every RouteGuard metric, registered on the ``registry`` given (never the global one).

    Build one per router at start-up and hand out handles; ``render()`` serves ``/metrics``.
    """

    def __init__(self, registry: CollectorRegistry, *, version: str = __version__) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._deployments: dict[tuple[str, str, str], DeploymentMetrics] = {}
        self._groups: dict[str, GroupMetrics] = {}
        self._api_children: dict[tuple[str, int], CounterChild] = {}

        dep = ["model_group", "deployment", "provider"]
        self.requests = CounterFamily(
            "router_requests_total",
            "Upstream attempts, one per try at one deployment (retries count again).",
            dep,
        )
        self.errors = CounterFamily(
            "router_errors_total",
            "Failed upstream attempts by reason: " + ", ".join(sorted(ERROR_REASONS)) + ", other.",
            [*dep, "reason"],
        )
        self.client_requests = CounterFamily(
            "router_client_requests_total",
            "Client requests by the HTTP status the client got; model_group is 'unknown' when "
            "the request named no configured group.",
            ["model_group", "status"],
        )
        self.api_requests = CounterFamily(
            "router_api_requests_total",
            "Client requests by inbound API (" + ", ".join(sorted(API_LABELS)) + ") and the "
            "HTTP status the client got.",
            ["api", "status"],
        )
        self.latency = HistogramFamily(
            "router_latency_seconds",
            "Request latency by component: total (end to end), upstream (provider time), "
            "overhead (RouteGuard's own time), ttft (time to first streamed token).",
            ["component", "model_group"],
            LATENCY_BUCKETS,
        )
        self.breaker_state_gauge = Gauge(
            "router_circuit_breaker_state",
            "Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open.",
            ["deployment", "provider"],
            registry=registry,
        )
        self.breaker_transitions = Counter(
            "router_circuit_breaker_transitions_total",
            "Circuit breaker state changes by the state entered (closed, half_open, open).",
            ["deployment", "provider", "to_state"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "router_in_flight",
            "Upstream attempts in progress per deployment.",
            ["deployment"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "router_queue_depth",
            "Requests waiting for a concurrency slot per deployment.",
            ["deployment"],
            registry=registry,
        )
        self.retries = CounterFamily(
            "router_retries_total",
            "Retries: attempts after the first within a model group.",
            ["model_group"],
        )
        self.fallbacks = CounterFamily(
            "router_fallbacks_total",
            "Requests passed from a model group to its fallback group.",
            ["model_group", "fallback_group"],
        )
        self.tokens = CounterFamily(
            "router_tokens_total",
            "Tokens used, by kind (prompt, completion), as reported by the provider.",
            ["model_group", "deployment", "kind"],
        )
        self.cost_usd = CounterFamily(
            "router_cost_usd_total",
            "Spend in US dollars, from the configured per-token prices.",
            ["model_group", "deployment"],
        )
        AccumulatorCollector(
            registry,
            [
                self.requests,
                self.errors,
                self.client_requests,
                self.api_requests,
                self.latency,
                self.retries,
                self.fallbacks,
                self.tokens,
                self.cost_usd,
            ],
        )
        self.incident_class = Gauge(
            "router_incident_class",
            "The runbook's incident class as this router judges it: 0 OK, 1 P2, 2 P1, 3 P0.",
            registry=registry,
        )
        self.effective_weight_gauge = Gauge(
            "router_effective_weight",
            "Routing weight in force per deployment of a model group, after health adjustments.",
            ["model_group", "deployment"],
            registry=registry,
        )
        self.config_reloads = Counter(
            "router_config_reloads_total",
            "Configuration reloads by result (success, failure).",
            ["result"],
            registry=registry,
        )
        self.info = Gauge(
            "router_info",
            "Always 1; the version label says which RouteGuard is running.",
            ["version"],
            registry=registry,
        )
        self.info.labels(version).set(1)
        for result in ("success", "failure"):
            self.config_reloads.labels(result)

    # -- handles for the request path ------------------------------------------------------

    def deployment(self, model_group: str, deployment: str, provider: str) -> DeploymentMetrics:
        """The cached handle of one deployment within one model group.

        Call it for every configured deployment at start-up (and after a reload): that also
        creates the deployment's breaker-state series at 0 (closed). The alert
        ``min(router_circuit_breaker_state) >= 1`` is only right if closed breakers have a
        series too; a router that exported only its open breakers would page for one.
        """
        key = (model_group, deployment, provider)
        handle = self._deployments.get(key)
        if handle is None:
            with self._lock:
                handle = self._deployments.get(key)
                if handle is None:
                    handle = DeploymentMetrics(self, model_group, deployment, provider)
                    # labels() creates a child at 0 and never resets an existing one.
                    self.breaker_state_gauge.labels(deployment, provider)
                    self._deployments[key] = handle
        return handle

    def group(self, model_group: str | None) -> GroupMetrics:
        """The cached handle of one configured model group; ``None`` for :data:`UNKNOWN_GROUP`.

        Never pass a model name taken from a request unless it is a configured group: each
        distinct name is a new series for as long as the process lives.
        """
        name = UNKNOWN_GROUP if model_group is None else model_group
        handle = self._groups.get(name)
        if handle is None:
            with self._lock:
                handle = self._groups.get(name)
                if handle is None:
                    handle = GroupMetrics(self, name)
                    self._groups[name] = handle
        return handle

    def api_request(self, api: str, status: int) -> None:
        """Count one client request by inbound API; an unknown ``api`` counts as other."""
        child = self._api_children.get((api, status))
        if child is None:
            label = api if api in API_LABELS else OTHER_REASON
            if not 100 <= status <= 599:
                raise ValueError(f"not an HTTP status: {status!r}")
            child = self.api_requests.labels(label, str(status))
            if label == api:
                self._api_children[(api, status)] = child
        child.inc()

    # -- events off the request path -------------------------------------------------------

    def breaker_state(self, deployment: str, provider: str, state: int) -> None:
        """Set a deployment's breaker gauge: 0 closed, 1 half-open, 2 open."""
        if state not in BREAKER_STATE_NAMES:
            raise ValueError(f"unknown circuit breaker state: {state!r}")
        self.breaker_state_gauge.labels(deployment, provider).set(state)

    def breaker_transition(self, deployment: str, provider: str, to_state: int) -> None:
        """Record a breaker entering ``to_state``: count the transition and set the gauge.

        One call does both so the counter and the gauge can never disagree.
        """
        if to_state not in BREAKER_STATE_NAMES:
            raise ValueError(f"unknown circuit breaker state: {to_state!r}")
        name = BREAKER_STATE_NAMES[to_state]
        self.breaker_transitions.labels(deployment, provider, name).inc()
        self.breaker_state_gauge.labels(deployment, provider).set(to_state)

    def effective_weight(self, model_group: str, deployment: str, weight: float) -> None:
        """Publish the weight the strategy currently gives a deployment."""
        self.effective_weight_gauge.labels(model_group, deployment).set(weight)

    def config_reload(self, ok: bool) -> None:
        """Count one configuration reload attempt by its outcome."""
        self.config_reloads.labels("success" if ok else "failure").inc()

    def forget_deployment(self, model_group: str, deployment: str, provider: str) -> None:
        """Drop a deployment removed by a reload from the gauges and the handle cache.

        Counters keep their series (their totals stay true), but a stale gauge would keep
        reporting, for instance, an open breaker for a deployment that no longer exists, and
        hold the breaker alerts firing.
        """
        with self._lock:
            self._deployments.pop((model_group, deployment, provider), None)
            still_used = any(
                key[1] == deployment and key[2] == provider for key in self._deployments
            )
        _remove(self.effective_weight_gauge, model_group, deployment)
        if not still_used:
            _remove(self.breaker_state_gauge, deployment, provider)
            _remove(self.in_flight, deployment)
            _remove(self.queue_depth, deployment)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its ``Content-Type`` for a ``/metrics`` response."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _remove(metric: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never created, or already gone
        metric.remove(*labels)
