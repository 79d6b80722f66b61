"""Dashboard sessions: an opaque id in an ``HttpOnly``, ``SameSite=Strict`` cookie, the
session itself kept server-side (in memory: a restart signs everyone out).

A session signed in with an admin token holds that credential, never sent back to the
browser, and each request authenticates it again, so a removed role or an expired token
ends what the session may do at once. A session signed in through OIDC holds the person
the issuer's ID token proved (identity and roles, fixed at sign-in) for at most
``MAX_AGE_S``. Every session has its own CSRF token.

Sessions are capped: at most ``MAX_PER_PERSON`` for one person (signing in once more
ends that person's oldest) and ``MAX_SESSIONS`` in all (the oldest is ended), so a flood
of sign-ins cannot grow the table without bound.

Over TLS the cookies carry the ``__Host-`` prefix (the browser then insists on
``Secure``, ``Path=/`` and no ``Domain``); plain HTTP (the local demo) uses the bare names,
which a browser would refuse with the prefix.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from tether.callers import Caller

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
    expires: float
    opened: float
    caller: Caller | None = None  # an OIDC session: who the ID token proved


def cookie_name(request: HTTPConnection, name: str) -> str:
    """``name``, with the ``__Host-`` prefix when the request came over TLS."""
    return HOST_PREFIX + name if request.url.scheme == "https" else name


class SessionStore:
    """Sessions by opaque id; safe to use from the event loop and worker threads."""

    def __init__(
        self,
        *,
        max_age_s: float = MAX_AGE_S,
        max_per_person: int = MAX_PER_PERSON,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._max_age_s = max_age_s
        self._max_per_person = max_per_person
        self._max_sessions = max_sessions

    def open(self, person: str, *, credential: str = "", caller: Caller | None = None) -> Session:
        """A new session for ``person``: its admin token, or the OIDC ``caller``."""
        now = time.monotonic()
        session = Session(
            id=secrets.token_urlsafe(32),
            person=person,
            credential=credential,
            csrf=secrets.token_urlsafe(32),
            expires=now + self._max_age_s,
            opened=now,
            caller=caller,
        )
        with self._lock:
            live = {k: s for k, s in self._sessions.items() if s.expires > now}
            own = sorted((s for s in live.values() if s.person == person), key=_opened)
            for old in own[: max(0, len(own) - self._max_per_person + 1)]:
                del live[old.id]
            if len(live) >= self._max_sessions:
                for old in sorted(live.values(), key=_opened)[: len(live) - self._max_sessions + 1]:
                    del live[old.id]
            live[session.id] = session
            self._sessions = live
        return session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.expires <= time.monotonic():
            return None
        return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


def _opened(session: Session) -> float:
    return session.opened


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    # As bytes: compare_digest raises TypeError on a str that is not ASCII.
    return (
        isinstance(given, str)
        and bool(given)
        and secrets.compare_digest(given.encode(), expected.encode())
    )
