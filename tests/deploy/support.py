"""What the deployment tests share: the rendered manifests, the kubelet's volume layout, ports.

``AtomicVolume`` writes a directory exactly as the kubelet's AtomicWriter does for ConfigMap,
Secret and projected volumes: the files live in a timestamped ``..2026_...`` directory,
``..data`` is a symlink to it, and each visible name (``router.yaml``, ``secrets``) is a symlink
through ``..data``. An update writes a new timestamped directory, points a temporary symlink at
it, renames that over ``..data`` (one atomic step) and deletes the old directory. A reload
that only notices in-place writes misses every update Kubernetes makes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import IO, Any

import httpx
import kustomize

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
DEADLINE_S = 30.0


@cache
def rendered() -> tuple[dict[str, Any], ...]:
    """``kubectl kustomize deploy/kubernetes``, rendered once per test session."""
    return tuple(kustomize.render(K8S))


def obj(kind: str, name: str) -> dict[str, Any]:
    return kustomize.find(list(rendered()), kind, name)


class AtomicVolume:
    """A directory the way the kubelet lays out and updates a mounted ConfigMap or Secret."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._generation = 0

    def write(self, files: Mapping[str, str]) -> None:
        """Publish ``files`` (relative path -> text) as the volume's whole new content."""
        self._generation += 1
        stamp = f"..2026_12_04_12_00_00.{self._generation:09d}"
        target = self.root / stamp
        for relative, text in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(stamp, tmp)
        os.rename(tmp, data)  # the atomic swap
        for top in {Path(relative).parts[0] for relative in files}:
            visible = self.root / top
            if not visible.is_symlink():
                os.symlink(f"..data/{top}", visible)
        if old is not None:
            _remove_tree(self.root / old)


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()


def projected_files(config_text: str, keys: Mapping[str, str]) -> dict[str, str]:
    """The files the router Deployment's projected volume holds, by their path in the volume."""
    volume = next(
        v
        for v in obj("Deployment", "litellm-router")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "config"
    )
    files: dict[str, str] = {}
    for source in volume["projected"]["sources"]:
        if "configMap" in source:
            for item in source["configMap"]["items"]:
                files[item["path"]] = config_text
        if "secret" in source:
            for item in source["secret"]["items"]:
                files[item["path"]] = keys[item["key"]]
    return files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_process(
    argv: list[str], port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server command until its /health answers; terminate (drain) it afterwards."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block it
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            wait_health(f"http://127.0.0.1:{port}", process, log)
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def wait_health(base_url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> httpx.Response:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-3000:]
            raise AssertionError(f"server exited {process.returncode}:\n{output}")
        with contextlib.suppress(httpx.TransportError):
            response = httpx.get(f"{base_url}/health", timeout=2)
            if response.status_code == 200:
                return response
        time.sleep(0.1)
    raise AssertionError(f"{base_url}/health not 200 within {DEADLINE_S}s")


PYTHON = sys.executable
