"""ASGI factories the HTTP benchmark serves with ``uvicorn --factory``.

``tether_app`` is exactly what ``tether serve`` hosts: ``create_app(Tether(settings))``,
settings read from ``TETHER_*`` variables (the benchmark sets ``TETHER_DATABASE_URL`` to a
temporary SQLite store holding the bench estate). ``hello_app`` is the ceiling: a
Starlette route answering a small JSON document without reading the request body.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.app import TetherApp, create_app
from tether.config import load_settings
from tether.services import Tether


def tether_app() -> TetherApp:
    return create_app(Tether(load_settings()))


async def _hello(_request: Request) -> Response:
    return JSONResponse({"hello": "world"})


def hello_app() -> Starlette:
    return Starlette(routes=[Route("/hello", _hello, methods=["GET", "POST"])])
