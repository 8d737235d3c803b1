"""The router: name a model group, get an answer from one of its deployments.

Free of any web framework: it takes typed requests and returns typed results, raising
:mod:`routeguard.errors` exceptions that the server turns into OpenAI-shaped answers.

How one request is served (every provider alike):

1. The strategy orders the group's deployments (weight 0 never appears).
2. The first candidate whose breaker admits it, with a free concurrency slot and under its
   rpm/tpm, gets the attempt. If none can take it now, the request waits in the queue of a
   saturated one (bounded), or the group is unavailable: all breakers open (503 with
   ``Retry-After`` at the soonest half-open time) or all saturated (429 with ``Retry-After``).
3. A retryable failure is retried on another deployment (never the one that just failed when
   another is there), up to ``num_retries`` times, all within the request's overall deadline:
   at once while an untried deployment is left, after a jittered exponential backoff once only
   deployments that already failed remain. A client error is returned at once.
4. When the group cannot serve, its fallback groups are tried in order: ``fallbacks`` for
   outages, ``context_window_fallbacks`` and ``content_policy_fallbacks`` for those errors.
5. A stream counts as served only once its first chunk has arrived, so a stream that fails
   before its first byte is retried or failed over exactly like a plain request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, cast

from routeguard.config.schema import Config
from routeguard.errors import (
    AttemptsFailedError,
    ClientError,
    ModelNotFoundError,
    NoDeploymentAvailableError,
    RouteGuardError,
    UnsupportedByDeploymentError,
    UpstreamError,
    UpstreamTimeoutError,
)
from routeguard.providers.base import ChatResult, ChatStream, Usage
from routeguard.resilience import (
    Backoff,
    BreakerState,
    Clock,
    Outcome,
    Permit,
    SaturatedError,
    monotonic,
)
from routeguard.routing.groups import Deployment, ModelGroup
from routeguard.routing.outcome import classify
from routeguard.routing.runtime import DeploymentRuntime
from routeguard.routing.strategies import Strategy
from routeguard.wire.chat import ChatRequest, EmbeddingRequest

__all__ = [
    "AttemptRecord",
    "NullHooks",
    "Routed",
    "Router",
    "RouterHooks",
    "RouterSettings",
    "Trace",
]

T = TypeVar("T")
_NO_DEADLINE = contextlib.nullcontext()
# Results that are complete when returned; anything else is a stream. A type test, because an
# isinstance check against the ChatStream ABC costs a microsecond per request.
_WHOLE_ANSWERS = frozenset({ChatResult, bytes})


@dataclass(frozen=True, slots=True)
class Routed(Generic[T]):
    """A result, the deployment that produced it, and how many attempts it took."""

    value: T
    deployment: Deployment
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One finished upstream attempt, as reported to hooks (metrics, logs)."""

    group: str
    deployment: Deployment
    error: RouteGuardError | None
    upstream_s: float
    ttft_s: float | None = None
    usage: Usage | None = None


class RouterHooks(Protocol):
    """What the router reports as it works; metrics and logs implement it."""

    def attempt_finished(self, record: AttemptRecord) -> None: ...

    def retried(self, group: str) -> None: ...

    def fell_back(self, group: str, to_group: str) -> None: ...


class NullHooks:
    """Reports nowhere; the default, and what unit tests use."""

    def attempt_finished(self, record: AttemptRecord) -> None:
        return None

    def retried(self, group: str) -> None:
        return None

    def fell_back(self, group: str, to_group: str) -> None:
        return None


@dataclass(slots=True)
class Trace:
    """What the router did for one client request, filled in as it goes.

    The HTTP edge creates it and reads it afterwards (for the access log and the overhead
    metric), whether the request succeeded or failed.
    """

    attempts: int = 0
    upstream_s: float = 0.0
    deployment: str | None = None
    group: str | None = None
    api: str = "chat"  # the inbound API, a label value: chat|embeddings|messages|responses|...
    # What successful attempts used, at each deployment's prices (client-key accounting).
    tokens: int = 0
    cost_usd: float = 0.0
    key_id: str | None = None  # the client key's short id, for the access log


@dataclass(slots=True)
class _Lease:
    """What one attempt holds while it runs: a breaker permit and a concurrency slot."""

    group: str
    deployment: Deployment
    permit: Permit
    started: float
    trace: Trace


def _chains(table: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    """Follow fallbacks transitively (A -> [B], B -> [C] gives A -> B, C), without repeats."""
    chains: dict[str, tuple[str, ...]] = {}
    for start in table:
        order: list[str] = []
        frontier = list(table[start])
        while frontier:
            group = frontier.pop(0)
            if group != start and group not in order:
                order.append(group)
                frontier.extend(table.get(group, []))
        chains[start] = tuple(order)
    return chains


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """The routing knobs, resolved from config once."""

    num_retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    request_timeout_s: float = 120.0
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> RouterSettings:
        routing = config.routing
        return cls(
            num_retries=routing.num_retries,
            backoff=Backoff(base_s=routing.retry_backoff_s, max_s=routing.retry_backoff_max_s),
            request_timeout_s=routing.request_timeout_s,
            fallbacks=_chains(config.fallbacks),
            context_window_fallbacks=_chains(config.context_window_fallbacks),
            content_policy_fallbacks=_chains(config.content_policy_fallbacks),
        )


Attempt = Callable[[Deployment], Awaitable[T]]


class Router:
    """Serves requests over model groups with retries, breakers, limits and fallbacks."""

    def __init__(
        self,
        groups: Mapping[str, ModelGroup],
        strategy: Strategy,
        settings: RouterSettings | None = None,
        *,
        hooks: RouterHooks | None = None,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.groups = dict(groups)
        self.strategy = strategy
        self.settings = settings or RouterSettings()
        self.hooks: RouterHooks = hooks or NullHooks()
        self.clock = clock
        self._rng = rng or random.Random()

    def group(self, name: str) -> ModelGroup:
        group = self.groups.get(name)
        if group is None:
            raise ModelNotFoundError(
                f"The model '{name}' does not exist or you do not have access to it.",
                param="model",
            )
        return group

    def plan(self, name: str) -> list[Deployment]:
        """The candidates for a request to group ``name``, in the order to try them."""
        group = self.group(name)
        candidates = self.strategy.order(group)
        if not candidates:
            raise NoDeploymentAvailableError(
                f"Model group '{name}' has no deployment with a positive weight: all weights are 0."
            )
        return candidates

    # -- public API ----------------------------------------------------------------------------
    async def chat(self, request: ChatRequest, trace: Trace | None = None) -> Routed[ChatResult]:
        return await self._serve(
            request.model, lambda d: d.provider.chat(request), trace or Trace()
        )

    async def open_chat_stream(
        self, request: ChatRequest, trace: Trace | None = None
    ) -> Routed[ChatStream]:
        return await self._serve(
            request.model, lambda d: d.provider.open_chat_stream(request), trace or Trace()
        )

    async def embed(self, request: EmbeddingRequest, trace: Trace | None = None) -> Routed[bytes]:
        return await self._serve(
            request.model, lambda d: d.provider.embed(request), trace or Trace()
        )

    async def serve(self, model: str, call: Attempt[T], trace: Trace | None = None) -> Routed[T]:
        """Serve any per-deployment call (the inbound APIs beyond chat) through the same loop.

        ``call`` returns a ChatResult or bytes for a whole answer, a ChatStream otherwise.
        """
        return await self._serve(model, call, trace or Trace())

    # -- the loop ------------------------------------------------------------------------------
    async def _serve(self, model: str, call: Attempt[T], trace: Trace) -> Routed[T]:
        trace.group = model
        deadline = self.clock() + self.settings.request_timeout_s
        failures: list[RouteGuardError] = []
        group_name = model
        tried_groups = {model}
        while True:
            try:
                routed = await self._serve_group(group_name, call, deadline, failures, trace)
            except RouteGuardError as exc:
                next_group = self._next_fallback(model, exc, tried_groups)
                if next_group is None:
                    raise _final(exc, failures) from None
                self.hooks.fell_back(group_name, next_group)
                tried_groups.add(next_group)
                group_name = next_group
                continue
            return routed

    def _next_fallback(self, model: str, exc: RouteGuardError, tried: set[str]) -> str | None:
        reason = getattr(exc, "reason", None)
        if isinstance(exc, AttemptsFailedError):
            reason = getattr(exc.last, "reason", None)
        if reason == "context_window":
            chain = self.settings.context_window_fallbacks.get(model, ())
        elif reason == "content_policy":
            chain = self.settings.content_policy_fallbacks.get(model, ())
        elif isinstance(exc, ClientError) or (isinstance(exc, UpstreamError) and not exc.retryable):
            return None
        else:
            chain = self.settings.fallbacks.get(model, ())
        for group in chain:
            if group not in tried:
                return group
        return None

    async def _serve_group(
        self,
        name: str,
        call: Attempt[T],
        deadline: float,
        failures: list[RouteGuardError],
        trace: Trace,
    ) -> Routed[T]:
        candidates = self.plan(name)
        tried: list[Deployment] = []
        group_failures: list[RouteGuardError] = []
        unable: set[Deployment] = set()  # cannot serve this request at all: never again
        for attempt in range(self.settings.num_retries + 1):
            if attempt:
                self.hooks.retried(name)
                # Backoff spares a struggling deployment; a sibling not yet tried needs no wait,
                # and waiting there cost a third of the throughput in the failover bench.
                untried = any(d not in tried and d not in unable for d in candidates)
                await self._backoff(0 if untried else attempt, deadline, group_failures[-1])
            try:
                usable = [d for d in candidates if d not in unable] if unable else candidates
                deployment, permit = await self._admit(name, usable, tried, deadline)
            except (NoDeploymentAvailableError, SaturatedError):
                if not group_failures:
                    raise
                break  # no deployment left to retry on: the client hears the real failure
            try:
                lease = _Lease(name, deployment, permit, self.clock(), trace)
                value = await self._attempt(lease, call, deadline)
            except UpstreamError as exc:
                failures.append(exc)
                group_failures.append(exc)
                if not exc.retryable:
                    raise
                if isinstance(exc, UnsupportedByDeploymentError):
                    unable.add(deployment)
                tried.append(deployment)
                continue
            return Routed(value, deployment, trace.attempts)
        raise AttemptsFailedError(group_failures)

    async def _backoff(self, attempt: int, deadline: float, last: RouteGuardError) -> None:
        delay = self.settings.backoff.delay(attempt, self._rng) if attempt else 0.0
        if self.clock() + delay >= deadline:
            raise last
        if delay > 0:
            await asyncio.sleep(delay)

    # -- admission -----------------------------------------------------------------------------
    async def _admit(
        self, name: str, candidates: list[Deployment], tried: list[Deployment], deadline: float
    ) -> tuple[Deployment, Permit]:
        """Pick the deployment for the next attempt and take its slot and breaker permit."""
        if tried:
            last = tried[-1]
            fresh = [d for d in candidates if d not in tried]
            again = [d for d in candidates if d in tried and d is not last]
            order = fresh + again + ([last] if last in candidates else [])
        else:
            order = candidates  # the first attempt: the strategy's order as it is
        for deployment in order:
            permit = _try_take(deployment)
            if permit is not None:
                return deployment, permit
        return await self._wait_for_slot(name, order, deadline)

    async def _wait_for_slot(
        self, name: str, order: list[Deployment], deadline: float
    ) -> tuple[Deployment, Permit]:
        """Nothing can take the request now: queue for a saturated deployment, or give up."""
        runtimes = [d.runtime for d in order]
        queueable = [
            d
            for d in order
            if d.runtime.breaker.available()
            and (d.runtime.rate is None or d.runtime.rate.retry_after() is None)
            and not d.runtime.limiter.queue_full
        ]
        if queueable:
            deployment = min(queueable, key=lambda d: d.runtime.limiter.queued)
            limiter = deployment.runtime.limiter
            remaining = max(0.0, deadline - self.clock())
            await limiter.acquire(min(limiter.queue_timeout_s, remaining))
            permit = deployment.runtime.breaker.try_acquire()
            if permit is not None:
                return deployment, permit
            limiter.release()
        now = self.clock()
        broken = [r for r in runtimes if r.breaker.state is not BreakerState.CLOSED]
        if len(broken) == len(runtimes):
            reopen = [at for r in runtimes if (at := r.breaker.retry_at()) is not None]
            raise NoDeploymentAvailableError(
                f"Model group '{name}' is unavailable: the circuit breaker of every deployment "
                "is open.",
                retry_after_s=max(0.0, min(reopen) - now) if reopen else None,
            )
        waits = [_wait_s(r, now) for r in runtimes if r.breaker.state is BreakerState.CLOSED]
        raise SaturatedError(
            f"Model group '{name}' is at capacity: every deployment is busy, rate-limited by "
            "its provider, or over its configured rpm/tpm.",
            retry_after_s=max(1.0, min(waits, default=1.0)),
        )

    # -- one attempt ---------------------------------------------------------------------------
    async def _attempt(self, lease: _Lease, call: Attempt[T], deadline: float) -> T:
        deployment = lease.deployment
        runtime = deployment.runtime
        if runtime.rate is not None:
            runtime.rate.record_request()
        lease.trace.attempts += 1
        lease.trace.deployment = deployment.name
        remaining = max(0.0, deadline - lease.started)
        # The deployment's own timeouts bound an attempt already; the request's deadline needs a
        # timer of its own only when it is the tighter bound (a late retry).
        own_bound = deployment.provider.endpoint.timeouts.total_s
        guard = asyncio.timeout(remaining) if remaining < own_bound else _NO_DEADLINE
        try:
            async with guard:
                value = await call(deployment)
                if type(value) not in _WHOLE_ANSWERS:  # a stream: wait for its first chunk
                    iterator, first = await _prime(value)  # type: ignore[arg-type]
        except TimeoutError:
            error: UpstreamError = UpstreamTimeoutError(
                "request deadline exceeded", deployment=deployment.name
            )
            self._finish(lease, error)
            raise error from None
        except UpstreamError as exc:
            self._finish(lease, exc)
            raise
        except BaseException:
            _abandon(lease)
            raise
        if type(value) not in _WHOLE_ANSWERS:
            ttft_s = self.clock() - lease.started
            stream = cast(ChatStream, value)
            guarded = _GuardedStream(
                self, lease, stream, iterator=iterator, first=first, ttft_s=ttft_s
            )
            return cast(T, guarded)  # T is ChatStream on this path
        usage = value.usage if isinstance(value, ChatResult) else None
        self._finish(lease, None, usage=usage)
        return value

    def _finish(
        self,
        lease: _Lease,
        error: RouteGuardError | None,
        *,
        ttft_s: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        """Account for a finished attempt: breaker, slot, tpm, latency, hooks."""
        runtime = lease.deployment.runtime
        runtime.breaker.record(lease.permit, classify(error), getattr(error, "retry_after_s", None))
        runtime.limiter.release()
        elapsed = self.clock() - lease.started
        lease.trace.upstream_s += elapsed
        if error is None:
            runtime.latency.observe(elapsed, ttft_s)
            if usage is not None:
                if runtime.rate is not None:
                    runtime.rate.record_tokens(usage.total_tokens)
                deployment = lease.deployment
                lease.trace.tokens += usage.total_tokens
                lease.trace.cost_usd += (
                    usage.prompt_tokens * deployment.input_cost_per_token
                    + usage.completion_tokens * deployment.output_cost_per_token
                )
        self.hooks.attempt_finished(
            AttemptRecord(lease.group, lease.deployment, error, elapsed, ttft_s, usage)
        )


def _abandon(lease: _Lease) -> None:
    """Release an attempt that ended for reasons that say nothing about the deployment."""
    runtime = lease.deployment.runtime
    runtime.breaker.record(lease.permit, Outcome.IGNORED)
    runtime.limiter.release()


async def _prime(stream: ChatStream) -> tuple[AsyncIterator[bytes], bytes]:
    """Wait for the stream's first chunk, so a stream failing before it can still fail over."""
    iterator = aiter(stream)
    try:
        return iterator, await anext(iterator)
    except StopAsyncIteration:
        return iterator, b""
    except BaseException:
        await _close_iterator(iterator)
        await stream.aclose()
        raise


async def _close_iterator(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class _GuardedStream(ChatStream):
    """A primed provider stream that accounts for its attempt when it ends, however it ends."""

    def __init__(
        self,
        router: Router,
        lease: _Lease,
        inner: ChatStream,
        *,
        iterator: AsyncIterator[bytes],
        first: bytes,
        ttft_s: float,
    ) -> None:
        self._router = router
        self._lease = lease
        self._inner = inner
        self._iterator = iterator
        self._first = first
        self._ttft_s = ttft_s
        self._finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._first:
                yield self._first
            async for chunk in self._iterator:
                yield chunk
        except UpstreamError as exc:
            self._done(exc)
            raise
        self._done(None)

    def _done(self, error: RouteGuardError | None) -> None:
        if not self._finished:
            self._finished = True
            self.usage = self._inner.usage
            self._router._finish(self._lease, error, ttft_s=self._ttft_s, usage=self.usage)

    async def aclose(self) -> None:
        if not self._finished:
            self._finished = True  # the client left before the end: not the deployment's fault
            _abandon(self._lease)
        await _close_iterator(self._iterator)
        await self._inner.aclose()


def _wait_s(runtime: DeploymentRuntime, now: float) -> float:
    """How long until a deployment that is closed but unusable takes requests again."""
    waits = [1.0]
    if runtime.rate is not None and (rate_wait := runtime.rate.retry_after()) is not None:
        waits.append(rate_wait)
    if (at := runtime.breaker.retry_at()) is not None:
        waits.append(at - now)
    return max(waits)


def _try_take(deployment: Deployment) -> Permit | None:
    """Take a concurrency slot and a breaker permit without waiting, or neither."""
    runtime = deployment.runtime
    if runtime.rate is not None and runtime.rate.retry_after() is not None:
        return None
    if not runtime.limiter.try_acquire():
        return None
    permit = runtime.breaker.try_acquire()
    if permit is None:
        runtime.limiter.release()
    return permit


def _final(exc: RouteGuardError, failures: list[RouteGuardError]) -> RouteGuardError:
    """The error the client sees: a single failure as itself, several listed together."""
    seen = list(failures)
    if exc not in seen and not isinstance(exc, AttemptsFailedError):
        seen.append(exc)
    if len(seen) <= 1:
        return seen[0] if seen else exc
    return AttemptsFailedError(seen)
