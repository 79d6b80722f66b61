"""The admin audit log: one row per admin action, in the transaction that makes it.

Every package that changes something on an operator's behalf (callers, approvals,
signals, drift responses and exceptions, reviews, retention) writes here, so the audit
record belongs to the store, below all of them. Rows are appended to the ``audit_log``
hash chain (:func:`tether.store.record_chain.append_audit`); they commit with the change
they describe or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from tether.store.record_chain import append_audit


def record_audit(
    connection: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any],
    at: datetime | None = None,
) -> None:
    """Append one row to the audit log, inside the caller's transaction."""
    append_audit(
        connection,
        [{"at": at, "actor": actor, "action": action, "target": target, "details": details}],
    )
