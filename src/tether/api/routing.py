"""Every HTTP route declares the roles that may call it and its contract; nothing is open
by accident, nothing is undocumented.

Use :func:`secured` instead of ``starlette.routing.Route``. ``ROUTE_ROLES`` is the
registry the authentication layer enforces and the route-enumeration test reads;
``ROUTE_DOCS`` holds each operation's :class:`~tether.api.contract.Doc`, from which
``/openapi.json`` is built.
A route registered with ``PUBLIC`` is reachable without credentials; only discovery
documents, the JWKS and ``/healthz`` may be. A request to a route that is not in the
registry is refused (403 ``route_undeclared``), whatever its handler would do.

Inside an endpoint, :func:`caller_of` is the authenticated caller::

    async def my_tasks(request: Request) -> Response:
        caller = caller_of(request)   # tether.callers.Caller
        ...

    secured("/v1/tasks", my_tasks, roles=(Role.WORKLOAD,), methods=("POST",),
            doc=Doc("Open a task", body=TASK_REQUEST, refusals={409: "..."}))

Rules the declaration itself enforces: a route that changes something (any method but
GET/HEAD) cannot name the auditor role (``tether.callers.check_declaration``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from tether.api.contract import Doc
from tether.callers import PUBLIC, Caller, Role, check_declaration
from tether.errors import Unauthenticated

ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {}
ROUTE_DOCS: dict[tuple[str, str], Doc] = {}
# The dashboard's HTML pages (``tether.web``): for people signed in with a session cookie,
# not bearer credentials. They answer HTML and take forms with a CSRF token, so they are no
# operations of the API document (``/openapi.json``); each still declares its roles, which
# ``tether.web`` enforces (the gate lets them through to it).
PAGE_ROLES: dict[tuple[str, str], frozenset[Role]] = {}

# Where the HTTP edge puts the authenticated caller in the ASGI scope.
CALLER_KEY = "tether.caller"


def declare(path: str, methods: Collection[str], roles: Collection[Role], doc: Doc) -> None:
    for method in methods:
        granted = frozenset(roles)
        check_declaration(method, path, granted)
        ROUTE_ROLES[(method.upper(), path)] = granted
        ROUTE_DOCS[(method.upper(), path)] = doc


def declare_page(path: str, methods: Collection[str], roles: Collection[Role]) -> None:
    for method in methods:
        granted = frozenset(roles)
        check_declaration(method, path, granted)
        PAGE_ROLES[(method.upper(), path)] = granted


def is_page(method: str, path: str) -> bool:
    """Whether ``method`` on the route template ``path`` is a dashboard page (HEAD as GET)."""
    method = method.upper()
    return (method, path) in PAGE_ROLES or (method == "HEAD" and ("GET", path) in PAGE_ROLES)


def roles_for(method: str, path: str) -> frozenset[Role] | None:
    """The roles declared for ``method`` on the route template ``path`` (HEAD as GET)."""
    method = method.upper()
    found = ROUTE_ROLES.get((method, path))
    if found is None and method == "HEAD":
        found = ROUTE_ROLES.get(("GET", path))
    return found


def secured(
    path: str,
    endpoint: Callable[..., Any],
    *,
    roles: Collection[Role],
    doc: Doc,
    methods: Collection[str] = ("GET",),
) -> Route:
    """A Starlette route that records who may call it and what it takes and answers."""
    declare(path, methods, roles, doc)
    return Route(path, endpoint, methods=list(methods))


def public(
    path: str, endpoint: Callable[..., Any], *, doc: Doc, methods: Collection[str] = ("GET",)
) -> Route:
    return secured(path, endpoint, roles=PUBLIC, doc=doc, methods=methods)


def caller_of(request: Request) -> Caller:
    """The authenticated caller of a request to a secured route.

    Raises:
        Unauthenticated: the route is public (nobody was authenticated).
    """
    caller = request.scope.get(CALLER_KEY)
    if not isinstance(caller, Caller):
        raise Unauthenticated("this route is public; no caller was authenticated")
    return caller
