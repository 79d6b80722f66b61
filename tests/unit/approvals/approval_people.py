"""Who is in an approval test's store: people who might decide, and machines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert

from tether.callers import Role, add_api_key, admin_token
from tether.store.tables import identities
from tether.tokens import KeyRing, load_or_create_master_key


@dataclass(frozen=True)
class People:
    """``carol``, ``dave`` and ``olga`` approve, ``erin`` audits, ``gateway`` is a PEP key,
    ``billing-bot`` an agent owned by ``olga``."""

    engine: Engine


def make_people(store: Engine, folder: Path) -> People:
    keys = KeyRing(store, load_or_create_master_key(folder / "master.key"))
    for user, role in (
        ("carol", Role.APPROVER),
        ("dave", Role.APPROVER),
        ("olga", Role.APPROVER),
        ("erin", Role.AUDITOR),
    ):
        admin_token(store, keys, user, issuer="tests", roles=[role], actor="tests")
    add_api_key(store, "gateway", actor="tests")
    now = datetime.now(UTC)
    with store.begin() as connection:
        connection.execute(
            insert(identities).values(
                id="billing-bot",
                kind="agent",
                owner="olga",
                attributes={},
                status="active",
                origin="estate",
                created_at=now,
                updated_at=now,
            )
        )
    return People(store)
