"""``python -m routeguard.simulator``: run the simulator standalone on uvloop.

The ``routeguard simulate`` command is the usual entry point; this one needs nothing but
the package, which is handy in a container or a drill where the CLI is not installed.
"""

from __future__ import annotations

import argparse
import contextlib

import uvloop

from routeguard.simulator.server import Simulator, run_simulator


def _ready(simulator: Simulator) -> None:
    print(f"simulator listening on {simulator.base_url}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m routeguard.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--words", type=int, default=12, help="words per generated answer")
    parser.add_argument(
        "--api-key", action="append", dest="api_keys", help="accept only this key (repeatable)"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(
            run_simulator(
                args.host,
                args.port,
                seed=args.seed,
                api_keys=args.api_keys,
                words=args.words,
                on_ready=_ready,
            )
        )


if __name__ == "__main__":
    main()
