"""The HTTP application: hand-written ASGI for the AuthZEN hot routes, Starlette for the rest."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from tether.api import authzen
from tether.api.approvals import approval_routes
from tether.api.asgi import (
    HSTS,
    PEER_CERT_KEY,
    PROBLEM_JSON,
    Receive,
    Scope,
    Send,
    header,
    parse_json_body,
    read_body,
    replay_body,
    secure_headers,
    send_json,
)
from tether.api.authzen_contract import AUTHZEN_DOCS
from tether.api.bounds import RequestBounds
from tether.api.contract import INTEGER, OBJECT, STRING, Doc, obj
from tether.api.errors import Refusal, error_response, problem, problem_for
from tether.api.events import event_routes
from tether.api.findings import finding_routes
from tether.api.gate import Gate, resolve_route
from tether.api.lifecycle import lifecycle_routes
from tether.api.oauth import oauth_routes
from tether.api.openapi import openapi_document
from tether.api.paths import path_routes
from tether.api.resources import resource_routes
from tether.api.results import result_routes
from tether.api.reviews import review_routes
from tether.api.routing import (
    CALLER_KEY,
    ROUTE_ROLES,
    declare,
    is_page,
    public,
    roles_for,
    secured,
)
from tether.api.signals import signal_routes
from tether.api.tasks import task_routes
from tether.api.tools import tool_routes
from tether.callers import Caller, Role
from tether.decider import WouldBlock
from tether.errors import TetherError
from tether.ids import new_id
from tether.services import Tether

log = logging.getLogger(__name__)

# `/readyz`: everyone learns `status`; an auditor or admin also the details (the event
# bus's only when the server publishes to one).
_READINESS = obj(
    ("status",),
    status=STRING,
    estate_revision={"type": ["integer", "null"]},
    latest_revision={"type": ["integer", "null"]},
    policies=INTEGER,
    decisions_written=INTEGER,
    decisions_lost=INTEGER,
    detail={"type": ["string", "null"]},
    event_bus=OBJECT,
)

READERS = (Role.AUDITOR, Role.ADMIN)
AUTHZEN_PATHS = (
    "/access/v1/evaluation",
    "/access/v1/evaluations",
    "/access/v1/search/subject",
    "/access/v1/search/resource",
    "/access/v1/search/action",
)
for _path in AUTHZEN_PATHS:
    declare(_path, ("POST",), (Role.PEP,), AUTHZEN_DOCS[_path])

# Single evaluations up to this size are answered on the event loop (tens of µs; a thread
# hop would double that); larger bodies, batches and searches in a worker thread.
INLINE_BODY_BYTES = 16 * 1024
# Threads for batches and searches (CPU: more than the cores would only contend for the
# GIL) and for decisions that wait on the store (task tokens, approval tickets).
CPU_THREADS = 2
SWITCH_INTERVAL_S = 0.001
STORE_THREADS = 8


class Handler(Protocol):
    def __call__(
        self,
        tether: Tether,
        body: Any,
        request_id: str | None,
        caller: str | None,
        *,
        may_block: bool = True,
    ) -> bytes: ...


SearchHandler = Callable[[Tether, Any], bytes]


class _DecisionCounts(Collector):
    """Reads the service's outcome counters at scrape time (nothing on the hot path)."""

    def __init__(self, tether: Tether) -> None:
        self._tether = tether

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "tether_decisions", "Decisions answered, by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(self._tether.outcome_counts.items()):
            family.add_metric([outcome], count)
        yield family


class Metrics:
    def __init__(self, tether: Tether) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_DecisionCounts(tether))
        self.errors = Counter(
            "tether_http_errors",
            "AuthZEN requests answered with an error, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tether_decision_seconds",
            "Time to answer an AuthZEN request",
            ["route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )


def _slash_hint(path: str) -> str:
    if len(path) > 1 and path.endswith("/"):
        return " (tether's paths end without a trailing slash)"
    return ""


class TetherApp:
    """The ASGI application served by ``tether serve``."""

    def __init__(self, tether: Tether, pages: Sequence[BaseRoute] = ()) -> None:
        """``pages``: the dashboard's routes (``tether.web``), which sign people in themselves."""
        self.tether = tether
        self.metrics = Metrics(tether)
        self._limit = tether.settings.max_body_bytes
        self._bounds = RequestBounds.from_settings(tether.settings)
        self._cpu = ThreadPoolExecutor(CPU_THREADS, thread_name_prefix="tether-authzen")
        self._store = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="tether-authzen-io")
        self._rate_sharing: asyncio.Future[None] | None = None
        self._hot: dict[str, Handler] = {
            "/access/v1/evaluation": authzen.evaluate_one,
            "/access/v1/evaluations": authzen.evaluate_many,
        }
        self._search: dict[str, SearchHandler] = {
            "/access/v1/search/subject": authzen.search_subject,
            "/access/v1/search/resource": authzen.search_resource,
            "/access/v1/search/action": authzen.search_action,
        }
        self._latency = {path: self.metrics.latency.labels(path) for path in self._hot}
        self.starlette = Starlette(
            routes=[*self._routes(), *pages],
            # One handler turns every TetherError a route raises into its answer.
            exception_handlers={HTTPException: self._http_error, TetherError: self._tether_error},
        )
        # No slash redirects: Starlette builds their `location` from the `Host` header (a
        # forged Host, or a path `//host/`, would make tether redirect elsewhere); a path
        # with a trailing slash is a 404 problem saying so.
        self.starlette.router.redirect_slashes = False
        # Who may call each hot path, as declared: read once, enforced by the gate.
        self._hot_roles = {path: roles_for("POST", path) for path in AUTHZEN_PATHS}
        self.gate = Gate(tether)
        self._openapi_json: bytes | None = None
        self._warn_undeclared()

    def _routes(self) -> list[Route]:
        return [
            public("/healthz", self._healthz, doc=Doc("Liveness", answer=obj(("status",)))),
            public(
                "/readyz",
                self._readyz,
                doc=Doc(
                    "Readiness: the store answers, decisions are being recorded and, with "
                    "an event bus, its drift records were read once (details for auditors "
                    "and admins)",
                    answer=_READINESS,
                    refusals={503: "not ready (`status` says why)"},
                    refusal_bodies={503: _READINESS},
                ),
            ),
            secured(
                "/metrics",
                self._metrics,
                roles=READERS,
                doc=Doc("Prometheus metrics", answer_type="text/plain"),
            ),
            public("/openapi.json", self._openapi, doc=Doc("This document (OpenAPI 3.1)")),
            public(
                "/.well-known/authzen-configuration",
                self._authzen_configuration,
                doc=Doc("AuthZEN PDP metadata (§9)", answer=obj(("policy_decision_point",))),
            ),
            *resource_routes(self.tether),
            *task_routes(self.tether),
            *tool_routes(self.tether),
            *result_routes(self.tether),
            *approval_routes(self.tether),
            *event_routes(self.tether),
            *path_routes(self.tether),
            *oauth_routes(self.tether),
            *signal_routes(self.tether),
            *lifecycle_routes(self.tether),
            *review_routes(self.tether),
            *finding_routes(self.tether),
        ]

    def _warn_undeclared(self) -> None:
        for route in self.starlette.routes:
            path = getattr(route, "path", "?")
            methods = getattr(route, "methods", None) or {"GET"}
            for method in sorted(set(methods) - {"HEAD"}):
                if (method, path) not in ROUTE_ROLES and not is_page(method, path):
                    log.error(
                        "route `%s %s` declares no roles: every call is refused", method, path
                    )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            handler = self._hot.get(path)
            if handler is not None or path in self._search:
                await self._authzen(scope, receive, send, path, handler)
                return
            resolved = resolve_route(self.starlette.routes, scope)
            if resolved is not None:
                template, roles = resolved
                if is_page(scope["method"], template):
                    pass  # a dashboard page: tether.web signs its people in by session
                elif roles is None or roles:  # not public: authenticate and authorize
                    admitted = self.gate.admit(scope, template, roles)
                    if isinstance(admitted, Refusal):
                        await self._refuse(send, admitted, None)
                        return
                    scope[CALLER_KEY] = admitted
            send = secure_headers(send, tls=scope.get("scheme") == "https")
            try:
                # Every body is bounded here, whatever the route does with it.
                receive = replay_body(await read_body(scope, receive, self._limit), receive)
            except TetherError as exc:
                status, body = problem_for(exc)
                await send_json(send, status, body, request_id=None, content_type=PROBLEM_JSON)
                return
            await self.starlette(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    @staticmethod
    async def _refuse(send: Send, refusal: Refusal, request_id: bytes | None) -> None:
        await send_json(
            send,
            refusal.status,
            refusal.body,
            request_id=request_id,
            content_type=refusal.content_type,
            extra_headers=refusal.headers,
        )

    async def _authzen(
        self, scope: Scope, receive: Receive, send: Send, path: str, handler: Handler | None
    ) -> None:
        started = time.perf_counter()
        # The caller's request id, else ours: echoed on every answer and kept with the decision.
        request_id = header(scope, b"x-request-id") or new_id().encode()
        if scope["method"] != "POST":
            body = problem(405, f"`{path}` only accepts POST", "method_not_allowed")
            await send_json(
                send,
                405,
                body,
                request_id=request_id,
                content_type=PROBLEM_JSON,
                extra_headers=[(b"allow", b"POST")],
            )
            return
        admitted = self.gate.admit(scope, path, self._hot_roles[path])
        if not isinstance(admitted, Caller):
            self.metrics.errors.labels(path, str(admitted.status)).inc()
            await self._refuse(send, admitted, request_id)
            return
        try:
            raw = await read_body(scope, receive, self._limit)
            asked = (scope, path, raw, request_id.decode("latin-1"), admitted.identity_id)
            if path == "/access/v1/evaluation" and len(raw) <= INLINE_BODY_BYTES:
                try:
                    body = self._answer(*asked, may_block=False)
                except WouldBlock:  # nothing was recorded: answer again where waiting is fine
                    body = await asyncio.get_running_loop().run_in_executor(
                        self._store, partial(self._answer, *asked)
                    )
            else:
                body = await asyncio.get_running_loop().run_in_executor(
                    self._cpu, partial(self._answer, *asked)
                )
        except TetherError as exc:
            status, body = problem_for(exc)
            self.metrics.errors.labels(path, str(status)).inc()
            await send_json(send, status, body, request_id=request_id, content_type=PROBLEM_JSON)
            return
        except Exception:  # fail closed, never leak a traceback to the caller
            log.exception("unexpected error answering %s", path)
            self.metrics.errors.labels(path, "500").inc()
            body = problem(500, "internal error; the request was not authorized", "internal_error")
            await send_json(send, 500, body, request_id=request_id, content_type=PROBLEM_JSON)
            return
        tls = [HSTS] if scope.get("scheme") == "https" else None
        await send_json(send, 200, body, request_id=request_id, extra_headers=tls)
        latency = self._latency.get(path)
        if latency is not None:
            latency.observe(time.perf_counter() - started)

    def _answer(
        self,
        scope: Scope,
        path: str,
        raw: bytes,
        request_id: str,
        caller: str | None,
        *,
        may_block: bool = True,
    ) -> bytes:
        """Parse, bound-check and answer one AuthZEN request (on the loop or in a thread)."""
        payload = parse_json_body(scope, raw)
        handler = self._hot.get(path)
        if path == "/access/v1/evaluations":
            self._bounds.check_evaluations(payload)
        else:
            self._bounds.check_evaluation(payload)
        if handler is not None:
            return handler(self.tether, payload, request_id, caller, may_block=may_block)
        return self._search[path](self.tether, payload)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.tether.start_background()
                # Everything loaded so far lives as long as the server: keep it out of the
                # collector's full passes, which would otherwise stall every request in
                # flight for tens of milliseconds.
                gc.collect()
                gc.freeze()
                # A thread answering a batch or a search holds the GIL for up to one switch
                # interval whenever the loop wants it back (5 ms by default, several times
                # per request): 1 ms keeps the callers on the loop answered within a few ms.
                sys.setswitchinterval(SWITCH_INTERVAL_S)
                if self.gate.shares_rates:  # callers' limits hold across replicas
                    self._rate_sharing = asyncio.ensure_future(self.gate.share_rates(self._store))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Drain the decision log: a clean shutdown loses no acknowledged decision.
                if self._rate_sharing is not None:
                    self._rate_sharing.cancel()
                self._cpu.shutdown()
                self._store.shutdown()
                self.gate.close()
                self.tether.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- small routes ------------------------------------------------------------------

    async def _tether_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TetherError)
        return error_response(request.url.path, exc)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = {
            404: f"no route `{request.url.path}`" + _slash_hint(request.url.path),
            405: f"method `{request.method}` is not allowed on `{request.url.path}`",
        }.get(status, str(getattr(exc, "detail", "error")))
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        headers = getattr(exc, "headers", None)
        if status == 405:  # every method of the path, not only those of its first route
            kept = {k: v for k, v in (headers or {}).items() if k.lower() != "allow"}
            headers = {**kept, "allow": ", ".join(self._methods_of(request.scope))}
        return Response(
            problem(status, detail, code),
            status_code=status,
            media_type="application/problem+json",
            headers=headers,
        )

    def _methods_of(self, scope: Scope) -> list[str]:
        methods: set[str] = set()
        for route in self.starlette.routes:
            if isinstance(route, Route) and route.methods:
                match, _ = route.matches({**scope, "method": "GET"})
                if match is not Match.NONE:
                    methods |= route.methods
        return sorted(methods)

    async def _healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        """Ready: the store answers, decisions are being recorded and, with an event bus,
        its drift records were read once; else 503.

        Anyone may ask, and learns only ``{"status": "ready" | "not_ready"}``: revisions,
        counts and a driver's error (host and database names) are for an auditor or an
        admin, who send their credential and get them too. A credential that does not
        authenticate, or of another role, gets the public answer (and is refused in the
        audit trail like anywhere else).
        """
        problems: list[str] = []
        revision: int | None = None
        try:
            revision = self.tether.latest_revision()
        except Exception as exc:  # the store is what readiness is about
            problems.append(f"the store is unreachable: {exc}")
        sink = self.tether.decision_log
        if not sink.healthy:  # answering without recording is not ready
            problems.append(sink.problem or "decisions are not being recorded")
        if (behind := self.tether.bus_unready()) is not None:
            problems.append(behind)
        status, code = ("not_ready", 503) if problems else ("ready", 200)
        if not self._may_read_readiness(request):
            return JSONResponse({"status": status}, status_code=code)
        snapshot = self.tether.snapshot
        detail: dict[str, Any] = {
            "status": status,
            "estate_revision": snapshot.revision,
            "latest_revision": revision,
            "policies": snapshot.engine.policy_count,
            "decisions_written": sink.written,
            "decisions_lost": sink.lost,
            "detail": "; ".join(problems) or None,
        }
        bus = self.tether.bus_status()
        if bus is not None:
            detail["event_bus"] = bus
        return JSONResponse(detail, status_code=code)

    def _may_read_readiness(self, request: Request) -> bool:
        scope = request.scope
        if not any(key == b"authorization" for key, _ in scope["headers"]):
            state = scope.get("state")
            if not (isinstance(state, dict) and state.get(PEER_CERT_KEY)):
                return False  # nobody to authenticate: the public answer, no audit row
        return isinstance(self.gate.admit(scope, "/readyz", frozenset(READERS)), Caller)

    async def _metrics(self, _request: Request) -> Response:
        return Response(
            generate_latest(self.metrics.registry), media_type="text/plain; version=0.0.4"
        )

    async def _openapi(self, _request: Request) -> Response:
        if self._openapi_json is None:  # the routes are declared once: built once
            self._openapi_json = orjson.dumps(openapi_document())
        return Response(self._openapi_json, media_type="application/json")

    async def _authzen_configuration(self, request: Request) -> Response:
        # The configured base URL, never the client's Host header (PDP mix-up defence).
        base = self.tether.settings.public_url
        return Response(authzen.configuration(base), media_type="application/json")


def create_app(tether: Tether) -> TetherApp:
    return TetherApp(tether)
