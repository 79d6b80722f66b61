"""Dashboard sessions: an opaque id in an ``HttpOnly``, ``SameSite=Strict`` cookie, the
session itself kept server-side, in the store (``dashboard_sessions``): it survives a
restart and holds on every replica of one store.

The store holds no secret the browser holds: a row is found by the SHA-256 of the id, and
its contents (the credential, the CSRF token, an OIDC person) are sealed with AES-GCM
under a key derived from the id, so neither a copy of the store nor its backups give a
working session or an admin token.

A session signed in with an admin token holds that credential, never sent back to the
browser, and each request authenticates it again, so a removed role or an expired token
ends what the session may do at once. A session signed in through OIDC holds the person
the issuer's ID token proved (identity and roles, fixed at sign-in) for as long as
the caller of :meth:`SessionStore.open` says (``oidc_session_s``, one hour by default),
never more than ``MAX_AGE_S``. Every session has its own CSRF token.

Sessions are capped: at most ``MAX_PER_PERSON`` for one person (signing in once more
ends that person's oldest) and ``MAX_SESSIONS`` in all (the oldest is ended), so a flood
of sign-ins cannot grow the table without bound; expired rows go at every sign-in.

Over TLS the cookies carry the ``__Host-`` prefix (the browser then insists on
``Secure``, ``Path=/`` and no ``Domain``); plain HTTP (the local demo) uses the bare names,
which a browser would refuse with the prefix.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete, func, insert, select
from starlette.requests import HTTPConnection

from tether.callers import Caller, Role
from tether.store.dashboard_tables import dashboard_sessions

COOKIE = "tether_session"
SIGNIN_COOKIE = "tether_signin"  # the sign-in form's CSRF token (double submit)
HOST_PREFIX = "__Host-"
MAX_AGE_S = 8 * 3600
MAX_PER_PERSON = 20
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    id: str
    person: str  # the identity id it was opened for
    credential: str  # the admin token; "" for an OIDC session (see ``caller``)
    csrf: str
    expires: float  # seconds since the epoch
    caller: Caller | None = None  # an OIDC session: who the ID token proved


def cookie_name(request: HTTPConnection, name: str) -> str:
    """``name``, with the ``__Host-`` prefix when the request came over TLS."""
    return HOST_PREFIX + name if request.url.scheme == "https" else name


def lookup_hash(session_id: str) -> str:
    """What a row is found by: the SHA-256 of the id."""
    return hashlib.sha256(b"tether-session-id\0" + session_id.encode()).hexdigest()


def _key(session_id: str) -> bytes:
    return hashlib.sha256(b"tether-session-key\0" + session_id.encode()).digest()


def seal(session_id: str, contents: dict[str, Any]) -> str:
    """``contents`` as JSON, AES-GCM under a key of the id, bound to its lookup hash."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_key(session_id)).encrypt(
        nonce, json.dumps(contents).encode(), lookup_hash(session_id).encode()
    )
    return (nonce + sealed).hex()


def unseal(session_id: str, text: str) -> dict[str, Any] | None:
    """What :func:`seal` sealed under ``session_id``; ``None`` under any other id."""
    try:
        raw = bytes.fromhex(text)
        plain = AESGCM(_key(session_id)).decrypt(
            raw[:12], raw[12:], lookup_hash(session_id).encode()
        )
        contents = json.loads(plain)
    except (ValueError, InvalidTag):
        return None
    return contents if isinstance(contents, dict) else None


def _caller_json(caller: Caller | None) -> dict[str, Any] | None:
    if caller is None:
        return None
    return {
        "identity_id": caller.identity_id,
        "roles": sorted(r.value for r in caller.roles),
        "credential": caller.credential,
        "credential_id": caller.credential_id,
        "attributes": dict(caller.attributes),
    }


def _caller_of(value: Any) -> Caller | None:
    if not isinstance(value, dict):
        return None
    return Caller(
        str(value["identity_id"]),
        frozenset(Role(r) for r in value["roles"]),
        str(value["credential"]),
        str(value["credential_id"]),
        {str(k): str(v) for k, v in value["attributes"].items()},
    )


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class SessionStore:
    """Sessions by opaque id, in the store; safe to use from any thread or process."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_age_s: float = MAX_AGE_S,
        max_per_person: int = MAX_PER_PERSON,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._max_age_s = max_age_s
        self._max_per_person = max_per_person
        self._max_sessions = max_sessions
        self._clock = clock

    def open(
        self,
        person: str,
        *,
        credential: str = "",
        caller: Caller | None = None,
        max_age_s: float | None = None,
    ) -> Session:
        """A new session for ``person``: its admin token, or the OIDC ``caller``; it lasts
        ``max_age_s`` (at most the store's maximum, which is also the default)."""
        now = self._clock()
        lasts = self._max_age_s if max_age_s is None else min(max_age_s, self._max_age_s)
        session = Session(
            id=secrets.token_urlsafe(32),
            person=person,
            credential=credential,
            csrf=secrets.token_urlsafe(32),
            expires=now + lasts,
            caller=caller,
        )
        contents = {"credential": credential, "csrf": session.csrf, "caller": _caller_json(caller)}
        table = dashboard_sessions
        with self._engine.begin() as connection:
            connection.execute(delete(table).where(table.c.expires_at <= _moment(now)))
            for who, cap in (
                (table.c.person == person, self._max_per_person),
                (None, self._max_sessions),
            ):
                oldest = select(table.c.id_hash).order_by(table.c.opened_at, table.c.id_hash)
                counted = select(func.count()).select_from(table)
                if who is not None:
                    oldest, counted = oldest.where(who), counted.where(who)
                surplus = int(connection.execute(counted).scalar_one()) - cap + 1
                if surplus > 0:
                    ended = [r for (r,) in connection.execute(oldest.limit(surplus))]
                    connection.execute(delete(table).where(table.c.id_hash.in_(ended)))
            connection.execute(
                insert(table).values(
                    id_hash=lookup_hash(session.id),
                    person=person,
                    sealed=seal(session.id, contents),
                    opened_at=_moment(now),
                    expires_at=_moment(session.expires),
                )
            )
        return session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        table = dashboard_sessions
        with self._engine.connect() as connection:
            row = connection.execute(
                select(table.c.person, table.c.sealed, table.c.expires_at).where(
                    table.c.id_hash == lookup_hash(session_id)
                )
            ).first()
        if row is None:
            return None
        expires_at = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        contents = unseal(session_id, row.sealed)
        if contents is None or expires_at.timestamp() <= self._clock():
            return None
        return Session(
            id=session_id,
            person=row.person,
            credential=str(contents.get("credential") or ""),
            csrf=str(contents["csrf"]),
            expires=expires_at.timestamp(),
            caller=_caller_of(contents.get("caller")),
        )

    def close(self, session_id: str | None) -> None:
        if not session_id:
            return
        table = dashboard_sessions
        with self._engine.begin() as connection:
            connection.execute(delete(table).where(table.c.id_hash == lookup_hash(session_id)))

    def __len__(self) -> int:
        table = dashboard_sessions
        with self._engine.connect() as connection:
            live = select(func.count()).where(table.c.expires_at > _moment(self._clock()))
            return int(connection.execute(live.select_from(table)).scalar_one())


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    # As bytes: compare_digest raises TypeError on a str that is not ASCII.
    return (
        isinstance(given, str)
        and bool(given)
        and secrets.compare_digest(given.encode(), expected.encode())
    )
