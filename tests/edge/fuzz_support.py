"""A router (and its simulator) started once per fuzz module: hypothesis runs hundreds of
examples, each over a real socket, and a fresh router per example would dominate the time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

from edge_config import SMALL_LIMITS, router_yaml
from hypothesis import strategies as st

from routeguard.config.loader import parse_config
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import Simulator

ADMIN = "fuzz-admin-token"

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@contextmanager
def running_router(loop_thread, extra: str = "") -> Iterator[RouteGuardApp]:
    sim = Simulator(seed=11)
    loop_thread.run(sim.start())
    app = RouteGuardApp(
        parse_config(
            router_yaml(sim, SMALL_LIMITS.replace("header_timeout_s: 1", "header_timeout_s: 5"))
            + f"admin:\n  tokens: {{fuzz: {ADMIN}}}\n  audit_log: /dev/null\n"
            + extra,
            "<fuzz>",
        ),
        rng=random.Random(3),
    )
    loop_thread.run(app.start("127.0.0.1", 0))
    try:
        yield app
    finally:
        loop_thread.run(app.close(drain_timeout_s=1))
        loop_thread.run(sim.stop())
