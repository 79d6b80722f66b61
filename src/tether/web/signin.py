"""Sign-in and sign-out: an admin token for the local demo (``tether admin token --user NAME``);
people of an OIDC issuer sign in through :mod:`tether.web.oidc`.

The sign-in form is protected against login CSRF by a double-submit token (a cookie and a
form field that must match); the session cookie is ``HttpOnly``, ``SameSite=Strict`` and
``Secure`` (with the ``__Host-`` prefix) when served over TLS. Every sign-in is in the
audit log (by the token's id), and so is every failed one (``dashboard.signin_failed``:
the address and the reason, never the token); past ``MAX_FAILURES`` failures from an
address it is refused with 429 for a while (:mod:`tether.web.throttle`). A person lands
on the first page their roles may see (an approver on the approvals queue).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.api.routing import declare_page
from tether.callers import PUBLIC, Caller
from tether.errors import TetherError
from tether.services import Tether
from tether.store.audit import record_audit
from tether.web.pages import PEOPLE, Dashboard, View, error_page, landing, may_open, render
from tether.web.sessions import COOKIE, SIGNIN_COOKIE, cookie_name, same_token
from tether.web.throttle import SigninThrottle


def safe_next(target: str | None) -> str:
    # Only a path of this site: never `//elsewhere` or a scheme (open redirect), nor any
    # space or control character (browsers drop tabs and newlines: `/\t/elsewhere`).
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(" " < c < "\x7f" for c in target)
    ):
        return target
    return ""


def set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        cookie_name(request, name),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def audit_signin(tether: Tether, action: str, actor: str, details: dict[str, Any]) -> None:
    with tether.engine.begin() as connection:
        record_audit(connection, actor=actor, action=action, target=actor, details=details)


async def open_session(
    tether: Tether,
    dashboard: Dashboard,
    request: Request,
    person: Caller,
    *,
    credential: str,
    next_page: str,
    moving_on: bool = False,
) -> Response:
    """Audit the sign-in of ``person``, open its session and send it on: to ``next_page``,
    else to the first page its roles may see. ``moving_on``: by a page of this site that
    moves on by itself, not a redirect (after an issuer's cross-site redirect, the browser
    would not send the ``SameSite=Strict`` session cookie along a redirect)."""
    details = {
        "credential": person.credential,
        "credential_id": person.credential_id,
        "address": client_address(request),
    }
    await run_in_threadpool(audit_signin, tether, "dashboard.signin", person.identity_id, details)
    # An admin token is authenticated again at every request; an OIDC person's roles are
    # as of sign-in, so its session is shorter.
    lasts = None if credential else max(60.0, float(tether.settings.oidc_session_s))
    session = await run_in_threadpool(
        lambda: dashboard.sessions.open(
            person.identity_id,
            credential=credential,
            caller=None if credential else person,
            max_age_s=lasts,
        )
    )
    target = safe_next(next_page)
    if not target or not may_open(request, person, target):
        target = landing(person)
    response = (
        render("moving-on.html", target=target, caller=None)
        if moving_on
        else RedirectResponse(target, status_code=303)
    )
    set_cookie(request, response, COOKIE, session.id, max(1, int(session.expires - time.time())))
    delete_cookie(request, response, SIGNIN_COOKIE)
    return response


async def refused_signin(
    tether: Tether, throttle: SigninThrottle, request: Request, error: TetherError
) -> None:
    """Count and audit a failed sign-in (never the credential itself)."""
    address = client_address(request)
    throttle.failed(address)
    details: dict[str, Any] = {
        "address": address,
        "error_code": error.code,
        "message": error.message,
    }
    if wait := throttle.wait_s(address):
        details["throttled_for_s"] = wait
    await run_in_threadpool(audit_signin, tether, "dashboard.signin_failed", "anonymous", details)


def throttled_page(wait_s: int) -> Response:
    response = error_page(429, f"too many failed sign-ins from this address: wait {wait_s} s")
    response.headers["retry-after"] = str(wait_s)
    return response


def signin_routes(tether: Tether, dashboard: Dashboard, *, oidc_issuer: str = "") -> list[Route]:
    throttle = dashboard.throttle

    async def form(request: Request, message: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(
            "signin.html",
            status,
            csrf=token,
            message=message,
            next=safe_next(request.query_params.get("next")),
            oidc_issuer=oidc_issuer,
        )
        set_cookie(request, response, SIGNIN_COOKIE, token, 600)
        return response

    async def show(request: Request) -> Response:
        return await form(request)

    async def submit(request: Request) -> Response:
        data = await request.form()
        signin_csrf = request.cookies.get(cookie_name(request, SIGNIN_COOKIE), "")
        if not same_token(data.get("csrf"), signin_csrf):
            return error_page(403, "the sign-in form is stale or forged: reload it")
        if wait := throttle.wait_s(client_address(request)):
            return throttled_page(wait)
        credential = str(data.get("token") or "").strip()
        try:
            person = await run_in_threadpool(dashboard.person, credential)
        except TetherError as exc:
            await refused_signin(tether, throttle, request, exc)
            return await form(request, f"not signed in: {exc.message}", 401)
        return await open_session(
            tether,
            dashboard,
            request,
            person,
            credential=credential,
            next_page=str(data.get("next") or ""),
        )

    async def signout(request: Request) -> Response:
        # Anyone signed in may end their own session (an auditor too): not a page of a role.
        session = await run_in_threadpool(dashboard.session_of, request)
        data = await request.form()
        if session is None or not same_token(data.get("csrf"), session.csrf):
            return error_page(403, "the form is stale or forged: reload the page")
        await run_in_threadpool(dashboard.sessions.close, session.id)
        response = RedirectResponse("/signin", status_code=303)
        delete_cookie(request, response, COOKIE)
        return response

    async def home(view: View) -> Response:
        return RedirectResponse(landing(view.caller), status_code=303)

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
