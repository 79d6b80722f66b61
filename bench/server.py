"""ASGI factories the HTTP benchmark serves with ``uvicorn --factory``.

``tether_app`` is what ``tether serve`` hosts, ``create_app(Tether(settings))`` with
settings from ``TETHER_*`` variables (the benchmark points ``TETHER_DATABASE_URL`` and
``TETHER_MASTER_KEY_FILE`` into a temporary folder), wrapped in :class:`AnswerCounter`:
one closure per request that counts the 200 answers on the AuthZEN routes and writes the
counts to ``BENCH_COUNTS_FILE`` at shutdown, so the benchmark can hold the decision log
to them. ``hello_app`` is the ceiling: a Starlette route answering a small JSON document
without reading the request body.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.app import create_app
from tether.api.asgi import ASGIApp, Message, Receive, Scope, Send
from tether.config import load_settings
from tether.services import Tether

COUNTED = ("/access/v1/evaluation", "/access/v1/evaluations")


class AnswerCounter:
    """Counts 200 answers per AuthZEN route; writes them out after the app shut down."""

    def __init__(self, app: ASGIApp, counts_file: Path | None) -> None:
        self.app = app
        self.counts_file = counts_file
        self.answers: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] == "http" and path in COUNTED:
            answers = self.answers

            async def counting_send(message: Message) -> None:
                if message["type"] == "http.response.start" and message["status"] == 200:
                    answers[path] += 1
                await send(message)

            await self.app(scope, receive, counting_send)
            return
        if scope["type"] == "lifespan" and self.counts_file is not None:
            await self.app(scope, receive, self._on_shutdown(send))
            return
        await self.app(scope, receive, send)

    def _on_shutdown(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and self.counts_file:
                self.counts_file.write_text(json.dumps(dict(self.answers)))
            await send(message)

        return lifespan_send


def tether_app() -> AnswerCounter:
    counts = os.environ.get("BENCH_COUNTS_FILE")
    return AnswerCounter(create_app(Tether(load_settings())), Path(counts) if counts else None)


async def _hello(_request: Request) -> Response:
    return JSONResponse({"hello": "world"})


def hello_app() -> Starlette:
    return Starlette(routes=[Route("/hello", _hello, methods=["GET", "POST"])])
