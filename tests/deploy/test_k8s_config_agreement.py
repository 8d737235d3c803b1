"""The Deployment and the router config it ships must agree, and this fails when they drift.

The router.yaml inside ConfigMap ``litellm-config`` is loaded with RouteGuard's own loader,
from the files the pod's projected volume would hold (config and provider keys), and compared
with the rendered Deployment, Service and Dockerfile: ports, probe paths, the config path, and
drain time against ``terminationGracePeriodSeconds`` minus the preStop sleep.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import REPO, AtomicVolume, obj, projected_files, rendered

from routeguard.config.loader import load_config
from routeguard.config.schema import Config
from routeguard.server.app import RouteGuardApp

MOUNT = "/etc/routeguard"
CONFIG_PATH = f"{MOUNT}/router.yaml"
KEYS = {"OPENAI_API_KEY": "sk-o", "AZURE_API_KEY": "az", "ANTHROPIC_API_KEY": "sk-a"}
# The fleet's `redis:` keys, as the fleet work on main defines them.
REDIS_KEYS = {
    "url",
    "sentinel",
    "key_prefix",
    "sync_interval_s",
    "max_connections",
    "socket_timeout_s",
    "connect_timeout_s",
}


def config_text() -> str:
    text: str = obj("ConfigMap", "litellm-config")["data"]["litellm_router.yaml"]
    return text


def redis_section() -> dict[str, Any]:
    section: dict[str, Any] = yaml.safe_load(config_text())["redis"]
    return section


def load_as_pod_does(tmp_path: Path) -> Config:
    """Lay out the projected volume in ``tmp_path`` and load router.yaml from it.

    The config names key files by their absolute in-pod path; only that mount prefix is
    rewritten to the temporary directory. Until the fleet's ``redis:`` section is in the schema
    (it is being merged on main), the section is checked for its keys and left out of loading.
    """
    text = config_text()
    raw = yaml.safe_load(text)
    if "redis" not in Config.model_fields:
        assert set(raw["redis"]) <= REDIS_KEYS, sorted(raw["redis"])
        text = yaml.safe_dump({k: v for k, v in raw.items() if k != "redis"}, sort_keys=False)
    volume = AtomicVolume(tmp_path / "etc-routeguard")
    volume.write(projected_files(text.replace(f"{MOUNT}/", f"{volume.root}/"), KEYS))
    return load_config(volume.root / "router.yaml", env={"ROUTEGUARD_ADMIN_TOKEN": "t0ken"})


def dockerfile_entrypoint() -> list[str]:
    for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("ENTRYPOINT "):
            entry: list[str] = json.loads(line.removeprefix("ENTRYPOINT "))
            return entry
    raise AssertionError("Dockerfile has no ENTRYPOINT")


def disagreements(manifests: list[dict[str, Any]], config: Config) -> list[str]:
    """Every way the manifests contradict the router config, as readable sentences."""
    by_key = {(m["kind"], m["metadata"]["name"]): m for m in manifests}
    deployment = by_key[("Deployment", "litellm-router")]
    service = by_key[("Service", "litellm-router")]
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "router")
    problems: list[str] = []

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if ports.get("http") != config.server.port:
        problems.append(
            f"containerPort http {ports.get('http')} != server.port {config.server.port}"
        )
    if config.server.host not in ("0.0.0.0", "::"):
        problems.append(f"server.host {config.server.host} is not reachable from the pod IP")
    for port in service["spec"]["ports"]:
        if port["targetPort"] not in ("http", config.server.port):
            problems.append(f"Service targetPort {port['targetPort']} is not the router's port")

    expected = {
        "readinessProbe": "/health/ready",
        "livenessProbe": "/health/live",
        "startupProbe": "/health",
    }
    for probe, path in expected.items():
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or ports.get(get.get("port")) != config.server.port:
            problems.append(
                f"{probe} asks {get.get('path')}:{get.get('port')}, expected {path}:http"
            )

    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    if not config.server.drain_timeout_s < grace - pre_stop:
        problems.append(
            f"server.drain_timeout_s {config.server.drain_timeout_s} must be below "
            f"terminationGracePeriodSeconds {grace} - preStop sleep {pre_stop}"
        )
    liveness = container["livenessProbe"]
    if liveness["periodSeconds"] * liveness["failureThreshold"] <= config.server.drain_timeout_s:
        problems.append("the liveness probe could kill a pod that is still draining")

    if container["command"] != dockerfile_entrypoint():
        problems.append(f"command {container['command']} != Dockerfile ENTRYPOINT")
    command = container["command"]
    config_arg = command[command.index("--config") + 1]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount_path, _, file_name = config_arg.rpartition("/")
    projected = volumes.get(mounts.get(mount_path, ""), {}).get("projected", {"sources": []})
    items = [
        item["path"]
        for source in projected["sources"]
        for item in source.get("configMap", {}).get("items", [])
    ]
    if file_name not in items:
        problems.append(f"--config {config_arg} is not a ConfigMap file mounted by the pod")

    writable = [path for path, name in mounts.items() if "emptyDir" in volumes[name]]
    audit = config.admin.audit_log
    if not any(audit.startswith(f"{path}/") for path in writable):
        problems.append(f"admin.audit_log {audit} is not on a writable volume")
    return problems


def test_manifests_agree_with_router_config(tmp_path: Path) -> None:
    config = load_as_pod_does(tmp_path)
    assert config.server.watch_config_s > 0, "hot reload from the ConfigMap must be on"
    assert disagreements(list(rendered()), config) == []


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("terminationGracePeriodSeconds",), 30, "drain_timeout_s"),
        (("containers", 0, "readinessProbe", "httpGet", "path"), "/ready", "readinessProbe"),
        (("containers", 0, "ports", 0, "containerPort"), 9090, "containerPort"),
        (("containers", 0, "command", 3), "/etc/routeguard/litellm_router.yaml", "--config"),
    ],
)
def test_a_drifted_manifest_is_caught(
    tmp_path: Path, path: tuple[Any, ...], value: Any, problem: str
) -> None:
    manifests = copy.deepcopy(list(rendered()))
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    node = deployment["spec"]["template"]["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    found = disagreements(manifests, load_as_pod_does(tmp_path))
    assert any(problem in p for p in found), found


def test_key_files_are_projected_from_the_secret() -> None:
    deployments = yaml.safe_load(config_text())["deployments"]
    files = {f"{MOUNT}/{path}" for path in projected_files("", KEYS)}
    for name, deployment in deployments.items():
        assert "api_key" not in deployment, f"{name}: keys belong in Secret provider-api-keys"
        assert deployment["api_key_file"] in files, (name, deployment["api_key_file"])


def test_redis_section_points_at_the_redis_service() -> None:
    section = redis_section()
    assert set(section) <= REDIS_KEYS
    service = obj("Service", "router-redis")
    port = service["spec"]["ports"][0]["port"]
    assert section["url"] == f"redis://{service['metadata']['name']}:{port}/0"
    # Every router's pool fits in Redis' client limit with room for operators.
    conf = obj("ConfigMap", "router-redis-config")["data"]["redis.conf"]
    maxclients = int(
        next(line.split()[1] for line in conf.splitlines() if line.startswith("maxclients"))
    )
    max_replicas = obj("HorizontalPodAutoscaler", "litellm-router")["spec"]["maxReplicas"]
    assert max_replicas * section["max_connections"] < maxclients


def test_probe_paths_answer_on_a_router_built_from_this_config(
    tmp_path: Path, loop_thread: Any
) -> None:
    """The probe paths exist and answer 200 on a router running the shipped config."""
    app = RouteGuardApp(load_as_pod_does(tmp_path))
    port = loop_thread.run(app.start("127.0.0.1", 0))
    try:
        container = obj("Deployment", "litellm-router")["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            path = container[probe]["httpGet"]["path"]
            answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert answer.status_code == 200, (probe, path, answer.text)
    finally:
        loop_thread.run(app.close(drain_timeout_s=1))
