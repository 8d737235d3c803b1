"""Access and decisions logs survive logrotate (rename, then SIGHUP or nothing): no line lost.

A real ``routeguard serve`` process writes the files; the test renames them as logrotate's
default ``create`` mode does, and every request id must appear exactly once across the rotated
and the new file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from rawhttp import free_port, wait_for_port

from routeguard.simulator import Simulator

ADMIN = "rotation-admin-token"


def start_router(sim: Simulator, folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = folder / "router.yaml"
    config.write_text(
        "server:\n  host: 127.0.0.1\n"
        f"  access_log_file: {folder / 'access.log'}\n"
        f"admin:\n  tokens: {{ops: {ADMIN}}}\n  audit_log: {folder / 'DECISIONS.log'}\n"
        f"deployments:\n  sim-a: {{provider: openai, model: m, api_base: '{sim.url('sim-a')}', api_key: sk-x}}\n"
        f"  sim-b: {{provider: openai, model: m, api_base: '{sim.url('sim-b')}', api_key: sk-y}}\n"
        "weights:\n  gpt-4-turbo: {sim-a: 1, sim-b: 1}\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "routeguard.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process, port


def send(client: httpx.Client, ids: list[str], count: int, tag: str) -> None:
    for i in range(count):
        request_id = f"{tag}-{i:04d}"
        response = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4-turbo", "messages": [{"role": "user", "content": "rotate"}]},
            headers={"x-request-id": request_id},
        )
        assert response.status_code == 200
        ids.append(request_id)


def audit(client: httpx.Client, weight: int) -> None:
    response = client.put(
        "/admin/weights",
        json={"gpt-4-turbo": {"sim-a": weight}},
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 200


def logged_ids(*files: Path) -> list[str]:
    out = []
    for path in files:
        if path.exists():
            out.extend(json.loads(line)["request_id"] for line in path.read_text().splitlines())
    return out


def wait_for(predicate, deadline_s: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)


@pytest.mark.parametrize("signal_after_rotate", [True, False], ids=["sighup", "identity-check"])
def test_rotation_by_rename_loses_no_line(simulator, tmp_path, signal_after_rotate):
    process, port = start_router(simulator, tmp_path)
    access, rotated = tmp_path / "access.log", tmp_path / "access.log.1"
    decisions, decisions_rotated = tmp_path / "DECISIONS.log", tmp_path / "DECISIONS.log.1"
    ids: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            send(client, ids, 40, "before")
            audit(client, 1)
            wait_for(lambda: len(logged_ids(access)) == 40)
            access.rename(rotated)
            decisions.rename(decisions_rotated)
            if signal_after_rotate:
                process.send_signal(signal.SIGHUP)
            send(client, ids, 20, "during")
            time.sleep(1.2)  # past the identity check's interval
            send(client, ids, 40, "after")
            audit(client, 2)
            wait_for(lambda: sorted(logged_ids(rotated, access)) == sorted(ids))
        assert sorted(logged_ids(rotated, access)) == sorted(ids)  # every line, exactly once
        assert access.exists()
        new_ids = logged_ids(access)
        assert any(i.startswith("after") for i in new_ids)  # the new file is in use
        assert not any(i.startswith("before") for i in new_ids)
        assert "WEIGHTS=sim-a=1" in decisions_rotated.read_text()
        assert "WEIGHTS=sim-a=2" in decisions.read_text()
        assert "sim-a=2" not in decisions_rotated.read_text()
    finally:
        process.terminate()
        process.wait(30)
