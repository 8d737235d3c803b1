"""The operator console: a static web page, shipped in the package, that drives the admin API.

The page is plain HTML, CSS and ES modules under ``routeguard/console/`` (package data, no
build step), so an operator on a closed network gets it from the router itself. The files
are read once, when the routes are built, and served from memory: a console open during an
outage must not add disk reads or template work to the process that carries the traffic.

The files hold no data, so they are served without authentication; every data call the page
makes goes to the admin API with the operator's bearer token, which the page keeps in
``sessionStorage`` and sends only in the ``Authorization`` header (never in a URL, so it
cannot reach an access log). A strict Content-Security-Policy forbids inline script and every
origin but the router's own, so even a hostile string in a deployment name or an incident
summary cannot run code or send the token elsewhere.

Caching: every answer carries an ``ETag`` and ``Cache-Control: no-cache``, so browsers keep the
files but revalidate them, and a router upgrade is picked up on the next load with a 304 for
whatever did not change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from routeguard.net.server import Request, Response
from routeguard.server.admin_api import Route

__all__ = ["CONTENT_SECURITY_POLICY", "ConsoleAsset", "ConsoleRoutes", "load_assets"]

ASSET_PACKAGE = "routeguard"
ASSET_DIR = "console"
URL_PREFIX = "/console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

# Only the router's own origin, for scripts, styles, images and the admin API calls; no inline
# script or style, no plugins, no framing (clickjacking a "drain" button), no form posts away.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_SECURITY_HEADERS = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
]


@dataclass(frozen=True, slots=True)
class ConsoleAsset:
    """One file of the page, ready to send."""

    path: str
    body: bytes
    content_type: str
    etag: str


def load_assets(root: Traversable | None = None) -> dict[str, ConsoleAsset]:
    """Every servable file under the console directory, keyed by its URL path.

    Files whose type is not in :data:`CONTENT_TYPES` (a licence text without extension, an
    editor's backup) are left out rather than served with a guessed type.
    """
    base = root if root is not None else resources.files(ASSET_PACKAGE) / ASSET_DIR
    assets: dict[str, ConsoleAsset] = {}
    for relative, item in _walk(base, ""):
        suffix = "." + relative.rsplit(".", 1)[-1] if "." in relative else ""
        content_type = CONTENT_TYPES.get(suffix)
        if content_type is None:
            continue
        body = item.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        url = f"{URL_PREFIX}/{relative}"
        assets[url] = ConsoleAsset(url, body, content_type, etag)
    return assets


def _walk(node: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        name = f"{prefix}{child.name}"
        if child.name.startswith((".", "_")):
            continue
        if child.is_dir():
            found.extend(_walk(child, name + "/"))
        else:
            found.append((name, child))
    return found


class ConsoleRoutes:
    """``GET /console`` and one exact route per asset (the route table has no path patterns)."""

    def __init__(self, assets: dict[str, ConsoleAsset] | None = None) -> None:
        self.assets = load_assets() if assets is None else assets

    def table(self) -> dict[str, dict[str, Route]]:
        table: dict[str, dict[str, Route]] = {}
        index = self.assets.get(f"{URL_PREFIX}/index.html")
        if index is not None:
            page = self._route(index)
            table[URL_PREFIX] = {"GET": page}
            table[URL_PREFIX + "/"] = {"GET": page}
        for url, asset in self.assets.items():
            table[url] = {"GET": self._route(asset)}
        return table

    @staticmethod
    def _route(asset: ConsoleAsset) -> Route:
        headers = [
            ("cache-control", "no-cache"),
            ("etag", asset.etag),
            *_SECURITY_HEADERS,
        ]

        async def serve(request: Request) -> Response:
            if _etag_matches(request.headers.get("if-none-match"), asset.etag):
                return Response(304, b"", list(headers), asset.content_type)
            return Response(200, asset.body, list(headers), asset.content_type)

        return serve


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates or "*" in candidates
