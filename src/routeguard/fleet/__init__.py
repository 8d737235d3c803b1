"""A fleet of RouteGuard processes acting as one router, with Redis as shared state.

See docs/fleet.md for keys, messages, the consistency model and failure behaviour.
"""

from routeguard.fleet.service import Fleet

__all__ = ["Fleet"]
