"""Every HTTP route declares the roles that may call it; nothing is open by accident.

Use :func:`secured` instead of ``starlette.routing.Route``. ``ROUTE_ROLES`` is the
registry the authentication layer enforces and the route-enumeration test reads.
A route registered with ``PUBLIC`` is reachable without credentials; only discovery
documents, the JWKS and ``/healthz`` may be.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.routing import Route

from tether.callers import PUBLIC, Role

ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {}


def declare(path: str, methods: Collection[str], roles: Collection[Role]) -> None:
    for method in methods:
        ROUTE_ROLES[(method.upper(), path)] = frozenset(roles)


def secured(
    path: str,
    endpoint: Callable[..., Any],
    *,
    roles: Collection[Role],
    methods: Collection[str] = ("GET",),
) -> Route:
    """A Starlette route that records who may call it."""
    declare(path, methods, roles)
    return Route(path, endpoint, methods=list(methods))


def public(
    path: str, endpoint: Callable[..., Any], *, methods: Collection[str] = ("GET",)
) -> Route:
    return secured(path, endpoint, roles=PUBLIC, methods=methods)
