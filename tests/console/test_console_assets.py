"""The console's files as the router serves them: from package data, typed, cached, locked down."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib import resources
from pathlib import Path

import httpx
import pytest

from routeguard.server.console import CONTENT_SECURITY_POLICY, ConsoleRoutes, load_assets

YAML = """
admin:
  tokens:
    oncall: "rg-console-token-SECRET"
deployments:
  dep-a: {{provider: openai, model: m, api_base: "{url}", api_key: sk-x}}
weights:
  gpt-4-turbo: {{dep-a: 1}}
"""


@pytest.fixture
def base(start_router, simulator) -> str:
    app = start_router(YAML.format(url=simulator.url("dep-a")))
    return f"http://127.0.0.1:{app.port}"


def test_every_shipped_file_is_served_with_its_type(base):
    assets = load_assets()
    on_disk = {path.name for path in (resources.files("routeguard") / "console" / "js").iterdir()}
    assert {url.rsplit("/", 1)[-1] for url in assets if "/js/" in url} == on_disk
    expected = {
        ".html": "text/html",
        ".js": "text/javascript",
        ".css": "text/css",
        ".svg": "image/svg+xml",
    }
    for url in assets:
        response = httpx.get(base + url)
        assert response.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        assert response.headers["content-type"].startswith(expected[suffix]), url
        assert response.content == assets[url].body


def test_page_is_served_without_a_token_but_holds_no_data(base):
    response = httpx.get(base + "/console")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert httpx.get(base + "/console/").content == response.content
    # The page carries no data: everything comes from admin calls, which need the token.
    assert "dep-a" not in response.text
    assert httpx.get(base + "/admin/deployments").status_code == 401
    assert httpx.get(base + "/admin/weights").status_code == 401


def test_strict_content_security_policy_and_no_inline_script(base):
    response = httpx.get(base + "/console")
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    # Every script is an external module from this origin; no inline handlers or styles.
    assert re.findall(r"<script[^>]*>", html) == [
        '<script type="module" src="/console/js/main.js">'
    ]
    assert not re.search(r"\son[a-z]+=", html)
    assert "style=" not in html
    assert "http://" not in html  # no CDN, no external origin
    assert "https://" not in html


def test_assets_revalidate_with_etag(base):
    first = httpx.get(base + "/console/js/main.js")
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = httpx.get(base + "/console/js/main.js", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    changed = httpx.get(base + "/console/js/main.js", headers={"if-none-match": '"other"'})
    assert changed.status_code == 200


def test_unknown_asset_and_other_methods(base):
    missing = httpx.get(base + "/console/js/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert httpx.get(base + "/console/../admin/weights").status_code in (401, 404)
    assert httpx.post(base + "/console").status_code == 405


def test_files_without_a_known_type_are_not_served(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "notes").write_text("secret-ish")
    (tmp_path / ".hidden.js").write_text("x")
    table = ConsoleRoutes(load_assets(tmp_path)).table()
    assert set(table) == {"/console", "/console/", "/console/index.html"}


def test_package_data_globs_ship_every_console_file():
    """A wheel carries only files matched by pyproject's package-data globs: cover them all."""
    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["routeguard"]
    package = root / "src" / "routeguard"
    shipped = [p.relative_to(package).as_posix() for p in (package / "console").rglob("*")]
    missing = [
        f
        for f in shipped
        if (package / f).is_file() and not any(fnmatch.fnmatch(f, g) for g in globs)
    ]
    assert missing == []
    assert {url.removeprefix("/console/") for url in load_assets()} <= set(
        f.removeprefix("console/") for f in shipped
    )
