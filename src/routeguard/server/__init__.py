"""The HTTP edge: application factory and routes."""

from routeguard.server.app import RouteGuardApp

__all__ = ["RouteGuardApp"]
