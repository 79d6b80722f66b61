"""Who a guarded call is for: the innermost :func:`acting_as` of the caller's context.

An agent acts under its task token (a :class:`~tether.sdk.TokenGrant`); a PEP that
vouches for its subject names a :class:`~tether.sdk.Subject`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from tether.sdk.models import Subject, TokenGrant

Actor = Subject | TokenGrant

_current_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "tether_sdk_actor", default=None
)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Guarded calls inside the block are decided for ``actor`` (the agent's task token,
    or a subject). It is a ``contextvars`` binding: asyncio tasks started inside the block
    see it, a new thread does not (give that thread's tools ``actor=``)."""
    reset = _current_actor.set(actor)
    try:
        yield actor
    finally:
        _current_actor.reset(reset)


def current_actor() -> Actor | None:
    """The actor of the innermost :func:`acting_as`, if any."""
    return _current_actor.get()
