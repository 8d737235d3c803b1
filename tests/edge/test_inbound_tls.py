"""Inbound TLS (for deployments without an ingress), with the certificate reloaded on change."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest
from edge_config import router_yaml

from routeguard.config.loader import parse_config
from routeguard.errors import ConfigError


def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed (Debian package openssl)"
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
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
            f"/CN={name}",
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


def served_cert(port: int) -> str:
    return ssl.get_server_certificate(("127.0.0.1", port))


def test_tls_listener_serves_sdk_and_reloads_a_renewed_certificate(
    simulator, start_router, tmp_path
):
    first_cert, first_key = make_cert(tmp_path, "first")
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first_cert, live_cert)
    shutil.copy(first_key, live_key)
    server = f"  tls_cert_file: {live_cert}\n  tls_key_file: {live_key}\n"
    app = start_router(router_yaml(simulator, server=server))

    http = httpx.Client(verify=ssl.create_default_context(cafile=str(first_cert)))
    client = openai.OpenAI(
        base_url=f"https://127.0.0.1:{app.port}/v1", api_key="k", max_retries=0, http_client=http
    )
    reply = client.chat.completions.create(
        model="gpt-4-turbo", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    client.close()
    http.close()
    # Plain HTTP on the TLS port is not answered as if it were TLS.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{app.port}/health", timeout=5)

    second_cert, second_key = make_cert(tmp_path, "second")
    shutil.copy(second_key, live_key)
    shutil.copy(second_cert, live_cert)
    wanted = second_cert.read_text().strip()
    deadline = time.monotonic() + 15
    started = time.monotonic()
    while time.monotonic() < deadline and served_cert(app.port).strip() != wanted:
        time.sleep(0.2)
    assert served_cert(app.port).strip() == wanted
    print(f"renewed certificate served after {time.monotonic() - started:.1f} s")
    renewed = httpx.get(
        f"https://127.0.0.1:{app.port}/health",
        verify=ssl.create_default_context(cafile=str(second_cert)),
    )
    assert renewed.status_code == 200


def test_tls_config_needs_both_files(tmp_path):
    cert, _key = make_cert(tmp_path, "only")
    with pytest.raises(ConfigError) as caught:
        parse_config(f"server:\n  tls_cert_file: {cert}\n", "router.yaml")
    assert "server" in str(caught.value)
    assert "tls_key_file" in str(caught.value)
