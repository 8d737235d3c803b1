"""Shared pieces of the operator-command tests: a router config over the simulator, an admin
client, steady traffic from the official SDK, the CLI as a real process, and polling."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai

from routeguard.config.loader import load_config
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import Simulator

TOKEN = "rg-ops-token-SECRET"
ROUTEGUARD = [sys.executable, "-m", "routeguard.cli"]


def config_text(
    sim: Simulator,
    audit: Path,
    deployments: dict[str, str],
    weights: dict[str, float],
    *,
    group: str = "gpt-4-turbo",
    extra: dict[str, str] | None = None,
    cooldown_s: float = 1.0,
    health_interval_s: float = 0.2,
    watch_s: float = 0.0,
) -> str:
    """``deployments`` maps name -> provider; ``extra`` adds raw YAML to a deployment's map."""
    lines = [
        f"server:\n  watch_config_s: {watch_s}\n  access_log: false",
        f'admin:\n  audit_log: "{audit}"\n  tokens:\n    oncall: "{TOKEN}"',
        "routing:\n  num_retries: 2\n  retry_backoff_s: 0\n  circuit_breaker_min_requests: 3\n"
        f"  circuit_breaker_error_rate: 0.5\n  circuit_breaker_window_s: 5\n  cooldown_s: {cooldown_s}",
        f"health_checks:\n  interval_s: {health_interval_s}\n  timeout_s: 5",
        "deployments:",
    ]
    for name, provider in deployments.items():
        model = "claude-3-opus-20240229" if provider == "anthropic" else "gpt-4-turbo"
        more = (extra or {}).get(name, "api_key: sk-upstream-SECRET")
        extra_azure = (
            ", api_version: 2024-10-21, azure_deployment: gpt4" if provider == "azure" else ""
        )
        lines.append(
            f'  {name}: {{provider: {provider}, model: {model}, api_base: "{sim.url(name, provider)}", '
            f"{more}{extra_azure}}}"
        )
    members = ", ".join(f"{n}: {w:g}" for n, w in weights.items())
    lines.append(f"weights:\n  {group}: {{{members}}}")
    return "\n".join(lines) + "\n"


class Router:
    """A RouteGuard app from a config file, started on the loop thread, with an admin client."""

    def __init__(self, loop_thread: Any, path: Path) -> None:
        self.loop_thread = loop_thread
        self.path = path
        self.app = RouteGuardApp(load_config(path), config_path=path, rng=random.Random(3))
        loop_thread.run(self.app.start("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.app.port}"
        self.admin = httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def close(self) -> None:
        self.admin.close()
        self.loop_thread.run(self.app.close(drain_timeout_s=1))

    def breaker(self, name: str) -> str:
        return self.loop_thread.call(lambda: self.app.runtimes[name].breaker.state.name)

    def weights(self) -> dict[str, float]:
        return self.admin.get("/admin/weights").json()["weights"]["gpt-4-turbo"]

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        for r in self.admin.get("/admin/rollouts").json()["rollouts"]:
            if r["id"] == rollout_id:
                return r
        raise AssertionError(f"no rollout {rollout_id}")


class Traffic:
    """Steady chat traffic through the router from the official SDK, in background threads."""

    def __init__(self, url: str, *, threads: int = 2, model: str = "gpt-4-turbo") -> None:
        self.url = url
        self.model = model
        self.served: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        with openai.OpenAI(
            base_url=f"{self.url}/v1", api_key="client-key", max_retries=0
        ) as client:
            while not self._stop.is_set():
                self._one(client)
                time.sleep(0.005)

    def _one(self, client: openai.OpenAI) -> None:
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=self.model, messages=[{"role": "user", "content": "hi"}], max_tokens=5
            )
            self.served[raw.headers.get("x-routeguard-deployment", "?")] += 1
        except openai.APIStatusError as exc:
            self.errors[str(exc.status_code)] += 1
        except openai.APIConnectionError:
            self.errors["connection"] += 1


def wait_for(predicate: Callable[[], Any], deadline_s: float = 20.0, what: str = "") -> float:
    """Poll until ``predicate()`` is truthy; the seconds it took (fails after the deadline)."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"timed out after {deadline_s} s waiting for {what or predicate}")


def cli(*args: str, url: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``routeguard ARGS`` as a real process against ``url``, token from the environment."""
    env = {**os.environ, "ROUTEGUARD_URL": url, "ROUTEGUARD_ADMIN_TOKEN": TOKEN, "COLUMNS": "160"}
    return subprocess.run(
        [*ROUTEGUARD, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
