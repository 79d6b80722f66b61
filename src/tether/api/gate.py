"""The one gate every request passes: route lookup, authentication, rights, rate limit.

Both the hand-written AuthZEN hot path and the Starlette routes call :meth:`Gate.admit`
with the roles their route declared (``tether.api.routing.ROUTE_ROLES``); it answers the
authenticated :class:`~tether.callers.Caller` or the :class:`~tether.api.errors.Refusal`
to send. Deny by default: an undeclared route is refused even to an admin. Refusals are
rate-limited per source address (a flood of bad credentials gets 429) and recorded in the
audit trail (rate-limited too); a caller over its own limit gets 429 with ``Retry-After``
while every other caller keeps being answered. On PostgreSQL a caller's limit holds
across replicas (:meth:`Gate.share_rates`, :mod:`tether.callers.rate_share`); refusals
are limited per replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import Executor
from pathlib import Path

from starlette.routing import BaseRoute, Match

from tether.api.asgi import PEER_CERT_KEY, Scope
from tether.api.errors import Refusal, refusal_for
from tether.api.routing import roles_for
from tether.callers import (
    Authenticator,
    Caller,
    CallerActivity,
    RateLimiter,
    RateShare,
    Role,
    authorize,
    describe_credential,
    retry_after_seconds,
)
from tether.callers.errors import RouteUndeclared
from tether.callers.rate_share import SHARE_EVERY_S
from tether.callers.x509 import ClientCaBundle
from tether.errors import Forbidden, RateLimited, TetherError, Unauthenticated
from tether.services import Tether

log = logging.getLogger(__name__)

# The route a request resolved to: its template and declared roles (None: undeclared).
Resolved = tuple[str, frozenset[Role] | None]


def resolve_route(routes: Iterable[BaseRoute], scope: Scope) -> Resolved | None:
    """The Starlette route a request would reach, or ``None`` for a true 404 or 405
    (those Starlette answers itself, without authentication)."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            path = str(getattr(route, "path", scope["path"]))
            return path, roles_for(scope["method"], path)
    return None


def _credentials(scope: Scope) -> tuple[bytes | None, bytes | None]:
    authorization = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            authorization = bytes(value)
            break
    state = scope.get("state")
    peer_cert = state.get(PEER_CERT_KEY) if isinstance(state, dict) else None
    return authorization, peer_cert


def _source(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class Gate:
    """Admits or refuses requests; one per app, used from the server's event loop."""

    def __init__(self, tether: Tether) -> None:
        settings = tether.settings
        client_cas = (
            ClientCaBundle.from_pem_file(Path(settings.client_ca_file))
            if settings.client_ca_file
            else None
        )
        self.authenticator = Authenticator(
            tether.callers, tether.keys, audience=settings.audience, client_cas=client_cas
        )
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        # Refused requests by source address: a flood guard of each replica's own.
        self.refusals = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.activity = CallerActivity(tether.engine)
        self._store = tether.engine

    @property
    def shares_rates(self) -> bool:
        """Whether callers' limits are shared with other replicas (a PostgreSQL store)."""
        return self._store.dialect.name == "postgresql"

    async def share_rates(self, executor: Executor) -> None:
        """Exchange admitted counts with the other replicas for ever (run as a task on the
        server's loop; the store's work in ``executor``). Every bucket is touched on the
        loop only, as :meth:`admit` does."""
        share = RateShare(self._store, self.limiter)
        self.limiter.counting = True
        loop = asyncio.get_running_loop()
        unsent: dict[str, int] = {}
        while True:
            await asyncio.sleep(SHARE_EVERY_S)
            for key, count in self.limiter.drain_admitted().items():
                unsent[key] = unsent.get(key, 0) + count
            try:
                debits = await loop.run_in_executor(executor, share.exchange, unsent)
            except Exception as exc:  # the store away: limit alone, send the counts later
                log.warning("sharing rate limits failed (%s); limiting alone", exc)
                continue
            unsent = {}
            for key, tokens in debits.items():
                self.limiter.debit(key, tokens)

    def close(self) -> None:
        self.activity.close()

    def admit(self, scope: Scope, path: str, roles: frozenset[Role] | None) -> Caller | Refusal:
        """Authenticate and authorize a request to the route template ``path``."""
        method = scope["method"]
        if roles is None:
            error: TetherError = RouteUndeclared(
                f"`{method} {path}` declares no roles, so nobody may call it"
            )
            return self._refuse(scope, path, error, None, "auth.forbidden")
        authorization, peer_cert = _credentials(scope)
        try:
            caller = self.authenticator.authenticate(authorization, peer_cert)
        except Unauthenticated as exc:
            wait = self.refusals.take("addr:" + _source(scope))
            if wait is not None:
                return self._too_many(path, f"too many refused calls from `{_source(scope)}`", wait)
            shown = authorization.decode("latin-1") if authorization else None
            return self._refuse(
                scope, path, exc, describe_credential(shown, peer_cert), "auth.refused"
            )
        except TetherError as exc:  # the store behind the directory is away: fail closed
            log.warning("authentication could not complete: %s", exc.message)
            return refusal_for(path, exc)
        except Exception:  # a bug must refuse, never admit
            log.exception("authentication failed unexpectedly on %s", path)
            error = TetherError(
                "internal error; the request was not authorized", code="internal_error"
            )
            return refusal_for(path, error)
        try:
            authorize(caller, roles, method=method, path=path)
        except Forbidden as exc:
            return self._refuse(scope, path, exc, caller.identity_id, "auth.forbidden")
        wait = self.limiter.take(caller.identity_id)
        if wait is not None:
            return self._too_many(
                path,
                f"`{caller.identity_id}` is over its rate limit of "
                f"{self.limiter.rate_per_s:g} requests/s",
                wait,
            )
        self.activity.used(caller.identity_id)
        return caller

    def _refuse(
        self, scope: Scope, path: str, error: TetherError, credential: str | None, action: str
    ) -> Refusal:
        refusal = refusal_for(path, error)
        recorded = self.activity.refused(
            action=action,
            code=error.code,
            source=_source(scope),
            method=scope["method"],
            path=scope["path"][:400],
            credential=credential,
            status=refusal.status,
        )
        if recorded:  # logs are rate-limited like the audit rows
            log.info(
                "refused %s %s from %s (%s): %s",
                scope["method"],
                scope["path"][:200],
                _source(scope),
                credential or "no credentials",
                error.code,
            )
        return refusal

    def _too_many(self, path: str, message: str, wait_s: float) -> Refusal:
        return refusal_for(path, RateLimited(message, retry_after_s=retry_after_seconds(wait_s)))
