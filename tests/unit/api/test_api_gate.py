"""The gate in process: deny by default, refusals in each protocol's form, caller in scope."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.app import TetherApp, create_app
from tether.api.contract import Doc
from tether.api.errors import refusal_for
from tether.api.routing import ROUTE_ROLES, caller_of, secured
from tether.callers import Role, add_api_key
from tether.callers.errors import RoleForbidden
from tether.config import load_settings
from tether.errors import RateLimited, Unauthenticated
from tether.services import Tether


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TetherApp]:
    settings = load_settings(
        {},
        database_url=f"sqlite:///{tmp_path}/t.db",
        master_key_file=str(tmp_path / "master.key"),
    )
    tether = Tether(settings)
    application = create_app(tether)
    yield application
    application.gate.close()
    tether.close()
    for key in [k for k in ROUTE_ROLES if k[1].startswith("/test-")]:
        del ROUTE_ROLES[key]


class Client:
    """A client of the app in process (httpx over ASGI), one event loop per request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


async def whoami(request: Request) -> Response:
    caller = caller_of(request)
    return JSONResponse({"id": caller.identity_id, "roles": sorted(caller.roles)})


def test_an_undeclared_route_is_refused_to_everyone(app: TetherApp) -> None:
    app.starlette.router.routes.append(Route("/test-undeclared", whoami))
    key = add_api_key(app.tether.engine, "gw").key
    client = Client(app)
    for headers in ({}, {"Authorization": f"Bearer {key}"}):
        response = client.get("/test-undeclared", headers=headers)
        assert response.status_code == 403
        assert response.json()["error_code"] == "route_undeclared"


def test_a_secured_route_sees_its_caller(app: TetherApp) -> None:
    app.starlette.router.routes.append(
        secured("/test-whoami", whoami, roles=(Role.PEP,), doc=Doc("who am I"))
    )
    key = add_api_key(app.tether.engine, "gw").key
    response = Client(app).get("/test-whoami", headers={"Authorization": key})
    assert response.status_code == 200
    assert response.json() == {"id": "gw", "roles": ["pep"]}
    assert response.headers["x-content-type-options"] == "nosniff"


def test_true_404_and_405_are_answered_without_authentication(app: TetherApp) -> None:
    client = Client(app)
    assert client.get("/no/such/route").status_code == 404
    assert client.post("/healthz").status_code == 405


def test_oauth_endpoints_refuse_in_rfc_6749_form(app: TetherApp) -> None:
    app.starlette.router.routes.append(
        secured(
            "/oauth2/test-endpoint",
            whoami,
            roles=(Role.WORKLOAD,),
            methods=("POST",),
            doc=Doc("who am I"),
        )
    )
    try:
        response = Client(app).post("/oauth2/test-endpoint")
    finally:
        del ROUTE_ROLES[("POST", "/oauth2/test-endpoint")]
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_code"] == "credentials_missing"
    assert response.headers["www-authenticate"] == 'Bearer realm="tether"'


def test_refusals_carry_their_headers() -> None:
    missing = refusal_for("/v1/x", Unauthenticated("none", code="credentials_missing"))
    assert (b"www-authenticate", b'Bearer realm="tether"') in missing.headers
    bad = refusal_for("/access/v1/evaluation", Unauthenticated("bad", code="api_key_invalid"))
    assert (b"www-authenticate", b'Bearer realm="tether", error="invalid_token"') in bad.headers
    assert bad.content_type == b"application/problem+json"
    limited = refusal_for("/v1/x", RateLimited("slow down", retry_after_s=3))
    assert (limited.status, (b"retry-after", b"3") in limited.headers) == (429, True)
    forbidden = refusal_for("/oauth2/token", RoleForbidden("no"))
    assert forbidden.status == 403
    assert b'"unauthorized_client"' in forbidden.body
