"""A ConfigMap or Secret update, as the kubelet makes it, reaches a running router without a
restart.

The kubelet never edits ``router.yaml`` in place: it writes a new timestamped directory and
swaps the ``..data`` symlink (``support.AtomicVolume`` does exactly that). A real ``routeguard
serve`` process reads its config through that layout, the layout of the Deployment's projected
volume (config and provider keys in one volume), with ``server.watch_config_s`` small; the
tests swap ``..data`` and prove over HTTP, with the official SDK, that the new content serves.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support import PYTHON, AtomicVolume, free_port, projected_files, serve_process

from routeguard.simulator import Simulator

DEADLINE_S = 15.0
GROUP, NEW_GROUP = "gpt-4-turbo", "gpt-4o"
KEYS = {"OPENAI_API_KEY": "sk-old", "AZURE_API_KEY": "az-1", "ANTHROPIC_API_KEY": "sk-ant-1"}
MESSAGES = [{"role": "user", "content": "ping"}]


@pytest.fixture
def keyed_simulator(loop_thread) -> Iterator[Simulator]:  # type: ignore[no-untyped-def]
    """A simulator that accepts only the rotated OpenAI key (and the other providers' keys)."""
    sim = Simulator(seed=5, api_keys=["sk-new", "az-1", "sk-ant-1"])
    loop_thread.run(sim.start())
    yield sim
    loop_thread.run(sim.stop())


def config(
    sim: Simulator, port: int, volume: Path, *, new_group: bool = False, cooldown_s: float = 60
) -> str:
    secrets = volume / "secrets"
    text = (
        f"server: {{host: 127.0.0.1, port: {port}, watch_config_s: 0.2, access_log: false}}\n"
        f"routing: {{num_retries: 0, cooldown_s: {cooldown_s}}}\n"
        "deployments:\n"
        f'  openai-gpt4-turbo: {{provider: openai, model: gpt-4-turbo, api_base: "{sim.url("openai-gpt4-turbo")}", '
        f"api_key_file: {secrets / 'OPENAI_API_KEY'}}}\n"
        f'  anthropic-claude-3-opus: {{provider: anthropic, model: claude-3-opus, api_base: "{sim.url("anthropic-claude-3-opus", "anthropic")}", '
        f"api_key_file: {secrets / 'ANTHROPIC_API_KEY'}}}\n"
        "weights:\n"
        f"  {GROUP}: {{openai-gpt4-turbo: 1}}\n"
    )
    if new_group:
        text += f"  {NEW_GROUP}: {{anthropic-claude-3-opus: 1}}\n"
    return text


def chat(port: int, model: str) -> str:
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="client", max_retries=0
    ) as client:
        reply = client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        return reply.choices[0].message.content or ""


def eventually(check: Callable[[], bool], what: str) -> float:
    """Poll ``check`` until true; return how long it took (for the report)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < DEADLINE_S, f"{what}: not within {DEADLINE_S}s"
        time.sleep(0.05)
    return time.monotonic() - start


def succeeds(port: int, model: str) -> bool:
    try:
        return bool(chat(port, model))
    except openai.APIError:
        return False


def test_configmap_symlink_swap_is_reloaded(keyed_simulator: Simulator, tmp_path: Path) -> None:
    sim, port, volume = keyed_simulator, free_port(), AtomicVolume(tmp_path / "etc-routeguard")
    keys = {**KEYS, "OPENAI_API_KEY": "sk-new"}
    volume.write(projected_files(config(sim, port, volume.root), keys))
    first_dir = (volume.root / "..data").readlink()
    router_yaml = volume.root / "router.yaml"
    assert router_yaml.is_symlink()
    assert router_yaml.readlink() == Path("..data/router.yaml")
    argv = [PYTHON, "-m", "routeguard.cli", "serve", "--config", str(router_yaml)]
    with serve_process(argv, port):
        assert chat(port, GROUP)
        with pytest.raises(openai.NotFoundError):
            chat(port, NEW_GROUP)
        before = httpx.get(f"http://127.0.0.1:{port}/health").json()["config_version"]

        volume.write(projected_files(config(sim, port, volume.root, new_group=True), keys))

        assert not (volume.root / first_dir).exists()  # the old generation is gone, as in k8s
        took = eventually(lambda: succeeds(port, NEW_GROUP), "new model group served")
        print(f"ConfigMap swap served after {took:.2f}s")
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health["config_version"] != before
        assert set(health["model_groups"]) == {GROUP, NEW_GROUP}
        assert chat(port, GROUP)


def test_secret_rotation_needs_no_restart(keyed_simulator: Simulator, tmp_path: Path) -> None:
    """Runbook scenario 2: `kubectl patch secret provider-api-keys` with the new key, and the
    same process starts using it (the runbook's `rollout restart` becomes unnecessary).

    The 401s before the rotation open the deployment's breaker ("auth failure"); the reload that
    sees a changed key closes it, so the new key is used at once, long before the cooldown
    (kept at its production 60 s here)."""
    sim, port, volume = keyed_simulator, free_port(), AtomicVolume(tmp_path / "etc-routeguard")
    volume.write(projected_files(config(sim, port, volume.root), KEYS))
    argv = [PYTHON, "-m", "routeguard.cli", "serve", "--config", str(volume.root / "router.yaml")]
    with serve_process(argv, port) as process:
        with pytest.raises(openai.AuthenticationError):
            chat(port, GROUP)  # the simulator no longer accepts sk-old

        rotated = {**KEYS, "OPENAI_API_KEY": "sk-new"}
        volume.write(projected_files(config(sim, port, volume.root), rotated))

        took = eventually(lambda: succeeds(port, GROUP), "rotated key used")
        print(f"Secret rotation used after {took:.2f}s")
        assert process.poll() is None  # same process: no restart


def test_bad_configmap_is_refused_and_old_config_serves(
    keyed_simulator: Simulator, tmp_path: Path
) -> None:
    sim, port, volume = keyed_simulator, free_port(), AtomicVolume(tmp_path / "etc-routeguard")
    keys = {**KEYS, "OPENAI_API_KEY": "sk-new"}
    good = config(sim, port, volume.root)
    volume.write(projected_files(good, keys))
    argv = [PYTHON, "-m", "routeguard.cli", "serve", "--config", str(volume.root / "router.yaml")]
    with serve_process(argv, port):
        bad = good.replace("weights:\n", "weights:\n  broken: {no-such-deployment: 1}\n")
        volume.write(projected_files(bad, keys))

        def refused() -> bool:
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            match = re.search(r'router_config_reloads_total\{result="failure"\} (\S+)', metrics)
            return match is not None and float(match.group(1)) >= 1

        eventually(refused, "bad config counted as a failed reload")
        assert chat(port, GROUP)
        assert "broken" not in httpx.get(f"http://127.0.0.1:{port}/health").json()["model_groups"]
