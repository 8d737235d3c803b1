"""The ``routeguard`` command as a user runs it: real processes, real sockets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import openai
from processes import ROUTEGUARD, free_port, routeguard, simulator_process


def test_check_config_accepts_the_example():
    example = Path(__file__).parents[2] / "src/routeguard/examples/router.yaml"
    env = {**os.environ, "OPENAI_API_KEY": "sk-x", "AZURE_API_KEY": "a", "ANTHROPIC_API_KEY": "b"}
    result = subprocess.run(
        [*ROUTEGUARD, "check-config", str(example)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "gpt-4-turbo" in result.stdout


def test_bad_config_stops_serve_with_one_clear_line(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        "deployments:\n  a: {provider: openai, model: m, api_key: 'sk-live-SECRET'}\n"
        "weights:\n  g: {a: 1, b: 2}\n"
    )
    result = subprocess.run(
        [*ROUTEGUARD, "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{path}: weights.g.b: names no deployment defined under deployments" in result.stderr
    assert "SECRET" not in result.stderr + result.stdout


def test_serve_and_simulate_processes_then_sigterm(tmp_path):
    router_port = free_port()
    with simulator_process() as sim_port:
        path = tmp_path / "router.yaml"
        path.write_text(
            f'deployments:\n  local: {{provider: vllm, model: llama, api_base: "http://127.0.0.1:{sim_port}/local/v1"}}\n'
            "weights:\n  llama-3.1-8b-instruct: {local: 100}\n"
        )
        serve = ("serve", "--config", str(path), "--port", str(router_port))
        with routeguard(*serve, port=router_port) as router:
            client = openai.OpenAI(
                base_url=f"http://127.0.0.1:{router_port}/v1", api_key="x", max_retries=0
            )
            reply = client.chat.completions.create(
                model="llama-3.1-8b-instruct", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content
            router.send_signal(signal.SIGTERM)
            assert router.wait(timeout=30) == 0


def test_demo_outage_is_absorbed_and_recovers():
    result = subprocess.run(
        [
            *ROUTEGUARD,
            "demo",
            "--duration",
            "14",
            "--rate",
            "25",
            "--seed",
            "1",
            "--outage",
            "azure-gpt4-turbo",
            "--outage-at",
            "2",
            "--outage-for",
            "5",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("openai-gpt4-turbo", "azure-gpt4-turbo", "anthropic-claude"):
        assert name in out
    assert "client-visible errors: 0" in out
    assert "outage of azure-gpt4-turbo: breaker opened" in out
    assert "circuit_breaker" not in result.stderr  # log lines would tear the live view apart
    assert "recovery: breaker closed" in out
    # The summary says why "actual" drifted from "target" (rich may wrap the line).
    summary = " ".join(out.split())
    assert "actual share differs from target because azure-gpt4-turbo was out" in summary
    assert "(target 60/30/10%" in summary


def test_demo_rejects_unknown_outage_deployment():
    result = subprocess.run(
        [*ROUTEGUARD, "demo", "--outage", "nope", "--duration", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--outage must name a demo deployment" in result.stderr


def test_serve_logs_json_lines_without_secrets(tmp_path):
    router_port = free_port()
    with simulator_process() as sim_port:
        path = tmp_path / "router.yaml"
        path.write_text(
            "routing: {num_retries: 1, retry_backoff_s: 0}\n"
            "admin:\n  tokens: {oncall: admin-token-SECRET}\n"
            "deployments:\n"
            f'  good: {{provider: openai, model: m, api_base: "http://127.0.0.1:{sim_port}/good/v1", api_key: sk-upstream-SECRET}}\n'
            f'  bad: {{provider: openai, model: m, api_base: "http://127.0.0.1:{sim_port}/bad/v1", api_key: sk-upstream-SECRET}}\n'
            "weights:\n  g: {good: 1, bad: 1}\n"
        )
        serve = ("serve", "--config", str(path), "--port", str(router_port), "--log-format", "json")
        with routeguard(*serve, port=router_port, stderr=subprocess.PIPE) as router:
            httpx.put(
                f"http://127.0.0.1:{sim_port}/_sim/faults/bad",
                json={"error_rate": 1.0, "error_status": 401},
            )
            for i in range(6):
                response = httpx.post(
                    f"http://127.0.0.1:{router_port}/v1/chat/completions",
                    json={
                        "model": "g",
                        "messages": [{"role": "user", "content": "top secret prompt"}],
                    },
                    headers={"x-request-id": f"req-{i}"},
                )
                assert response.status_code == 200
            httpx.get(
                f"http://127.0.0.1:{router_port}/admin/deployments",
                headers={"authorization": "Bearer wrong-token"},
            )
            router.send_signal(signal.SIGTERM)
            _, stderr = router.communicate(timeout=30)
    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    requests = [r for r in records if r["event"] == "request"]
    assert {r["request_id"] for r in requests} == {f"req-{i}" for i in range(6)}
    assert all(r["status"] == 200 and r["model_group"] == "g" for r in requests)
    opened = [r for r in records if r["event"] == "circuit_breaker_open"]
    assert opened
    assert opened[0]["deployment"] == "bad"
    assert opened[0]["level"] == "WARNING"
    # The runbook's grep finds the breaker line.
    assert any(re.search(r"(ERROR|CRITICAL|circuit_breaker)", line) for line in lines)
    for secret in ("SECRET", "top secret prompt", "wrong-token"):
        assert secret not in stderr


def test_sighup_reloads_and_a_bad_file_keeps_the_old_config(tmp_path):
    router_port = free_port()
    path = tmp_path / "router.yaml"

    def write(weights: str) -> None:
        path.write_text(
            "server: {watch_config_s: 0}\n"  # only the signal may reload here
            "deployments:\n"
            f'  a: {{provider: vllm, model: m, api_base: "http://127.0.0.1:{sim_port}/a/v1"}}\n'
            f'  b: {{provider: vllm, model: m, api_base: "http://127.0.0.1:{sim_port}/b/v1"}}\n'
            f"weights:\n  g: {weights}\n"
        )

    def served_by() -> str:
        response = httpx.post(
            f"http://127.0.0.1:{router_port}/v1/chat/completions",
            json={"model": "g", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200
        return response.headers["x-routeguard-deployment"]

    with simulator_process() as sim_port:
        write("{a: 1, b: 0}")
        serve = ("serve", "--config", str(path), "--port", str(router_port))
        with routeguard(*serve, port=router_port, stderr=subprocess.PIPE) as router:
            assert served_by() == "a"
            write("{a: 0, b: 1}")
            router.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while served_by() != "b" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert served_by() == "b"
            write("{a: 0, b: 1, ghost: 5}")
            router.send_signal(signal.SIGHUP)
            time.sleep(0.5)  # give a (wrong) reload the chance to happen; the check is not timed
            assert {served_by() for _ in range(5)} == {"b"}
            router.send_signal(signal.SIGTERM)
            _, stderr = router.communicate(timeout=30)
    assert router.returncode == 0
    assert "weights.g.ghost: names no deployment" in stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.strip()]
    assert events.count("config reloaded") == 1
    assert any(event.startswith("config reload rejected") for event in events)
