"""``GET /admin/diagnose``: the runbook's diagnostic block in one answer, with likely causes.

The runbook's "Root Cause Analysis" is a series of queries an on-call engineer runs and reads
together: errors by provider and reason, p95 by component, breaker changes, log lines, Redis
INFO, then a guess at which of the four scenarios this is. The first half is data the router
holds; the second half is the small set of rules below, each naming the scenario or section of
the runbook it points to and the ``routeguard`` command that acts on it. The rules read only the
document built here, so they are plain functions of plain data and easy to test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routeguard.ops.classify import CLIENT_CAUSED_REASONS
from routeguard.ops.incidents import iso
from routeguard.ops.status import build_status

if TYPE_CHECKING:
    from routeguard.ops.health import HealthMonitor
    from routeguard.server.app import RouteGuardApp

__all__ = ["build_diagnosis", "likely_causes"]

_WINDOW_S = 900.0
_HOUR_S = 3600.0

Cause = dict[str, str]


def build_diagnosis(app: RouteGuardApp, monitor: HealthMonitor) -> dict[str, Any]:
    status = build_status(app, monitor)
    windows = app.windows
    now = app.clock()
    errors: list[dict[str, Any]] = []
    latency: dict[str, Any] = {}
    for provider in sorted(status["providers"]):
        stats = windows.stats(_WINDOW_S, provider=provider)
        for reason, count in sorted(stats.errors_by_reason.items(), key=lambda kv: -kv[1]):
            errors.append({"provider": provider, "reason": reason, "count": count})
        latency[provider] = {
            "requests": stats.requests,
            "error_rate": round(stats.error_rate, 4),
            "p50_ms": stats.p50_ms,
            "p95_ms": stats.p95_ms,
            "p99_ms": stats.p99_ms,
        }
    upstream = windows.stats(_WINDOW_S)
    total = windows.client_stats(_WINDOW_S)
    reporter = app.reporter
    doc: dict[str, Any] = {
        "class": status["class"],
        "reasons": status["reasons"],
        "pending": status["pending"],
        "class_since": status["class_since"],
        "generated_at": status["generated_at"],
        "replica": status["replica"],
        "window": "15m",
        "errors_by_provider_reason": errors,
        "p95_ms_by_component": {"upstream": upstream.p95_ms, "total": total.p95_ms},
        "latency_by_provider": latency,
        "client_error_rate": round(total.error_rate, 4),
        "client_requests": total.requests,
        "breakers": {
            d["name"]: d["breaker"] for g in status["groups"].values() for d in g["deployments"]
        },
        "breaker_changes_1h": [
            {
                "ts": iso(monitor.wall(e.at)),
                "deployment": e.deployment,
                "provider": e.provider,
                "old": e.old,
                "new": e.new,
                "reason": e.reason,
            }
            for e in reporter.breaker_history.since(now - _HOUR_S)
        ],
        "top_errors_1h": [
            {
                "provider": s.provider,
                "deployment": s.deployment,
                "reason": s.reason,
                "message": s.message,
                "count": n,
                "last_seen": iso(monitor.wall(s.at)),
            }
            for s, n in reporter.recent_errors.top(now - _HOUR_S)
        ],
        "memory": _memory(monitor),
        "in_flight": status["in_flight"],
        "incident": status["incident"],
    }
    for key in ("redis", "fleet"):
        if key in status:
            doc[key] = status[key]
    doc["config_versions"] = _config_versions(status)
    doc["likely_causes"] = likely_causes(doc)
    return doc


def _memory(monitor: HealthMonitor) -> dict[str, Any]:
    monitor.sample_memory()
    samples = list(monitor.rss)
    if not samples:
        return {}
    now_t, now_mb = samples[-1]
    old = [s for s in samples if now_t - s[0] <= _WINDOW_S]
    first_t, first_mb = old[0]
    return {
        "rss_mb": round(now_mb, 1),
        "rss_mb_window_start": round(first_mb, 1),
        "observed_s": round(now_t - first_t),
        "growth_pct": round((now_mb / first_mb - 1) * 100, 1) if first_mb else 0.0,
    }


def _config_versions(status: dict[str, Any]) -> dict[str, str]:
    """Config hash per replica: from the fleet section when there is one, else this replica's."""
    fleet = status.get("fleet")
    members = fleet.get("members") if isinstance(fleet, dict) else None
    if isinstance(members, list) and members:
        return {
            str(m.get("id")): str(m.get("config_version")) for m in members if isinstance(m, dict)
        }
    replica = status["replica"]
    return {replica["id"]: replica["config_version"]}


# -- rules -------------------------------------------------------------------------------------
def likely_causes(doc: dict[str, Any]) -> list[Cause]:
    """Likely causes, most specific first; empty when nothing looks wrong."""
    causes: list[Cause] = []
    for rule in _RULES:
        causes.extend(rule(doc))
    return causes


def _by_provider(doc: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in doc["errors_by_provider_reason"]:
        out.setdefault(row["provider"], {})[row["reason"]] = row["count"]
    return out


def _key_rotation(doc: dict[str, Any]) -> list[Cause]:
    out = []
    for provider, reasons in _by_provider(doc).items():
        auth = reasons.get("auth", 0)
        outage = sum(n for r, n in reasons.items() if r not in CLIENT_CAUSED_REASONS)
        if auth and auth >= 0.5 * outage:  # one 401 already means the key is refused
            out.append(
                {
                    "scenario": "Scenario 2: provider API key rotation",
                    "cause": f"{provider} rejects RouteGuard's key",
                    "evidence": f"{auth} of {outage} {provider} errors are 401/403 (auth)",
                    "action": f"update the key (api_key_file is re-read on change) or "
                    f"`routeguard rotate-key DEPLOYMENT`; `routeguard drain {provider}` meanwhile",
                }
            )
    return out


def _provider_outage(doc: dict[str, Any]) -> list[Cause]:
    latency = doc["latency_by_provider"]
    failing = [p for p, s in latency.items() if s["requests"] >= 5 and s["error_rate"] > 0.25]
    healthy = [p for p, s in latency.items() if s["requests"] >= 5 and s["error_rate"] <= 0.05]
    by_provider = _by_provider(doc)
    out = []
    if (
        failing
        and not healthy
        and len(failing) == len([s for s in latency.values() if s["requests"]])
    ):
        out.append(
            {
                "scenario": "P0: all providers failing",
                "cause": "a shared cause: egress, DNS, expired keys or the router's network",
                "evidence": ", ".join(
                    f"{p} {latency[p]['error_rate']:.0%} errors" for p in failing
                ),
                "action": "verify external dependencies (section 1) before touching weights; "
                "`routeguard probe --all`",
            }
        )
        return out
    for provider in failing:
        reasons = by_provider.get(provider, {})
        if reasons.get("auth", 0) >= 0.5 * max(1, sum(reasons.values())):
            continue  # the key-rotation rule already names it
        top = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        vllm = provider == "vllm"
        out.append(
            {
                "scenario": "Scenario 4: vLLM GPU out of memory"
                if vllm
                else "Provider outage (section 2, provider-specific actions)",
                "cause": f"{provider} is failing ({latency[provider]['error_rate']:.0%} errors)"
                + (" while other providers are healthy" if healthy else ""),
                "evidence": top,
                "action": f"`routeguard drain {provider}`, then `routeguard restore` when it "
                "recovers" + ("; check GPU memory and reduce max_num_seqs" if vllm else ""),
            }
        )
    return out


def _rate_limited(doc: dict[str, Any]) -> list[Cause]:
    out = []
    for provider, reasons in _by_provider(doc).items():
        if reasons.get("rate_limit", 0) >= 5:
            out.append(
                {
                    "scenario": "Capacity (P2: capacity planning concerns)",
                    "cause": f"{provider} is rate limiting RouteGuard",
                    "evidence": f"{reasons['rate_limit']} 429 answers in 15m",
                    "action": "shift weight to other deployments (`routeguard weights set`) or "
                    "raise the provider quota",
                }
            )
    return out


def _cascade(doc: dict[str, Any]) -> list[Cause]:
    tripped = [n for n, b in doc["breakers"].items() if b["state"] != "closed"]
    changed = {c["deployment"] for c in doc["breaker_changes_1h"]}
    if len(tripped) >= 2 or len(changed) >= 3:
        return [
            {
                "scenario": "P1: circuit breaker cascade",
                "cause": "load shed from one deployment may be overloading the next",
                "evidence": f"not closed: {', '.join(tripped) or 'none'}; "
                f"changed in 1h: {', '.join(sorted(changed)) or 'none'}",
                "action": "consider a more lenient breaker (section 4, configuration "
                "optimization); `routeguard probe --all`",
            }
        ]
    return []


def _redis(doc: dict[str, Any]) -> list[Cause]:
    redis = doc.get("redis")
    if not isinstance(redis, dict):
        fleet = doc.get("fleet")
        redis = fleet.get("redis") if isinstance(fleet, dict) else None
    if not isinstance(redis, dict):
        return []
    in_use, size = redis.get("pool_in_use"), redis.get("pool_size")
    exhausted = isinstance(in_use, int) and isinstance(size, int) and size and in_use >= size
    down = redis.get("ok") is False or redis.get("healthy") is False or redis.get("up") is False
    if not (exhausted or down):
        return []
    return [
        {
            "scenario": "Scenario 1: Redis connection pool exhaustion",
            "cause": "Redis is unreachable or its connection pool is exhausted",
            "evidence": f"redis section: {redis}",
            "action": "raise redis maxclients / the router's pool size; RouteGuard keeps "
            "routing on local state meanwhile",
        }
    ]


def _memory_leak(doc: dict[str, Any]) -> list[Cause]:
    memory = doc.get("memory") or {}
    if memory.get("observed_s", 0) >= 600 and memory.get("growth_pct", 0) >= 50:
        return [
            {
                "scenario": "Scenario 3: memory leak in the router process",
                "cause": "resident memory keeps growing",
                "evidence": f"RSS {memory['rss_mb_window_start']} -> {memory['rss_mb']} MB in "
                f"{memory['observed_s']} s",
                "action": "restart the replica (rolling); report the growth with this output",
            }
        ]
    return []


def _config_drift(doc: dict[str, Any]) -> list[Cause]:
    versions = set(doc.get("config_versions", {}).values())
    if len(versions) > 1:
        return [
            {
                "scenario": "Configuration drift between replicas",
                "cause": "replicas serve different configurations",
                "evidence": f"{len(versions)} config versions: {', '.join(sorted(versions))}",
                "action": "reload the lagging replicas (`POST /admin/config/reload`)",
            }
        ]
    return []


def _latency(doc: dict[str, Any]) -> list[Cause]:
    out = []
    for provider, stats in doc["latency_by_provider"].items():
        if stats["requests"] >= 5 and (stats["p95_ms"] or 0) > 10_000:
            out.append(
                {
                    "scenario": "P2: elevated latency",
                    "cause": f"{provider} is slow",
                    "evidence": f"p95 {stats['p95_ms']:.0f} ms over 15m",
                    "action": "`routeguard probe` its deployments; lower its weight if it persists",
                }
            )
    return out


_RULES: tuple[Callable[[dict[str, Any]], list[Cause]], ...] = (
    _key_rotation,
    _provider_outage,
    _redis,
    _cascade,
    _rate_limited,
    _latency,
    _memory_leak,
    _config_drift,
)
