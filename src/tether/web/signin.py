"""Sign-in and sign-out: an admin token for the local demo (``tether admin token --user NAME``).

The sign-in form is protected against login CSRF by a double-submit token (a cookie and a
form field that must match); the session cookie is ``HttpOnly``, ``SameSite=Strict`` and
``Secure`` when served over TLS. Every sign-in is in the audit log (by the token's id).
"""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.api.routing import declare_page
from tether.callers import PUBLIC
from tether.errors import TetherError
from tether.services import Tether
from tether.store.audit import record_audit
from tether.web.pages import PEOPLE, Dashboard, View, error_page, render
from tether.web.sessions import COOKIE, MAX_AGE_S, SIGNIN_COOKIE, same_token


def _safe_next(target: str | None) -> str:
    # Only a path of this site: never `//elsewhere` or a scheme (open redirect).
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/inventory"


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def signin_routes(tether: Tether, dashboard: Dashboard) -> list[Route]:
    async def form(request: Request, message: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(
            "signin.html",
            status,
            csrf=token,
            message=message,
            next=_safe_next(request.query_params.get("next")),
            caller=None,
        )
        _set_cookie(request, response, SIGNIN_COOKIE, token, 600)
        return response

    async def show(request: Request) -> Response:
        return await form(request)

    async def submit(request: Request) -> Response:
        data = await request.form()
        if not same_token(data.get("csrf"), request.cookies.get(SIGNIN_COOKIE, "")):
            return error_page(403, "the sign-in form is stale or forged: reload it")
        credential = str(data.get("token") or "").strip()
        try:
            person = await run_in_threadpool(dashboard.person, credential)
        except TetherError as exc:
            return await form(request, f"not signed in: {exc.message}", 401)

        def audit() -> None:
            with tether.engine.begin() as connection:
                record_audit(
                    connection,
                    actor=person.identity_id,
                    action="dashboard.signin",
                    target=person.identity_id,
                    details={
                        "credential": person.credential,
                        "credential_id": person.credential_id,
                    },
                )

        await run_in_threadpool(audit)
        session = dashboard.sessions.open(credential)
        response = RedirectResponse(_safe_next(str(data.get("next") or "")), status_code=303)
        _set_cookie(request, response, COOKIE, session.id, int(MAX_AGE_S))
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        return response

    async def signout(request: Request) -> Response:
        # Anyone signed in may end their own session (an auditor too): not a page of a role.
        session = dashboard.sessions.find(request.cookies.get(COOKIE))
        data = await request.form()
        if session is None or not same_token(data.get("csrf"), session.csrf):
            return error_page(403, "the form is stale or forged: reload the page")
        dashboard.sessions.close(session.id)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def home(view: View) -> Response:
        return RedirectResponse("/inventory", status_code=303)

    public_pages = [
        ("/signin", show, ("GET",)),
        ("/signin", submit, ("POST",)),
        ("/signout", signout, ("POST",)),
    ]
    routes = []
    for path, endpoint, methods in public_pages:
        declare_page(path, methods, PUBLIC)
        routes.append(Route(path, endpoint, methods=list(methods)))
    return [
        *routes,
        dashboard.page("/", home, roles=PEOPLE),
    ]
