"""Read models over the store: identities and recorded decisions, as JSON-able dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from tether.errors import InvalidRequest, NotFound
from tether.store.tables import decisions, entitlements, identities


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in row.items()}


def _iso(moment: datetime) -> str:
    # Every stored time is UTC; SQLite hands it back without its offset, PostgreSQL with.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def list_identities(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(identities).order_by(identities.c.id)).mappings().all()
    return [_jsonable(dict(r)) for r in rows]


def show_identity(engine: Engine, identity_id: str) -> dict[str, Any]:
    with engine.connect() as connection:
        row = (
            connection.execute(select(identities).where(identities.c.id == identity_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no identity `{identity_id}`")
        grants = (
            connection.execute(
                select(entitlements).where(entitlements.c.identity_id == identity_id)
            )
            .mappings()
            .all()
        )
    result = _jsonable(dict(row))
    result["entitlements"] = [dict(g) for g in grants]
    return result


def list_decisions(
    engine: Engine,
    *,
    limit: int = 100,
    subject: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: str | None = None,
    caller: str | None = None,
) -> list[dict[str, Any]]:
    query = select(decisions).order_by(decisions.c.seq.desc()).limit(limit)
    if caller:
        query = query.where(decisions.c.caller == caller)
    if subject:
        query = query.where(decisions.c.subject_id == subject)
    if action:
        query = query.where(decisions.c.action == action)
    if outcome:
        query = query.where(decisions.c.outcome == outcome)
    if since:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidRequest(f"`since` must be an ISO 8601 time, got `{since}`") from None
        # Stored times are UTC; SQLite compares them as text, so the bound must be UTC too.
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        query = query.where(decisions.c.at >= moment)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return [_jsonable(dict(r)) for r in rows]
