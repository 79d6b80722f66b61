"""The dashboard for security teams: server-rendered pages (Jinja2) in the API's app.

``create_app(tether)`` is what ``tether serve`` hosts: the API of :mod:`tether.api.app`
with the dashboard's pages beside it. People sign in at ``/signin`` with an admin token
(``tether admin token --user NAME``) or, with ``oidc_issuer`` configured, through that
issuer (:mod:`tether.web.oidc`); see :mod:`tether.web.pages` for how every page is
guarded (session, roles, CSRF) and :mod:`tether.web.sessions` for the session cookie.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from tether.api.app import TetherApp
from tether.api.routing import declare_page
from tether.callers import PUBLIC, Authenticator
from tether.services import Tether
from tether.web.approvals import approval_routes
from tether.web.findings import finding_routes
from tether.web.inventory import inventory_routes
from tether.web.oidc import OidcConfig, OidcSignin
from tether.web.oidc_pages import oidc_routes
from tether.web.pages import Dashboard
from tether.web.paths import path_routes
from tether.web.reviews import review_routes
from tether.web.signin import signin_routes

STATIC = Path(__file__).parent / "static"

__all__ = ["create_app", "dashboard_routes", "new_dashboard"]


# Served to anyone (the sign-in page needs its style); nothing else under static/ is.
STATIC_FILES = {"dashboard.css": "text/css", "findings.js": "text/javascript"}


async def _static(request: Request) -> Response:
    name = request.url.path.removeprefix("/static/")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name])


def new_dashboard(tether: Tether) -> Dashboard:
    settings = tether.settings
    authenticator = Authenticator(tether.callers, tether.keys, audience=settings.audience)
    return Dashboard(authenticator, tether.engine)


def dashboard_routes(tether: Tether, dashboard: Dashboard | None = None) -> list[BaseRoute]:
    dashboard = dashboard or new_dashboard(tether)
    config = OidcConfig.from_settings(tether.settings)
    oidc = (
        [] if config is None else oidc_routes(tether, dashboard, OidcSignin(config, tether.engine))
    )
    static = []
    for name in STATIC_FILES:
        declare_page(f"/static/{name}", ("GET",), PUBLIC)
        static.append(Route(f"/static/{name}", _static, methods=["GET"]))
    return [
        *static,
        *finding_routes(tether, dashboard),
        *path_routes(tether, dashboard),
        *oidc,
        *signin_routes(tether, dashboard, oidc_issuer=config.issuer if config else ""),
        *inventory_routes(tether, dashboard),
        *approval_routes(tether, dashboard),
        *review_routes(tether, dashboard),
    ]


def create_app(tether: Tether, dashboard: Dashboard | None = None) -> TetherApp:
    """The API and the dashboard, in one app (``dashboard``: its shared parts, to look at
    them from outside, as the benchmark does)."""
    return TetherApp(tether, pages=dashboard_routes(tether, dashboard))
