"""Fixtures for the simulator tests: one simulator per session, driven by the real SDKs.

The simulator runs on the shared background loop (``loop_thread``) and listens on a real
socket; every test uses its own target name so faults and stats never leak between tests,
and an autouse fixture clears faults after each test anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from routeguard.simulator import Simulator

KEY = "sk-sim-test"
AZURE_API_VERSION = "2024-10-21"


@pytest.fixture(scope="session")
def sim(loop_thread: Any) -> Iterator[Simulator]:
    simulator = Simulator(seed=1234)
    loop_thread.run(simulator.start())
    yield simulator
    loop_thread.run(simulator.stop())


@pytest.fixture(scope="session")
def keyed_sim(loop_thread: Any) -> Iterator[Simulator]:
    """A simulator that checks API keys: only ``KEY`` is accepted."""
    simulator = Simulator(seed=99, api_keys={KEY})
    loop_thread.run(simulator.start())
    yield simulator
    loop_thread.run(simulator.stop())


@pytest.fixture(autouse=True)
def _clear_faults(sim: Simulator) -> Iterator[None]:
    yield
    sim.clear_faults()


@pytest.fixture
def control(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        yield client


class Clients:
    """Builds SDK clients pointed at a simulator target and closes them all at teardown.

    OpenAI and Anthropic clients validate responses strictly, so any field the simulator
    gets wrong against the SDK's models fails the test instead of passing silently.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._open: list[Any] = []

    @staticmethod
    def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"max_retries": 0, "timeout": 10.0, "api_key": KEY, **kwargs}

    def openai(self, target: str, sim: Simulator | None = None, **kwargs: Any) -> openai.OpenAI:
        base = (sim or self.sim).url(target)
        options = self._options({"_strict_response_validation": True, **kwargs})
        client = openai.OpenAI(base_url=base, **options)
        self._open.append(client)
        return client

    def azure(self, target: str, **kwargs: Any) -> openai.AzureOpenAI:
        # Not strict: Azure's opening stream chunk has an empty "object", as the real one does.
        client = openai.AzureOpenAI(
            azure_endpoint=self.sim.url(target, "azure"),
            api_version=AZURE_API_VERSION,
            **self._options(kwargs),
        )
        self._open.append(client)
        return client

    def anthropic(
        self, target: str, sim: Simulator | None = None, **kwargs: Any
    ) -> anthropic.Anthropic:
        base = (sim or self.sim).url(target, "anthropic")
        options = self._options({"_strict_response_validation": True, **kwargs})
        client = anthropic.Anthropic(base_url=base, **options)
        self._open.append(client)
        return client

    def close(self) -> None:
        for client in self._open:
            client.close()


@pytest.fixture
def clients(sim: Simulator) -> Iterator[Clients]:
    made = Clients(sim)
    yield made
    made.close()
