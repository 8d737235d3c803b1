"""HTTPS to providers, as every real provider is reached: verified TLS over a real handshake."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from routeguard.config.loader import parse_config
from routeguard.errors import ConfigError
from routeguard.simulator import Simulator

MESSAGES = [{"role": "user", "content": "Hello over TLS"}]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed (Debian package openssl)"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_simulator(loop_thread, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sim = Simulator(seed=3, ssl_context=context)
    loop_thread.run(sim.start())
    yield sim
    loop_thread.run(sim.stop())


def config(sim: Simulator, ca_file: Path | None) -> str:
    ca = f', tls_ca_file: "{ca_file}"' if ca_file else ""
    return (
        "routing: {num_retries: 0}\n"
        "deployments:\n"
        f'  secure: {{provider: openai, model: m, api_base: "{sim.url("secure")}", api_key: sk-x{ca}}}\n'
        f'  claude: {{provider: anthropic, model: c, api_base: "{sim.url("claude", "anthropic")}", api_key: ak{ca}}}\n'
        "weights:\n  g: {secure: 1}\n  c: {claude: 1}\n"
    )


def test_https_upstream_with_a_private_ca(tls_simulator, start_router, certificate):
    assert tls_simulator.base_url.startswith("https://")
    app = start_router(config(tls_simulator, certificate[0]))
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0)
    for _ in range(3):  # the kept-alive TLS connection is reused
        assert (
            client.chat.completions.create(model="g", messages=MESSAGES).choices[0].message.content
        )
    chunks = list(client.chat.completions.create(model="c", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert tls_simulator.stats()["secure"].requests == 3


def test_an_untrusted_certificate_is_refused(tls_simulator, start_router):
    app = start_router(config(tls_simulator, None))
    response = httpx.post(
        f"http://127.0.0.1:{app.port}/v1/chat/completions",
        json={"model": "g", "messages": MESSAGES},
    )
    assert response.status_code == 502
    assert "certificate verify failed" in response.json()["error"]["message"]
    assert tls_simulator.stats().get("secure") is None  # nothing was sent without trust


def test_missing_ca_file_is_a_config_error(tls_simulator, tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse_config(config(tls_simulator, tmp_path / "absent.pem"))
    assert caught.value.key == "deployments.secure.tls_ca_file"
