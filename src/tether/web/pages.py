"""How a dashboard page is declared and guarded: session, roles, CSRF, designed errors.

:func:`page` is to the dashboard what :func:`tether.api.routing.secured` is to the API: it
records the roles (``tether.api.routing.PAGE_ROLES``) and wraps the handler so that

* nobody signed in is sent to ``/signin`` (a GET) or refused (anything else, 403);
* a person without one of the page's roles gets a 403 page (an auditor changes nothing);
* every POST carries the session's CSRF token in its form (``csrf``), else 403;
* an error is a page that says what was wrong, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match, Route

from tether.api.errors import status_of
from tether.api.routing import PAGE_ROLES, declare_page
from tether.callers import Authenticator, Caller, Role
from tether.errors import TetherError, Unauthenticated
from tether.web.sessions import COOKIE, Session, SessionStore, cookie_name, same_token
from tether.web.throttle import SigninThrottle

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
READERS = (Role.AUDITOR, Role.ADMIN)
PEOPLE = (Role.AUDITOR, Role.ADMIN, Role.APPROVER)
# The header's links, each shown to the roles that may open it.
NAVIGATION = (
    ("/inventory", "Inventory", READERS),
    ("/findings", "Findings", READERS),
    ("/approvals", "Approvals", PEOPLE),
    ("/reviews", "Review", READERS),
    ("/estate-metrics", "Metrics", READERS),
)
# Credentials a person signs in with (not PEP keys or workload proofs).
PERSON_CREDENTIALS = frozenset({"admin_token", "oidc"})

templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class View:
    """What a page handler gets: the request, who is signed in, the submitted form."""

    request: Request
    caller: Caller
    session: Session
    form: FormData | None = None

    def may(self, *roles: Role) -> bool:
        return self.caller.has_any(frozenset(roles))

    def render(self, name: str, status: int = 200, **values: Any) -> Response:
        return render(name, status, caller=self.caller, csrf=self.session.csrf, view=self, **values)

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else ""


Handler = Callable[[View], Awaitable[Response]]


class Droppable(Protocol):
    def drop(self) -> None: ...


def landing(caller: Caller) -> str:
    """The first page ``caller`` may see: the inventory for readers, else the approvals."""
    return next(path for path, _, roles in NAVIGATION if caller.has_any(frozenset(roles)))


def may_open(request: Request, caller: Caller, target: str) -> bool:
    """Whether ``caller`` may see the page at ``target`` (a path of this site)."""
    scope = {"type": "http", "method": "GET", "path": urlsplit(target).path, "root_path": ""}
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(scope)[0] is Match.FULL:
            roles = PAGE_ROLES.get(("GET", route.path))
            return roles is not None and caller.has_any(roles)
    return False


def navigation(caller: Caller | None) -> list[tuple[str, str]]:
    if caller is None:
        return []
    return [(path, title) for path, title, roles in NAVIGATION if caller.has_any(frozenset(roles))]


def render(name: str, status: int = 200, **values: Any) -> Response:
    values.setdefault("caller", None)
    values["navigation"] = navigation(values["caller"])
    return HTMLResponse(templates.get_template(name).render(**values), status_code=status)


def error_page(status: int, message: str, caller: Caller | None = None, csrf: str = "") -> Response:
    titles = {
        400: "Not accepted",
        401: "Not signed in",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        429: "Slow down",
        502: "The issuer could not be reached",
        503: "Unavailable",
    }
    return render(
        "error.html",
        status,
        title=titles.get(status, "Something went wrong"),
        message=message,
        caller=caller,
        csrf=csrf,
    )


class Dashboard:
    """The dashboard's shared parts: sessions and the authenticator of their credentials."""

    def __init__(self, authenticator: Authenticator, engine: Engine) -> None:
        self.authenticator = authenticator
        self.sessions = SessionStore(engine)
        self.throttle = SigninThrottle()
        self.inventory: Any = (
            None  # the inventory snapshot (tether.web.inventory), dropped on changes
        )

    def person(self, credential: str) -> Caller:
        """The person ``credential`` proves (an admin token or a person's OIDC token).

        Raises:
            Unauthenticated: it does not verify, or it is no person's credential.
        """
        caller = self.authenticator.authenticate(f"Bearer {credential}")
        # An OIDC token proves a workload as well as a person: workloads hold `workload`.
        if caller.credential not in PERSON_CREDENTIALS or Role.WORKLOAD in caller.roles:
            raise Unauthenticated("sign in with a person's token (`tether admin token`)")
        if not caller.has_any(frozenset(PEOPLE)):
            raise Unauthenticated("this person holds none of the dashboard's roles")
        return caller

    def session_of(self, request: Request) -> Session | None:
        return self.sessions.find(request.cookies.get(cookie_name(request, COOKIE)))

    def signed_in(self, request: Request) -> tuple[Session, Caller] | None:
        session = self.session_of(request)
        if session is None:
            return None
        if session.caller is not None:  # OIDC: the person the issuer proved at sign-in
            return session, session.caller
        try:
            return session, self.person(session.credential)
        except TetherError:  # expired, revoked, the role removed: the session is over
            self.sessions.close(session.id)
            return None

    def page(
        self,
        path: str,
        handler: Handler,
        *,
        roles: Collection[Role],
        methods: Collection[str] = ("GET",),
    ) -> Route:
        declare_page(path, methods, roles)
        granted = frozenset(roles)

        async def endpoint(request: Request) -> Response:
            found = await run_in_threadpool(self.signed_in, request)  # a store read
            if found is None:
                if request.method in ("GET", "HEAD"):
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
                return error_page(403, "sign in first")
            session, caller = found
            if not caller.has_any(granted):
                return error_page(
                    403, "your roles do not allow this page or action", caller, session.csrf
                )
            form = None
            if request.method == "POST":
                form = await request.form()
                if not same_token(form.get("csrf"), session.csrf):
                    return error_page(
                        403, "the form is stale or forged: reload the page", caller, session.csrf
                    )
            view = View(request, caller, session, form)
            try:
                return await handler(view)
            except TetherError as exc:
                return error_page(status_of(exc), exc.message, caller, session.csrf)
            except Exception:  # designed, not leaked: the log has the traceback
                log.exception("dashboard page %s failed", request.url.path)
                return error_page(
                    500, "an internal error; it has been logged", caller, session.csrf
                )

        return Route(path, endpoint, methods=list(methods))
