"""Routers with small limits and timeouts, so every limit test runs in seconds."""

from __future__ import annotations

import pytest
from edge_config import router_yaml


@pytest.fixture
def small_router(simulator, start_router):
    return start_router(router_yaml(simulator))
