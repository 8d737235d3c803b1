"""`routeguard serve` shouts when anyone on the network could spend the provider keys."""

from __future__ import annotations

import pytest

from routeguard.server.listening import is_loopback, open_port_warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_needs_no_keys(host):
    assert is_loopback(host)
    assert open_port_warning(host, has_client_keys=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "router.internal"])
def test_open_address_without_keys_warns_loudly(host):
    warning = open_port_warning(host, has_client_keys=False)
    assert warning is not None
    assert host in warning
    assert "NO CLIENT KEYS" in warning
    assert open_port_warning(host, has_client_keys=True) is None
