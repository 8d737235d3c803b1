"""The simulator server: one aiohttp app, many targets, three providers' paths.

A request's *target* is the path before the provider's own suffix, slashes stripped
(``/openai-a/v1/chat/completions`` -> ``openai-a``; ``/v1/chat/completions`` ->
``default``). Routing is a short list of suffix checks rather than aiohttp routes per
provider because targets are arbitrary prefixes that no route table could enumerate.

Every provider request goes through the same steps, in order: faults (which may delay,
drop or refuse it), Azure's ``api-version`` check, authentication, JSON parsing, and then
the provider handler; validation failures surface as ``InvalidRequest`` and are rendered
in the provider's own 400 shape.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Awaitable, Callable, Collection
from functools import partial
from types import TracebackType
from typing import Any, Literal

import orjson
from aiohttp import web

from routeguard.simulator import (
    anthropic_api,
    azure_api,
    completions_api,
    embeddings,
    openai_api,
    responses_api,
)
from routeguard.simulator.control import ControlAPI
from routeguard.simulator.delivery import (
    ConnectionDropped,
    Dialect,
    Exchange,
    InvalidRequest,
    json_response,
)
from routeguard.simulator.faults import FaultRegistry, FaultSpec, StatsBook, TargetStats

__all__ = ["Provider", "Simulator", "run_simulator"]

Provider = Literal["openai", "azure", "anthropic", "vllm"]
Handler = Callable[[Exchange, Any], Awaitable[web.StreamResponse]]

_OPENAI = openai_api.OpenAIDialect()
_AZURE = azure_api.DIALECT
_ANTHROPIC = anthropic_api.DIALECT
_AZURE_MARK = "/openai/deployments/"
_SHUTDOWN_TIMEOUT_S = 1.0

# (method, path suffix, dialect, handler), checked in order: longest suffixes first.
_SUFFIX_ROUTES: tuple[tuple[str, str, Dialect, Handler], ...] = (
    ("POST", "/v1/messages/count_tokens", _ANTHROPIC, anthropic_api.handle_count_tokens),
    ("POST", "/v1/messages", _ANTHROPIC, anthropic_api.handle_messages),
    ("POST", "/v1/chat/completions", _OPENAI, openai_api.handle_chat),
    ("POST", "/v1/embeddings", _OPENAI, embeddings.handle_embeddings),
    ("POST", "/v1/completions", _OPENAI, completions_api.handle_completions),
    ("POST", "/v1/responses", _OPENAI, responses_api.handle_responses),
    ("GET", "/v1/models", _OPENAI, openai_api.handle_models),
)
_AZURE_OPERATIONS: dict[str, Callable[..., Awaitable[web.StreamResponse]]] = {
    "chat/completions": azure_api.handle_chat,
    "embeddings": azure_api.handle_embeddings,
}


def _target_name(prefix: str) -> str:
    return prefix.strip("/") or "default"


def resolve(method: str, path: str, anthropic: bool) -> tuple[str, Dialect, Handler] | None:
    """Map a request to ``(target, dialect, handler)``, or ``None`` for unknown paths.

    ``anthropic`` (the request carries ``anthropic-version``) decides who answers the one
    path both providers share, ``GET /v1/models``.
    """
    cut = path.find(_AZURE_MARK)
    if cut >= 0:
        deployment, _, operation = path[cut + len(_AZURE_MARK) :].partition("/")
        azure_handler = _AZURE_OPERATIONS.get(operation.rstrip("/"))
        if method != "POST" or not deployment or azure_handler is None:
            return None
        return _target_name(path[:cut]), _AZURE, partial(azure_handler, deployment=deployment)
    for route_method, suffix, dialect, handler in _SUFFIX_ROUTES:
        if path.endswith(suffix):
            if method != route_method:
                return None
            target = _target_name(path[: -len(suffix)])
            if suffix == "/v1/models" and anthropic:
                return target, _ANTHROPIC, anthropic_api.handle_models
            return target, dialect, handler
    return None


class Simulator:
    """A provider simulator on a real socket, with runtime fault injection.

    ``seed`` makes every random draw (errors, jitter, ids) reproducible; ``api_keys``, if
    given, turns on key checking (requests without a listed key get the provider's 401);
    ``words`` is the length of generated answers before any ``max_tokens`` cap.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        api_keys: Collection[str] | None = None,
        words: int = 12,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.ssl_context = ssl_context
        self.port = port
        self._rng = random.Random(seed)
        self._api_keys = frozenset(api_keys) if api_keys is not None else None
        self._words = max(1, words)
        self._faults = FaultRegistry()
        self._stats = StatsBook()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url(self, target: str, provider: Provider | str = "openai") -> str:
        """The ``api_base`` a client uses for ``target``.

        OpenAI and vLLM clients append ``/chat/completions`` to a base ending in ``/v1``;
        Azure and Anthropic SDKs add their own path (``/openai/...``, ``/v1/messages``).
        """
        if provider in ("openai", "vllm"):
            return f"{self.base_url}/{target}/v1"
        if provider in ("azure", "anthropic"):
            return f"{self.base_url}/{target}"
        raise ValueError(f"unknown provider {provider!r}: use openai, vllm, azure or anthropic")

    def set_fault(self, target: str, spec: FaultSpec) -> None:
        """Inject ``spec`` into every later request to ``target`` (``"*"``: all targets)."""
        self._faults.set(target, spec)

    def clear_faults(self, target: str | None = None) -> None:
        """Remove ``target``'s faults, or every fault when ``target`` is ``None``."""
        self._faults.clear(target)

    def set_api_keys(self, api_keys: Collection[str] | None) -> None:
        """Change which keys are accepted (``None``: no checks), as a provider rotating or
        revoking a key does; the key-rotation drill uses it to start a 401 storm."""
        self._api_keys = frozenset(api_keys) if api_keys is not None else None

    def stats(self) -> dict[str, TargetStats]:
        """A snapshot of per-target counters (later requests do not change it)."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    def make_app(self) -> web.Application:
        """The aiohttp application, for embedding in another server or test harness."""
        app = web.Application()
        ControlAPI(self._faults, self._stats).add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self) -> None:
        """Bind and serve; with ``port=0`` the OS picks a free port, stored in ``port``."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._stopping = asyncio.Event()
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])

    async def stop(self) -> None:
        """Stop serving: hung requests are released and open connections are closed."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        anthropic = "anthropic-version" in request.headers
        route = resolve(request.method, request.path, anthropic)
        if route is None:
            if request.path.startswith("/_sim"):
                message = f"no control endpoint {request.method} {request.path}"
                return json_response({"error": message}, 404)
            dialect: Dialect = _ANTHROPIC if anthropic else _OPENAI
            if _AZURE_MARK in request.path:
                dialect = _AZURE
            return dialect.not_found(request.method, request.path)
        target, dialect, handler = route
        stats = self._stats.for_target(target)
        stats.requests += 1
        fault = self._faults.get(target)
        exchange = Exchange(
            request,
            target=target,
            fault=fault,
            gate=self._faults.gate(target, fault),
            stats=stats,
            rng=self._rng,
            stopping=self._stopping,
            dialect=dialect,
            words=self._words,
        )
        try:
            response = await self._answer(exchange, handler)
        except ConnectionDropped:
            # Nothing may be sent; aiohttp's write of this placeholder fails quietly on the
            # closed transport.
            return web.Response()
        stats.count_status(response.status)
        return response

    def _refusal(self, request: web.Request, dialect: Dialect) -> web.Response | None:
        """The gateway's refusal (bad ``api-version``, missing or wrong key), if any."""
        if dialect is _AZURE:
            refusal = azure_api.api_version_error(request)
            if refusal is not None:
                return refusal
        key = dialect.api_key(request)
        if key is None and (dialect.key_required or self._api_keys is not None):
            return dialect.unauthorized(missing=True)
        if self._api_keys is not None and key not in self._api_keys:
            return dialect.unauthorized(missing=False)
        return None

    async def _answer(self, ex: Exchange, handler: Handler) -> web.StreamResponse:
        refusal = await ex.intercept() or self._refusal(ex.request, ex.dialect)
        if refusal is not None:
            return refusal
        request, dialect = ex.request, ex.dialect
        body: Any = None
        if request.method == "POST":
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                return dialect.bad_json()
            ex.stats.last_body = body
        try:
            return await handler(ex, body)
        except InvalidRequest as exc:
            return dialect.invalid_request(exc.message, exc.param, exc.code)


async def run_simulator(
    host: str,
    port: int,
    *,
    seed: int | None = None,
    api_keys: Collection[str] | None = None,
    words: int = 12,
    on_ready: Callable[[Simulator], None] | None = None,
) -> None:
    """Serve until cancelled (the ``routeguard simulate`` command runs this).

    ``on_ready`` is called once the socket is bound, e.g. to print the chosen port.
    """
    simulator = Simulator(host, port, seed=seed, api_keys=api_keys, words=words)
    await simulator.start()
    try:
        if on_ready is not None:
            on_ready(simulator)
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
