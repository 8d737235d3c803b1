"""What can go wrong, per target: fault specifications, their registry, and the stats book.

A *target* is one simulated deployment (the path prefix before the provider's own path,
``/openai-a/v1/chat/completions`` is target ``openai-a``). Faults are set per target so a
drill can break one deployment while its siblings stay healthy; the special target ``*``
applies to every target that has no fault of its own (a target's own spec wins outright,
specs are not merged).

``FaultSpec`` is validated once, when an operator or a test sets it; the per-request path
only reads attributes of an immutable object.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ALL_TARGETS", "FaultRegistry", "FaultSpec", "StatsBook", "TargetStats"]

ALL_TARGETS = "*"


class FaultSpec(BaseModel):
    """The faults injected into every request to one target.

    The fields compose: latency applies first (before the first byte), then ``reset`` or
    ``hang`` if set, then an error is drawn with probability ``error_rate``, then a
    successful answer may be corrupted (``malformed_rate``) or, when streamed, cut short
    (``disconnect_after_chunks``) or interrupted in-band (``stream_error_after_chunks``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that a request is answered with ``error_status`` instead of a result."""
    error_status: int = Field(default=500, ge=400, le=599)
    """HTTP status of injected errors; the body uses the provider's own error shape."""
    retry_after_s: float = Field(default=1.0, ge=0.0)
    """Sent as ``Retry-After`` (and ``retry-after-ms``) with injected 429s."""
    latency_ms: float = Field(default=0.0, ge=0.0)
    """Fixed delay before the first byte of every answer, errors included."""
    jitter_ms: float = Field(default=0.0, ge=0.0)
    max_concurrency: int | None = Field(default=None, ge=1)
    """At most this many requests of the target spend their ``latency_ms`` at once; the rest
    queue, as on a GPU server whose compute is the bottleneck (the case batching is for)."""
    """Uniform random extra delay in ``[0, jitter_ms]`` added to ``latency_ms``."""
    chunk_delay_ms: float = Field(default=0.0, ge=0.0)
    """Delay between consecutive stream events (not before the first)."""
    hang: bool = False
    """Accept the request and never answer (until the client gives up or the server stops)."""
    disconnect_after_chunks: int | None = Field(default=None, ge=0)
    """Send this many stream events, then close the connection mid-body."""
    malformed_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that a 200 answer is not valid JSON (or a stream carries a non-JSON event)."""
    reset: bool = False
    """Close the connection (TCP RST) without sending any response."""
    stream_error_after_chunks: int | None = Field(default=None, ge=0)
    """After this many events past the opening one, send an in-band error event and stop.

    Anthropic streams get ``event: error`` with ``overloaded_error``; OpenAI-style streams
    get a ``data: {"error": ...}`` event, which the OpenAI SDK raises as ``APIError``.
    """
    context_window_tokens: int | None = Field(default=None, ge=1)
    """OpenAI and vLLM: a prompt longer than this many tokens is refused with a 400 whose code
    is ``context_length_exceeded``, as a model with that context window would."""
    content_filter: Literal["prompt", "completion"] | None = None
    """Azure only: ``prompt`` blocks the request (400 ``content_filter``); ``completion``
    cuts the answer with ``finish_reason: "content_filter"``. Ignored by other providers."""

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


@dataclass(slots=True)
class TargetStats:
    """Counters for one target since start (or the last reset)."""

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    streams: int = 0
    disconnects: int = 0
    resets: int = 0
    hangs: int = 0
    errors_injected: int = 0
    malformed: int = 0
    last_body: Any = None
    """The JSON body of the latest request, as received: tests check what a router forwarded."""

    def count_status(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def copy(self) -> TargetStats:
        return TargetStats(
            requests=self.requests,
            by_status=dict(self.by_status),
            streams=self.streams,
            disconnects=self.disconnects,
            resets=self.resets,
            hangs=self.hangs,
            errors_injected=self.errors_injected,
            malformed=self.malformed,
            last_body=self.last_body,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "streams": self.streams,
            "disconnects": self.disconnects,
            "resets": self.resets,
            "hangs": self.hangs,
            "errors_injected": self.errors_injected,
            "malformed": self.malformed,
            "last_body": self.last_body,
        }


class FaultRegistry:
    """The faults currently in force, by target (``*`` for all)."""

    def __init__(self) -> None:
        self._specs: dict[str, FaultSpec] = {}
        self._gates: dict[tuple[str, int], asyncio.Semaphore] = {}

    def gate(self, target: str, spec: FaultSpec | None) -> asyncio.Semaphore | None:
        """The semaphore bounding ``target``'s concurrent compute, if its spec sets one."""
        if spec is None or spec.max_concurrency is None:
            return None
        key = (target, spec.max_concurrency)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(spec.max_concurrency)
        return gate

    def get(self, target: str) -> FaultSpec | None:
        """The spec in force for ``target``: its own, else the ``*`` spec, else none."""
        specs = self._specs
        if not specs:
            return None
        spec = specs.get(target)
        return spec if spec is not None else specs.get(ALL_TARGETS)

    def set(self, target: str, spec: FaultSpec) -> None:
        self._specs[target] = spec

    def clear(self, target: str | None = None) -> bool:
        """Remove one target's spec (or all with ``None``); report whether any was set."""
        if target is None:
            had = bool(self._specs)
            self._specs.clear()
            return had
        return self._specs.pop(target, None) is not None

    def snapshot(self) -> dict[str, FaultSpec]:
        return dict(self._specs)


class StatsBook:
    """Per-target counters; created lazily on a target's first request."""

    def __init__(self) -> None:
        self._targets: dict[str, TargetStats] = {}

    def for_target(self, target: str) -> TargetStats:
        stats = self._targets.get(target)
        if stats is None:
            stats = self._targets[target] = TargetStats()
        return stats

    def snapshot(self) -> dict[str, TargetStats]:
        return {name: stats.copy() for name, stats in self._targets.items()}

    def reset(self) -> None:
        self._targets.clear()
