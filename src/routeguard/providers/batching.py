"""Embedding micro-batching: concurrent requests to one deployment share one upstream call.

Local embedding servers (vLLM, TEI) embed a batch of inputs for little more than the price of
one, so when ``batching`` is configured on a deployment, the ``/v1/embeddings`` requests that
reach it within ``max_wait_ms`` of each other are sent as one request: inputs concatenated,
the answer split back by ``index``, usage apportioned by each request's share of the input.

What each client still gets is its own answer, with its own failure:

* only requests with the same parameters (everything but ``input`` and ``model``) are merged,
  so ``dimensions`` or ``encoding_format`` never leak from one client to another;
* a batch the upstream refuses as a client error (a bad input in one request) is re-sent
  request by request, so the 400 reaches only the request that caused it; an outage or a
  timeout concerns every request of the batch and fails each (the router may retry each);
* a client that goes away while its batch waits leaves it (its inputs are not sent); once the
  batch is on the wire, the call runs to its end in a task of its own, so one cancellation never
  fails the others.

The batcher lives inside the adapter and only changes how the adapter's one ``embed`` call is
made: each request still holds its own concurrency slot and breaker permit in the router.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from routeguard.errors import UpstreamBadResponseError, UpstreamError
from routeguard.providers.base import BatchSettings

__all__ = ["EmbeddingBatcher"]

Send = Callable[[dict[str, Any]], Awaitable[bytes]]


@dataclass(slots=True)
class _Waiter:
    payload: dict[str, Any]
    items: list[Any]
    weight: int
    future: asyncio.Future[bytes]


@dataclass(slots=True)
class _Batch:
    key: bytes
    waiters: list[_Waiter] = field(default_factory=list)
    size: int = 0
    timer: asyncio.TimerHandle | None = None


def _items(value: Any) -> list[Any]:
    """The request's inputs as a list of single inputs (a string or one token array)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]  # one token array
    return list(value) if isinstance(value, list) else [value]


def _weight(items: list[Any]) -> int:
    """A request's share of the batch's tokens, for apportioning usage: its input length."""
    return sum(len(item) if isinstance(item, (str, list)) else 1 for item in items) or 1


class EmbeddingBatcher:
    """Coalesces concurrent ``embed`` calls of one deployment; ``send`` makes the real call."""

    def __init__(self, send: Send, settings: BatchSettings, *, deployment: str) -> None:
        self._send = send
        self._max_size = settings.max_batch_size
        self._wait_s = settings.max_wait_ms / 1000
        self._deployment = deployment
        self._open: dict[bytes, _Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.upstream_calls = 0
        """Upstream requests made so far (batches plus re-sent single requests)."""

    async def embed(self, payload: dict[str, Any]) -> bytes:
        items = _items(payload.get("input"))
        if len(items) >= self._max_size:
            self.upstream_calls += 1
            return await self._send(payload)  # a full batch by itself
        loop = asyncio.get_running_loop()
        waiter = _Waiter(payload, items, _weight(items), loop.create_future())
        key = orjson.dumps(
            {k: v for k, v in payload.items() if k not in ("input", "model")},
            option=orjson.OPT_SORT_KEYS,
        )
        batch = self._open.get(key)
        if batch is not None and batch.size + len(items) > self._max_size:
            self._flush(batch)
            batch = None
        if batch is None:
            batch = _Batch(key)
            self._open[key] = batch
            batch.timer = loop.call_later(self._wait_s, self._flush, batch)
        batch.waiters.append(waiter)
        batch.size += len(items)
        if batch.size >= self._max_size:
            self._flush(batch)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # The client left: if the batch is still waiting, take its inputs out of it.
            if self._open.get(key) is batch and waiter in batch.waiters:
                batch.waiters.remove(waiter)
                batch.size -= len(items)
                if not batch.waiters:
                    self._flush(batch)
            raise

    def _flush(self, batch: _Batch) -> None:
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        waiters = [w for w in batch.waiters if not w.future.done()]
        if not waiters:
            return
        task = asyncio.get_running_loop().create_task(self._run(waiters))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, waiters: list[_Waiter]) -> None:
        try:
            await self._run_batch(waiters)
        finally:
            # Whatever went wrong in here, no request may wait forever for its answer.
            _fail(waiters, UpstreamBadResponseError("embedding batch ended without an answer"))

    async def _run_batch(self, waiters: list[_Waiter]) -> None:
        if len(waiters) == 1:
            await self._run_alone(waiters[0])
            return
        payload = {**waiters[0].payload, "input": [i for w in waiters for i in w.items]}
        self.upstream_calls += 1
        try:
            body = await self._send(payload)
            answers = _split(body, waiters)
        except UpstreamError as exc:
            if not exc.retryable and exc.status < 500:
                # One request's input may be what the upstream refused: find out which.
                await asyncio.gather(*(self._run_alone(w) for w in waiters))
                return
            _fail(waiters, exc)
            return
        except Exception as exc:
            _fail(waiters, exc)
            return
        for waiter, answer in zip(waiters, answers, strict=True):
            if not waiter.future.done():
                waiter.future.set_result(answer)

    async def _run_alone(self, waiter: _Waiter) -> None:
        if waiter.future.done():
            return
        self.upstream_calls += 1
        try:
            body = await self._send(waiter.payload)
        except Exception as exc:
            _fail([waiter], exc)
            return
        if not waiter.future.done():
            waiter.future.set_result(body)


def _fail(waiters: list[_Waiter], exc: Exception) -> None:
    for waiter in waiters:
        if not waiter.future.done():
            # Each request raises its own copy: the router annotates and chains what it raises.
            waiter.future.set_exception(_clone(exc))


def _clone(exc: Exception) -> Exception:
    """A shallow copy; ``copy.copy`` would call constructors with keyword-only arguments."""
    clone = exc.__class__.__new__(exc.__class__)
    clone.__dict__.update(exc.__dict__)
    clone.args = exc.args
    return clone


def _split(body: bytes, waiters: list[_Waiter]) -> list[bytes]:
    """One OpenAI embeddings body per waiter, indexes renumbered from 0 and usage shared out."""
    data = orjson.loads(body)
    rows = data.get("data") if isinstance(data, dict) else None
    total = sum(len(w.items) for w in waiters)
    if not isinstance(rows, list) or len(rows) != total:
        raise UpstreamBadResponseError(
            f"upstream embeddings answer has {len(rows) if isinstance(rows, list) else 'no'} "
            f"rows for {total} inputs"
        )
    rows = sorted(rows, key=lambda row: row.get("index", 0) if isinstance(row, dict) else 0)
    usage: dict[str, Any] = data["usage"] if isinstance(data.get("usage"), dict) else {}
    given = usage.get("prompt_tokens")
    prompt: int = given if isinstance(given, int) else 0
    weights = sum(w.weight for w in waiters)
    shares = [prompt * w.weight // weights for w in waiters]
    shares[-1] += prompt - sum(shares)
    answers: list[bytes] = []
    start = 0
    for waiter, share in zip(waiters, shares, strict=True):
        mine = rows[start : start + len(waiter.items)]
        start += len(waiter.items)
        renumbered = [{**row, "index": index} for index, row in enumerate(mine)]
        part = {
            **data,
            "data": renumbered,
            "usage": {**usage, "prompt_tokens": share, "total_tokens": share},
        }
        answers.append(orjson.dumps(part))
    return answers
