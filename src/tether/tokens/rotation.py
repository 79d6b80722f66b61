"""Signing keys across processes: noticing a rotation made elsewhere, and rotating safely.

A server's :class:`~tether.tokens.KeyRing` is loaded once; ``tether keys rotate`` runs in
another process. :class:`KeyWatch` compares a fingerprint of the ``signing_keys`` table at
most every half second (and at once for a token whose ``kid`` it does not know) and
reloads the ring when it changed, so a server signs with the new key and verifies tokens
the new key signed. :func:`rotate` keeps the old key verifying for as long as a token it
signed may live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from tether.store.key_tables import signing_keys
from tether.tokens import ledger
from tether.tokens.keys import KeyRing, SigningKey

CHECK_EVERY_S = 0.5
#: A task token's life when its identity's class sets no ``token_ttl`` (DESIGN "Revocation").
DEFAULT_TOKEN_TTL_S = 300
#: Added to the overlap for servers that have not seen a rotation yet.
ROTATION_MARGIN_S = 60


class KeyWatch:
    """Reloads a key ring when the stored keys changed; thread-safe."""

    def __init__(self, engine: Engine, keys: KeyRing) -> None:
        self._engine = engine
        self._keys = keys
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._fingerprint: tuple[Any, ...] | None = None

    def expire(self) -> None:
        """Check the stored keys at the next use (a change notice said so)."""
        self._checked = float("-inf")

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the keys changed (checked at most every half second unless ``force``);
        ``True`` if it reloaded."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY_S:
            return False
        with self._lock:
            self._checked = now
            with self._engine.connect() as connection:
                fingerprint = tuple(
                    connection.execute(
                        select(
                            func.count(),
                            func.max(signing_keys.c.created_at),
                            func.max(signing_keys.c.verify_until),
                        ).select_from(signing_keys)
                    ).one()
                )
            if fingerprint == self._fingerprint:
                return False
            self._keys.reload()
            self._fingerprint = fingerprint
            return True


def rotate(
    keys: KeyRing,
    engine: Engine,
    classes: Mapping[str, Mapping[str, Any]],
    now: datetime,
    *,
    alg: str = "ES256",
) -> SigningKey:
    """Make a new active key; the old ones verify until every token they signed expired.

    The overlap is the longest outstanding token's remaining life or the longest a token
    may live (the classes' ``token_ttl``), whichever is longer, plus a margin.
    """
    longest = ledger.longest_outstanding(engine, now)
    outstanding = (longest - now).total_seconds() if longest else 0.0
    ttls = [int(s.get("token_ttl_seconds", DEFAULT_TOKEN_TTL_S)) for s in classes.values()]
    overlap = max(outstanding, float(max(ttls, default=DEFAULT_TOKEN_TTL_S))) + ROTATION_MARGIN_S
    return keys.rotate(alg=alg, retire_after=timedelta(seconds=overlap))
