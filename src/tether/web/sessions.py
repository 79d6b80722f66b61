"""Dashboard sessions: an opaque id in an ``HttpOnly``, ``SameSite=Strict`` cookie, the
session itself kept server-side (in memory: a restart signs everyone out).

A session holds the credential its person signed in with (an admin token), never sent back
to the browser, and the session's CSRF token. Each request authenticates that credential
again, so a removed role or an expired token ends what the session may do at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

COOKIE = "tether_session"
SIGNIN_COOKIE = "tether_signin"  # the sign-in form's CSRF token (double submit)
MAX_AGE_S = 8 * 3600


@dataclass(frozen=True)
class Session:
    id: str
    credential: str
    csrf: str
    expires: float


class SessionStore:
    """Sessions by opaque id; safe to use from the event loop and worker threads."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._max_age_s = max_age_s

    def open(self, credential: str) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            credential=credential,
            csrf=secrets.token_urlsafe(32),
            expires=time.monotonic() + self._max_age_s,
        )
        with self._lock:
            now = time.monotonic()
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            self._sessions[session.id] = session
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


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    # As bytes: compare_digest raises TypeError on a str that is not ASCII.
    return (
        isinstance(given, str)
        and bool(given)
        and secrets.compare_digest(given.encode(), expected.encode())
    )
