"""Render the kustomize subset ``deploy/kubernetes`` uses, without ``kubectl``.

CI has no ``kubectl``/``kustomize``, and the manifests must still be validated as Kubernetes
would receive them. This renders exactly the features the layout uses and refuses any other
key, so a kustomization that grows a feature this loader does not implement fails the tests
instead of being silently half-rendered:

- ``resources`` (files, and directories holding a kustomization), ``components``
- ``namespace`` (on every namespaced object)
- ``labels`` with ``includeSelectors: false`` (metadata labels only, as kustomize does)
- ``images`` (``newName``/``newTag``/``digest``) and ``replicas``

Objects come out in file order, not kustomize's kind order; callers look them up by kind and
name.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

SUPPORTED_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "namespace",
    "labels",
    "images",
    "replicas",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not implement, or is broken."""


def render(directory: Path) -> list[Manifest]:
    """All objects ``kubectl apply -k directory`` would send, transformed."""
    return _build(directory.resolve(), component=False)


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    if len(matches) != 1:
        raise KeyError(f"{kind}/{name}: {len(matches)} objects rendered")
    return matches[0]


def load_documents(path: Path) -> list[Manifest]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise KustomizeError(f"{path}: not a Kubernetes object: {str(doc)[:80]}")
    return docs


def _kustomization(directory: Path) -> Manifest:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(spec) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{path}: unsupported keys {sorted(unknown)}")
    return spec


def _build(directory: Path, *, component: bool) -> list[Manifest]:
    spec = _kustomization(directory)
    expected_kind = "Component" if component else "Kustomization"
    if spec.get("kind") != expected_kind:
        raise KustomizeError(f"{directory}: kind {spec.get('kind')!r}, expected {expected_kind}")
    objects: list[Manifest] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            objects.extend(_build(target, component=False))
        elif target.is_file():
            objects.extend(load_documents(target))
        else:
            raise KustomizeError(f"{directory}: resource {entry} does not exist")
    for entry in spec.get("components", []):
        objects.extend(_build((directory / entry).resolve(), component=True))
    objects = [copy.deepcopy(obj) for obj in objects]
    _check_unique(objects, directory)
    for rule in spec.get("labels", []):
        _apply_labels(objects, rule, directory)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        _apply_image(objects, image)
    for replicas in spec.get("replicas", []):
        _apply_replicas(objects, replicas, directory)
    return objects


def _check_unique(objects: list[Manifest], directory: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in seen:
            raise KustomizeError(f"{directory}: {key[0]}/{key[1]} defined twice")
        seen.add(key)


def _apply_labels(objects: list[Manifest], rule: Manifest, directory: Path) -> None:
    if rule.get("includeSelectors", False) or rule.get("includeTemplates", False):
        raise KustomizeError(f"{directory}: labels with selectors/templates are not implemented")
    for obj in objects:
        obj["metadata"].setdefault("labels", {}).update(rule["pairs"])


def _containers(obj: Manifest) -> list[Manifest]:
    if obj["kind"] not in WORKLOADS:
        return []
    pod = obj["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def _apply_image(objects: list[Manifest], image: Manifest) -> None:
    for obj in objects:
        for container in _containers(obj):
            ref: str = container["image"]
            name = (
                ref.split("@", maxsplit=1)[0].rsplit(":", 1)[0] if "/" in ref or ":" in ref else ref
            )
            if name != image["name"]:
                continue
            new = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{new}:{image['newTag']}"
            else:
                container["image"] = new + ref[len(name) :]


def _apply_replicas(objects: list[Manifest], replicas: Manifest, directory: Path) -> None:
    hits = [
        o for o in objects if o["kind"] in WORKLOADS and o["metadata"]["name"] == replicas["name"]
    ]
    if not hits:
        raise KustomizeError(f"{directory}: replicas names no workload {replicas['name']}")
    for obj in hits:
        obj["spec"]["replicas"] = replicas["count"]
