"""``deploy/compose.yaml``, checked structurally (CI cannot run containers): the services of the
runbook's environment, their health checks and start order, host ports, mounts that point at
files that exist, and the mounted configs themselves: the routers' config loads with
RouteGuard's loader and talks to the compose services, and Prometheus' config (with alerts.yml
where the mounts put it) passes ``promtool check config``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from support import REPO

from routeguard.config.loader import parse_config
from routeguard.config.schema import Config

DEPLOY = REPO / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
ROUTERS = ("router-1", "router-2")


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Host path (relative to deploy/) -> container path, for ./ bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[source] = target
    return mounts


def router_config_text() -> str:
    return (DEPLOY / "compose" / "router.yaml").read_text(encoding="utf-8")


def test_the_runbook_environment() -> None:
    assert set(SERVICES) == {"simulator", *ROUTERS, "router-redis", "prometheus", "grafana"}
    for name, service in SERVICES.items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        assert service.get("image"), name
    for name in ROUTERS:
        depends = SERVICES[name]["depends_on"]
        assert {k: v["condition"] for k, v in depends.items()} == {
            "simulator": "service_healthy",
            "router-redis": "service_healthy",
        }
        assert SERVICES[name]["read_only"] is True
        assert (
            DEPLOY / SERVICES[name]["build"]["context"] / SERVICES[name]["build"]["dockerfile"]
        ).is_file()
    host_ports = [p.split(":")[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), host_ports


def test_every_mount_points_at_a_file_that_exists() -> None:
    for name, service in SERVICES.items():
        for source in bind_mounts(service):
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


def test_router_config_loads_and_uses_the_compose_services() -> None:
    text = router_config_text()
    raw = yaml.safe_load(text)
    if "redis" not in Config.model_fields:  # the fleet's redis section is being merged on main
        text = yaml.safe_dump({k: v for k, v in raw.items() if k != "redis"})
    config = parse_config(text, "deploy/compose/router.yaml", env={"ROUTEGUARD_ADMIN_TOKEN": "t"})
    mount = bind_mounts(SERVICES["router-1"])["./compose"]
    assert SERVICES["router-1"].get("entrypoint") is None, "the image's ENTRYPOINT reads it"
    assert mount == "/etc/routeguard"  # the ENTRYPOINT's --config /etc/routeguard/router.yaml
    simulator_port = SERVICES["simulator"]["entrypoint"][-1]
    for name, deployment in config.deployments.items():
        url = urlparse(deployment.api_base or "")
        assert (url.hostname, str(url.port)) == ("simulator", simulator_port), name
    redis_url = urlparse(raw["redis"]["url"])
    assert redis_url.hostname in SERVICES
    assert redis_url.port == 6379
    for name in ROUTERS:
        assert SERVICES[name]["ports"][0].endswith(f":{config.server.port}")
        grace = int(SERVICES[name]["stop_grace_period"].rstrip("s"))
        assert grace > config.server.drain_timeout_s, "docker stop must let the drain finish"
    assert config.admin.audit_log.startswith(tuple(SERVICES["router-1"]["tmpfs"]))


def test_prometheus_config_is_valid_where_the_mounts_put_it(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install the Debian package prometheus (CI does)"
    mounts = bind_mounts(SERVICES["prometheus"])
    etc = tmp_path / "etc-prometheus"
    etc.mkdir()
    for source, target in mounts.items():
        assert target.startswith("/etc/prometheus/"), target
        shutil.copy(DEPLOY / source, etc / Path(target).name)
    result = subprocess.run(
        [promtool, "check", "config", str(etc / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    scrape = yaml.safe_load((etc / "prometheus.yml").read_text())["scrape_configs"]
    (job,) = scrape
    assert job["job_name"] == "litellm-router"
    targets = job["static_configs"][0]["targets"]
    assert sorted(targets) == [f"{name}:8080" for name in ROUTERS]
