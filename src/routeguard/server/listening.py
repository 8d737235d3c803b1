"""The listener's side of the configuration: HTTP limits, inbound TLS, and the open-port warning.

``server:`` keys become the typed :class:`~routeguard.net.limits.HttpLimits` the HTTP server
reads on every request, and the one check that deserves a loud log at start-up lives here: a
router reachable from other hosts with no client keys lets anyone spend the provider keys.
"""

from __future__ import annotations

import ipaddress
import logging

from routeguard.config.schema import ServerConfig
from routeguard.net.server import Handler, HttpLimits, HttpServer, TlsFiles
from routeguard.observability.http_metrics import HttpMetrics

__all__ = ["build_http_server", "http_limits", "is_loopback", "open_port_warning"]

log = logging.getLogger("routeguard.server")


def http_limits(server: ServerConfig) -> HttpLimits:
    return HttpLimits(
        header_timeout_s=server.header_timeout_s,
        body_timeout_s=server.body_timeout_s,
        keep_alive_s=server.keep_alive_timeout_s,
        write_timeout_s=server.write_timeout_s,
        max_url_bytes=server.max_url_bytes,
        max_header_bytes=server.max_header_bytes,
        max_headers_bytes=server.max_headers_bytes,
        max_headers=server.max_headers,
        max_body_bytes=server.max_body_bytes,
        max_connections=server.max_connections,
        max_connections_per_client=server.max_connections_per_client,
    )


def build_http_server(handler: Handler, server: ServerConfig, metrics: HttpMetrics) -> HttpServer:
    tls = None
    if server.tls_cert_file is not None and server.tls_key_file is not None:
        tls = TlsFiles(server.tls_cert_file, server.tls_key_file)
    http = HttpServer(handler, http_limits(server), tls=tls, on_refused=metrics.refused)
    metrics.track_connections(lambda: len(http.connections))
    return http


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def open_port_warning(host: str, has_client_keys: bool) -> str | None:
    """The warning to shout when ``host`` is reachable from other machines with no client keys."""
    if has_client_keys or is_loopback(host):
        return None
    return (
        f"LISTENING ON {host} WITH NO CLIENT KEYS: anyone who can reach this port can spend "
        "your provider keys. Add a clients: section (routeguard keys hash) or bind 127.0.0.1."
    )
