"""The pages of the OIDC sign-in (:mod:`tether.web.oidc`): ``/signin/oidc`` sends the
browser to the issuer, ``/signin/oidc/callback`` takes its answer back.

The flow's id travels in a cookie of its own, ``HttpOnly`` and ``SameSite=Lax`` (the
issuer's redirect back is a cross-site navigation, on which a ``Strict`` cookie is not
sent), ten minutes long; the flow itself (state, nonce, PKCE verifier) stays in the
store. A refused answer is a page saying why (401; 502 when the issuer cannot be
reached), audited and counted like a failed token sign-in. A signed-in person gets a
page that moves on to their landing page by itself: the session cookie is ``Strict``, so
it must be asked for by a navigation from this site, not by the issuer's redirect.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.api.routing import declare_page
from tether.callers import PUBLIC
from tether.errors import TetherError
from tether.identity.errors import JwksUnavailable
from tether.services import Tether
from tether.web.oidc import CALLBACK_PATH, FLOW_TTL_S, OidcSignin
from tether.web.pages import Dashboard, error_page
from tether.web.sessions import cookie_name
from tether.web.signin import (
    client_address,
    delete_cookie,
    open_session,
    refused_signin,
    safe_next,
    throttled_page,
)

log = logging.getLogger(__name__)

FLOW_COOKIE = "tether_oidc"


def _unreachable(exc: TetherError) -> bool:
    return isinstance(exc, JwksUnavailable) or exc.code == "oidc_issuer_unreachable"


def oidc_routes(tether: Tether, dashboard: Dashboard, oidc: OidcSignin) -> list[Route]:
    async def begin(request: Request) -> Response:
        try:
            flow_id, url = await run_in_threadpool(
                oidc.begin, safe_next(request.query_params.get("next"))
            )
        except TetherError as exc:
            log.warning("OIDC sign-in could not begin: %s", exc.message)
            status = 502 if _unreachable(exc) else 503
            return error_page(status, f"sign-in through the issuer is unavailable: {exc.message}")
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            cookie_name(request, FLOW_COOKIE),
            flow_id,
            max_age=int(FLOW_TTL_S),
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def callback(request: Request) -> Response:
        if wait := dashboard.throttle.wait_s(client_address(request)):
            return throttled_page(wait)
        flow_id = request.cookies.get(cookie_name(request, FLOW_COOKIE), "")
        params = dict(request.query_params)
        try:
            person, next_page = await run_in_threadpool(oidc.finish, flow_id, params)
        except TetherError as exc:
            await refused_signin(tether, dashboard.throttle, request, exc)
            status = 502 if _unreachable(exc) else 401
            response = error_page(status, f"not signed in: {exc.message}")
            delete_cookie(request, response, FLOW_COOKIE)
            return response
        response = await open_session(
            tether, dashboard, request, person, credential="", next_page=next_page, moving_on=True
        )
        delete_cookie(request, response, FLOW_COOKIE)
        return response

    routes = []
    for path, endpoint in (("/signin/oidc", begin), (CALLBACK_PATH, callback)):
        declare_page(path, ("GET",), PUBLIC)
        routes.append(Route(path, endpoint, methods=["GET"]))
    return routes


__all__ = ["FLOW_COOKIE", "oidc_routes"]
