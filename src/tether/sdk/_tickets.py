"""The approvals a guarded tool is waiting for, so that the retry of a call carries its ticket.

tether binds an approval to exactly one request (subject, action, resource, context
without ``approval_id``); the guard remembers the ticket under the same parts, and the
next identical call asks again with ``context.approval_id``. A task token's subject is
its identity and task (a renewed token of the same task is the same subject). Bounded:
the oldest tickets are forgotten first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from tether.sdk.events import canonical
from tether.sdk.models import Resource, Subject, TokenGrant

MAX_PENDING = 1024


class PendingApprovals:
    """Ticket ids by request, shared by the threads calling one tool."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self._limit = limit
        self._tickets: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(
        actor: Subject | TokenGrant, action: str, resource: Resource, context: Mapping[str, Any]
    ) -> str:
        if isinstance(actor, TokenGrant):
            who: Any = ["token", actor.identity, actor.task_id]
        else:
            who = ["subject", actor.type, actor.id, dict(actor.properties)]
        parts = [who, action, str(resource), dict(resource.properties), dict(context)]
        return hashlib.sha256(canonical(parts)).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._tickets.get(key)

    def remember(self, key: str, ticket_id: str) -> None:
        with self._lock:
            self._tickets[key] = ticket_id
            self._tickets.move_to_end(key)
            while len(self._tickets) > self._limit:
                self._tickets.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._tickets.pop(key, None)
