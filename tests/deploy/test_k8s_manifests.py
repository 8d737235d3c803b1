"""The Kubernetes manifests, rendered as ``kubectl apply -k deploy/kubernetes`` would send them,
are valid for recent Kubernetes versions, pass a security linter, and carry the runbook's names.

- ``kubernetes-validate`` (bundled OpenAPI schemas, strict: unknown fields fail) on every object.
- ``checkov`` with zero failed checks; each skipped check is an annotation with its reason next
  to the object. checkov pulls in a large dependency tree, so it runs from its own virtualenv
  (``.cache/checkov-venv``, created on first use; ``CHECKOV=/path/to/checkov`` to bring one).
- The PrometheusRule is ``deploy/prometheus/alerts.yml``, generated, never hand-edited.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import kustomize
import pytest
import redis
import yaml
from support import K8S, REPO, free_port, obj, rendered

VERSIONS = ["1.31.0", kubernetes_validate.latest_version()]
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}  # no bundled schema: checked field by field
RUNBOOK = REPO / "docs" / "runbook.md"
NAMESPACE = "primarch"


def core_objects() -> list[dict[str, Any]]:
    return [m for m in rendered() if m["kind"] not in CRD_KINDS]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_validates_against_the_kubernetes_schema(version: str) -> None:
    for manifest in core_objects():
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validator_rejects_a_misspelled_field() -> None:
    """The schema check can fail: a typo in a probe is an error, not ignored."""
    deployment = json.loads(json.dumps(obj("Deployment", "litellm-router")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecond"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def test_renderer_refuses_kustomize_features_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\npatches: []\n"
    )
    with pytest.raises(kustomize.KustomizeError, match="patches"):
        kustomize.render(tmp_path)


def test_everything_is_in_the_runbook_namespace() -> None:
    for manifest in rendered():
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == NAMESPACE, manifest["metadata"]


def test_runbook_commands_find_their_objects() -> None:
    """Each `kubectl`, `redis-cli` and `curl` target in the runbook exists as written."""
    text = RUNBOOK.read_text(encoding="utf-8")
    names = {(m["kind"], m["metadata"]["name"]) for m in rendered()}
    wanted: set[tuple[str, str]] = set()
    for name, ns in re.findall(r"deployment/([\w-]+) -n (\w+)", text):
        assert ns == NAMESPACE
        wanted.add(("Deployment", name))
    for kind, name in re.findall(r"kubectl patch (configmap|secret) ([\w-]+)", text):
        wanted.add(({"configmap": "ConfigMap", "secret": "Secret"}[kind], name))
    for host in re.findall(r"redis-cli -h ([\w-]+)", text):
        wanted.add(("Service", host))
    for host, _port in re.findall(r"http://([\w-]+):(\d+)/", text):
        wanted.add(("Service", host))
    # The vLLM engine is the user's own workload, not part of RouteGuard's manifests.
    wanted = {(kind, name) for kind, name in wanted if not name.startswith("vllm")}
    # provider-api-keys holds real keys: the user creates it (docs/deploy.md); the pods mount it.
    secrets = {
        source["secret"]["name"]
        for source in _config_volume()["projected"]["sources"]
        if "secret" in source
    }
    assert ("Secret", "provider-api-keys") in wanted
    assert "provider-api-keys" in secrets
    wanted.discard(("Secret", "provider-api-keys"))
    assert wanted
    assert wanted <= names, sorted(wanted - names)

    for label, ns in re.findall(r"-l app=([\w-]+) -n (\w+)", text):
        assert ns == NAMESPACE
        if not label.startswith("vllm"):
            assert (
                obj("Deployment", label)["spec"]["template"]["metadata"]["labels"]["app"] == label
            )
    for port in re.findall(r"http://litellm-router:(\d+)/", text):
        assert int(port) in {p["port"] for p in obj("Service", "litellm-router")["spec"]["ports"]}
    assert "litellm_router.yaml" in obj("ConfigMap", "litellm-config")["data"]
    for key in re.findall(r'"data":\{"(\w+)"', text):  # kubectl patch secret ... OPENAI_API_KEY
        assert key in {
            i["key"]
            for s in _config_volume()["projected"]["sources"]
            if "secret" in s
            for i in s["secret"]["items"]
        }


def _config_volume() -> dict[str, Any]:
    pod = obj("Deployment", "litellm-router")["spec"]["template"]["spec"]
    volume: dict[str, Any] = next(v for v in pod["volumes"] if v["name"] == "config")
    return volume


def _pod(kind: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = obj(kind, name)["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize(
    ("kind", "name"), [("Deployment", "litellm-router"), ("StatefulSet", "router-redis")]
)
def test_pods_are_locked_down(kind: str, name: str) -> None:
    pod = _pod(kind, name)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}
        assert re.search(r":\d+\.\d+\.\d+", container["image"]), "pin an exact image version"
        assert not any("subPath" in m for m in container.get("volumeMounts", [])), (
            "a subPath mount is never updated: hot reload and key rotation would stop"
        )


def test_router_fleet_shape() -> None:
    deployment = obj("Deployment", "litellm-router")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app": "litellm-router"}
    pod = _pod("Deployment", "litellm-router")
    spreads = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert spreads["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spreads["kubernetes.io/hostname"]["labelSelector"]["matchLabels"] == selector
    # Everything that selects the router pods selects them by that label.
    assert obj("Service", "litellm-router")["spec"]["selector"] == selector
    assert obj("PodDisruptionBudget", "litellm-router")["spec"]["minAvailable"] == 1
    assert (
        obj("PodDisruptionBudget", "litellm-router")["spec"]["selector"]["matchLabels"] == selector
    )
    assert obj("NetworkPolicy", "litellm-router")["spec"]["podSelector"]["matchLabels"] == selector
    hpa = obj("HorizontalPodAutoscaler", "litellm-router")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "litellm-router",
    }
    assert hpa["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]


def test_network_policy_admits_only_ingress_monitoring_and_operators() -> None:
    spec = obj("NetworkPolicy", "litellm-router")["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    sources = []
    for rule in spec["ingress"]:
        assert [p["port"] for p in rule["ports"]] == [8080]
        for peer in rule["from"]:
            assert "ipBlock" not in peer, "no address-based admission"
            sources.append(peer)
    namespaces = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for p in sources
        if "namespaceSelector" in p
    }
    assert namespaces == {"ingress-nginx", "monitoring"}
    assert {"routeguard.io/operator": "true"} in [
        p["podSelector"]["matchLabels"] for p in sources if "podSelector" in p
    ]
    redis = obj("NetworkPolicy", "router-redis")["spec"]
    peers = [
        peer["podSelector"]["matchLabels"] for rule in redis["ingress"] for peer in rule["from"]
    ]
    assert {"app": "litellm-router"} in peers


def test_redis_statefulset() -> None:
    redis = obj("StatefulSet", "router-redis")
    assert redis["spec"]["serviceName"] == "router-redis"
    claim = redis["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"]
    conf = obj("ConfigMap", "router-redis-config")["data"]["redis.conf"]
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert int(settings["maxclients"]) > 0
    assert int(settings["timeout"]) > 0
    assert obj("Service", "router-redis")["spec"]["clusterIP"] == "None"


def test_redis_conf_is_accepted_by_redis_server(tmp_path: Path) -> None:
    """redis-server itself accepts the shipped redis.conf: started with it on a free port, it
    reports the limits the runbook cares about through CONFIG GET."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server not found: install the Debian package redis-server"
    port = free_port()
    conf = obj("ConfigMap", "router-redis-config")["data"]["redis.conf"]
    conf = conf.replace("dir /data", f"dir {tmp_path}").replace("bind 0.0.0.0", "bind 127.0.0.1")
    conf = conf.replace("port 6379", f"port {port}")
    (tmp_path / "redis.conf").write_text(conf)
    process = subprocess.Popen(
        [binary, str(tmp_path / "redis.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert process.poll() is None, process.communicate()[0].decode()
                time.sleep(0.1)
        assert client.config_get("maxclients")["maxclients"] == "1024"
        assert client.config_get("timeout")["timeout"] == "300"
        client.close()
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_prometheus_rule_is_alerts_yml() -> None:
    rule = obj("PrometheusRule", "routeguard")
    source = yaml.safe_load(
        (REPO / "deploy" / "prometheus" / "alerts.yml").read_text(encoding="utf-8")
    )
    assert rule["spec"] == {"groups": source["groups"]}
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-prometheusrule"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_service_monitor_scrapes_as_the_runbook_job() -> None:
    monitor = obj("ServiceMonitor", "litellm-router")["spec"]
    service = obj("Service", "litellm-router")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    # job="litellm-router" is the contract of the runbook and alerts.yml.
    assert service["metadata"]["labels"][monitor["jobLabel"]] == "litellm-router"
    ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["endpoints"]:
        assert endpoint["port"] in ports
        assert endpoint["path"] == "/metrics"


# -- checkov ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov() -> Iterator[str]:
    given = os.environ.get("CHECKOV") or shutil.which("checkov")
    if given:
        yield given
        return
    venv = REPO / ".cache" / "checkov-venv"
    binary = venv / "bin" / "checkov"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "checkov>=3.2"], check=True, timeout=900
        )
    yield str(binary)


def test_checkov_finds_no_failed_check(checkov: str, tmp_path: Path) -> None:
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(yaml.safe_dump_all(list(rendered()), sort_keys=False))
    result = subprocess.run(
        [
            checkov,
            "-f",
            str(manifests),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    report = json.loads(result.stdout)
    failed = [
        (c["check_id"], c["resource"], c["check_name"]) for c in report["results"]["failed_checks"]
    ]
    assert failed == [], failed
    assert report["summary"]["passed"] > 100
    # Every exception is an annotation with a reason, on the object it exempts.
    for manifest in rendered():
        for key, value in manifest["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV_K8S_\d+", check), value
                assert len(reason) > 20, value


def test_kustomization_root_installs_the_example_overlay() -> None:
    root = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert root["resources"] == ["overlays/example"]
