"""Client API keys over real sockets with both official SDKs: auth, models, limits, budget, revocation."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest
from edge_config import router_yaml

from routeguard.clients.keys import hash_key, key_id, new_key
from routeguard.config.loader import load_config
from routeguard.observability.access import AccessLog
from routeguard.server.app import RouteGuardApp
from routeguard.simulator import FaultSpec

MESSAGES = [{"role": "user", "content": "hello there"}]
ADMIN = "admin-token-for-tests"


class Keys:
    def __init__(self) -> None:
        self.open, self.narrow, self.rpm, self.tpm, self.budget, self.parallel = (
            new_key() for _ in range(6)
        )


@pytest.fixture
def keys() -> Keys:
    return Keys()


def clients_yaml(keys: Keys, tmp_path) -> str:
    hash_file = tmp_path / "parallel-key-hash"
    hash_file.write_text(hash_key(keys.parallel) + "\n")
    return (
        f"admin:\n  tokens: {{ops: {ADMIN}}}\n  audit_log: {tmp_path / 'DECISIONS.log'}\n"
        "clients:\n  keys:\n"
        f"    open: {{key_hash: '{hash_key(keys.open)}', metadata: {{team: platform}}}}\n"
        f"    narrow: {{key_hash: '{hash_key(keys.narrow)}', models: [other-group]}}\n"
        f"    rpm: {{key_hash: '{hash_key(keys.rpm)}', rpm: 3}}\n"
        f"    tpm: {{key_hash: '{hash_key(keys.tpm)}', tpm: 10}}\n"
        f"    budget: {{key_hash: '{hash_key(keys.budget)}', budget_usd: 0.01, budget_period: day}}\n"
        f"    parallel: {{key_hash_file: '{hash_file}', max_parallel: 1}}\n"
    )


@pytest.fixture
def keyed_router(simulator, start_router, keys, tmp_path):
    return start_router(router_yaml(simulator, extra=clients_yaml(keys, tmp_path)))


_OPEN_CLIENTS: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_sdk_clients():
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def oa(app, key: str) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{app.port}/v1", api_key=key, max_retries=0)
    _OPEN_CLIENTS.append(client)
    return client


def ant(app, key: str) -> anthropic.Anthropic:
    client = anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{app.port}", api_key=key, max_retries=0
    )
    _OPEN_CLIENTS.append(client)
    return client


def admin_usage(app, name: str) -> dict:
    return httpx.get(
        f"http://127.0.0.1:{app.port}/admin/keys/usage?key_id={name}",
        headers={"authorization": f"Bearer {ADMIN}"},
    ).json()


def chat(app, key: str, model: str = "gpt-4-turbo", **kwargs):
    return oa(app, key).chat.completions.create(model=model, messages=MESSAGES, **kwargs)


def test_no_key_or_a_wrong_key_is_401_and_nothing_reaches_a_provider(simulator, keyed_router):
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(keyed_router, "rg-not-a-real-key")
    assert caught.value.code == "invalid_api_key"
    response = httpx.post(
        f"http://127.0.0.1:{keyed_router.port}/v1/chat/completions",
        json={"model": "gpt-4-turbo", "messages": MESSAGES},
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert simulator.stats().get("sim-a") is None
    # Admin tokens are not client keys, and client keys are not admin tokens.
    with pytest.raises(openai.AuthenticationError):
        chat(keyed_router, ADMIN)


def test_openai_sdk_bearer_and_anthropic_sdk_x_api_key_both_work(keyed_router, keys):
    assert chat(keyed_router, keys.open).choices[0].message.content
    models = ant(keyed_router, keys.narrow).models.list()
    assert [m.id for m in models.data] == ["other-group"]  # a key sees only its groups
    with pytest.raises(anthropic.AuthenticationError):
        ant(keyed_router, "rg-wrong").models.list()
    # The Anthropic Messages API, as the anthropic SDK calls it, authenticated by x-api-key.
    message = ant(keyed_router, keys.open).messages.create(
        model="gpt-4-turbo", max_tokens=64, messages=MESSAGES
    )
    assert message.content[0].text
    with pytest.raises(anthropic.AuthenticationError):
        ant(keyed_router, "rg-wrong").messages.create(
            model="gpt-4-turbo", max_tokens=64, messages=MESSAGES
        )
    with pytest.raises(anthropic.PermissionDeniedError):
        ant(keyed_router, keys.narrow).messages.create(
            model="gpt-4-turbo", max_tokens=64, messages=MESSAGES
        )


def test_model_groups_outside_the_allowed_list_are_403(keyed_router, keys):
    assert chat(keyed_router, keys.narrow, model="other-group").choices
    with pytest.raises(openai.PermissionDeniedError) as caught:
        chat(keyed_router, keys.narrow, model="gpt-4-turbo")
    assert caught.value.code == "model_not_allowed"
    with pytest.raises(openai.PermissionDeniedError):
        oa(keyed_router, keys.narrow).embeddings.create(model="gpt-4-turbo", input="x")


def test_rpm_limit_is_429_with_retry_after(keyed_router, keys):
    for _ in range(3):
        chat(keyed_router, keys.rpm)
    with pytest.raises(openai.RateLimitError) as caught:
        chat(keyed_router, keys.rpm)
    assert caught.value.code == "rate_limit_exceeded"
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60
    assert chat(keyed_router, keys.open).choices  # other keys are not affected


def test_tpm_limit_counts_the_tokens_used(keyed_router, keys):
    chat(keyed_router, keys.tpm)  # 2 prompt + 12 completion tokens: over the 10 tpm
    with pytest.raises(openai.RateLimitError) as caught:
        chat(keyed_router, keys.tpm)
    assert "tokens per minute" in caught.value.message


def test_budget_uses_deployment_prices_and_refuses_with_insufficient_quota(keyed_router, keys):
    chat(keyed_router, keys.budget)  # 2 x $0.001 + 12 x $0.002 = $0.026 > $0.01
    with pytest.raises(openai.RateLimitError) as caught:
        chat(keyed_router, keys.budget)
    assert caught.value.code == "insufficient_quota"
    assert "budget of $0.01 per day" in caught.value.message
    assert int(caught.value.response.headers["retry-after"]) <= 86400
    usage = admin_usage(keyed_router, "budget")
    assert usage["budget"]["spent_usd"] == pytest.approx(0.026)
    assert usage["budget"]["remaining_usd"] == 0


def test_streamed_spend_is_counted_when_the_stream_reports_usage(keyed_router, keys):
    stream = chat(keyed_router, keys.budget, stream=True, stream_options={"include_usage": True})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    # A stream is accounted as the router closes it, a moment after the client saw its end.
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and admin_usage(keyed_router, "budget")["budget"]["spent_usd"] == 0
    ):
        time.sleep(0.02)
    assert admin_usage(keyed_router, "budget")["budget"]["spent_usd"] == pytest.approx(0.026)
    with pytest.raises(openai.RateLimitError):
        chat(keyed_router, keys.budget)


def test_max_parallel_from_a_hash_file(simulator, keyed_router, keys):
    simulator.set_fault("sim-a", FaultSpec(chunk_delay_ms=300))
    stream = chat(keyed_router, keys.parallel, stream=True)
    next(iter(stream))  # the first request holds its slot while it streams
    with pytest.raises(openai.RateLimitError) as caught:
        chat(keyed_router, keys.parallel)
    assert "requests in progress" in caught.value.message
    stream.close()
    simulator.clear_faults()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            chat(keyed_router, keys.parallel)
            break
        except openai.RateLimitError:
            time.sleep(0.05)  # the stream's slot frees once the router sees the close
    else:
        pytest.fail("the parallel slot never freed")


def test_revocation_takes_effect_at_once_and_is_audited(keyed_router, keys, tmp_path):
    assert chat(keyed_router, keys.open).choices
    kid = key_id(hash_key(keys.open))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "routeguard.cli",
            "keys",
            "revoke",
            kid,
            "--router",
            f"http://127.0.0.1:{keyed_router.port}",
            "--token",
            ADMIN,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"revoked {kid} (open)" in result.stdout
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(keyed_router, keys.open)
    assert caught.value.code == "key_revoked"
    audit = (tmp_path / "DECISIONS.log").read_text()
    assert "revoke_client_key" in audit
    assert kid in audit
    assert "OPERATOR=ops" in audit or "ops" in audit
    listing = subprocess.run(
        [
            sys.executable,
            "-m",
            "routeguard.cli",
            "keys",
            "list",
            "--json",
            "--router",
            f"http://127.0.0.1:{keyed_router.port}",
            "--token",
            ADMIN,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    assert '"revoked": true' in listing.stdout
    assert keys.open not in listing.stdout
    assert hash_key(keys.open) not in listing.stdout


def test_admin_keys_needs_an_admin_token_not_a_client_key(keyed_router, keys):
    response = httpx.get(
        f"http://127.0.0.1:{keyed_router.port}/admin/keys",
        headers={"authorization": f"Bearer {keys.open}"},
    )
    assert response.status_code == 401


def test_keys_never_appear_in_logs_or_metrics(simulator, start_router, keys, tmp_path, caplog):
    stream = io.StringIO()
    config = router_yaml(simulator, extra=clients_yaml(keys, tmp_path))
    app = start_router(config)
    app.access_log = AccessLog("json", stream)
    app.reporter.access = app.access_log
    caplog.set_level(logging.DEBUG)
    chat(app, keys.open)
    with pytest.raises(openai.AuthenticationError):
        chat(app, keys.open + "x")
    with pytest.raises(openai.PermissionDeniedError):
        chat(app, keys.narrow)
    app.access_log.flush()
    metrics = httpx.get(f"http://127.0.0.1:{app.port}/metrics").text
    logs = stream.getvalue() + caplog.text
    kid = key_id(hash_key(keys.open))
    assert f'routeguard_client_key_requests_total{{key_id="{kid}"}} 1.0' in metrics
    assert f'"key_id":"{kid}"' in stream.getvalue()
    for secret in (keys.open, keys.narrow, hash_key(keys.open).removeprefix("sha256:")):
        assert secret not in metrics
        assert secret not in logs


def test_a_rotated_key_hash_file_takes_effect_without_a_restart(loop_thread, simulator, tmp_path):
    old_key, new_key_ = new_key(), new_key()
    hash_file = tmp_path / "key-hash"
    hash_file.write_text(hash_key(old_key))
    config = tmp_path / "router.yaml"
    config.write_text(
        router_yaml(simulator, server="  watch_config_s: 0.2\n")
        + f"clients:\n  keys:\n    rotating: {{key_hash_file: '{hash_file}'}}\n"
    )
    app = RouteGuardApp(load_config(config), config_path=config)
    loop_thread.run(app.start("127.0.0.1", 0))
    try:
        assert chat(app, old_key).choices
        hash_file.write_text(hash_key(new_key_))  # the Secret is updated
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                chat(app, new_key_)
                break
            except openai.AuthenticationError:
                time.sleep(0.1)
        assert chat(app, new_key_).choices
        with pytest.raises(openai.AuthenticationError):
            chat(app, old_key)
    finally:
        loop_thread.run(app.close(drain_timeout_s=1))
