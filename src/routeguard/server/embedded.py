"""The embedded default: ``routeguard serve`` with no config file.

A newcomer's first command should answer a real SDK call without API keys or a config to write.
This starts the provider simulator on a free port and serves the packaged
``examples/simulator.yaml`` (the runbook's model groups and deployment names) in front of it, in
one process, then prints the base URL and snippets to paste. Everything else is the ordinary
serving path: the same config loader, app, hot reload, admin API and drain.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from routeguard.observability.logs import LogFormat
from routeguard.server.app import RouteGuardApp
from routeguard.server.runner import serve_forever
from routeguard.simulator import Simulator

__all__ = ["SIMULATOR_CONFIG", "SIMULATOR_URL_ENV", "banner", "serve_embedded"]

SIMULATOR_URL_ENV = "ROUTEGUARD_SIMULATOR_URL"
ADMIN_TOKEN_ENV = "ROUTEGUARD_ADMIN_TOKEN"
DEFAULT_ADMIN_TOKEN = "rehearsal-token"  # examples/simulator.yaml's default; loopback only


def simulator_config_path() -> Path:
    """The packaged simulator example, as a real file (hot reload watches it)."""
    return Path(str(resources.files("routeguard") / "examples" / "simulator.yaml"))


SIMULATOR_CONFIG = simulator_config_path()


def banner(app: RouteGuardApp, simulator_url: str, bind_host: str | None = None) -> str:
    """What to paste next: the base URL, a curl call and the openai SDK call."""
    host = bind_host or app.config.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    base = f"http://{host}:{app.port}"
    token = os.environ.get(ADMIN_TOKEN_ENV) or DEFAULT_ADMIN_TOKEN
    groups = ", ".join(app.router.groups)
    return f"""
RouteGuard is serving the simulator config ({SIMULATOR_CONFIG.name}); no API keys involved.
  router     {base}/v1        model groups: {groups}
  simulator  {simulator_url}   faults: PUT {simulator_url}/_sim/faults/<deployment>
  admin      Authorization: Bearer {token}

Try it:
  curl -s {base}/v1/chat/completions -H 'content-type: application/json' \\
       -d '{{"model": "gpt-4-turbo", "messages": [{{"role": "user", "content": "hello"}}]}}'

  from openai import OpenAI
  client = OpenAI(base_url="{base}/v1", api_key="unused")
  client.chat.completions.create(
      model="gpt-4-turbo", messages=[{{"role": "user", "content": "hi"}}])

  curl -s {base}/admin/deployments -H 'Authorization: Bearer {token}'
Ctrl-C drains and stops.
"""


async def serve_embedded(
    host: str | None, port: int | None, *, log_format: LogFormat = "json"
) -> None:
    """Serve the simulator config in front of an in-process simulator until SIGTERM/SIGINT."""
    simulator = Simulator("127.0.0.1", 0)
    await simulator.start()
    # The config reads its api_base from here, on start and on every reload.
    os.environ[SIMULATOR_URL_ENV] = simulator.base_url

    def ready(app: RouteGuardApp) -> None:
        print(banner(app, simulator.base_url, host), flush=True)

    try:
        await serve_forever(SIMULATOR_CONFIG, host, port, log_format=log_format, on_ready=ready)
    finally:
        await simulator.stop()
