"""Making and ending callers in the store: keys, people, tokens, the first start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from callers_world import World
from sqlalchemy import Engine, select

from tether.callers import (
    Role,
    add_api_key,
    admin_token,
    bootstrap,
    list_api_keys,
    revoke_api_key,
    verify_admin_token,
)
from tether.callers.errors import CallerConfigInvalid
from tether.errors import Conflict, NotFound
from tether.store.caller_tables import api_keys, caller_roles
from tether.store.tables import audit_log, identities
from tether.tokens import KeyRing, load_or_create_master_key


def audit(engine: Engine, action: str) -> list[dict[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(select(audit_log).where(audit_log.c.action == action))
        return [dict(r) for r in rows.mappings()]


def row(engine: Engine, table: object, **where: str) -> dict[str, object] | None:
    with engine.connect() as connection:
        query = select(table)  # type: ignore[call-overload]
        for column, value in where.items():
            query = query.where(table.c[column] == value)  # type: ignore[attr-defined]
        found = connection.execute(query).mappings().first()
        return dict(found) if found else None


def test_a_pep_key_is_an_inventoried_static_secret(store: Engine) -> None:
    issued = add_api_key(store, "gw-1", owner="team-edge")
    identity = row(store, identities, id="gw-1")
    assert identity is not None
    assert (identity["kind"], identity["origin"], identity["status"]) == (
        "api_key",
        "cli",
        "active",
    )
    assert identity["attributes"] == {"static_secret": True, "credential": "tether_pep_key"}
    assert identity["owner"] == "team-edge"
    stored = row(store, api_keys, key_id=issued.key_id)
    assert stored is not None
    secret = issued.key.split("_", 2)[2]
    assert secret not in json.dumps(stored, default=str)
    assert row(store, caller_roles, identity_id="gw-1")["roles"] == ["pep"]  # type: ignore[index]
    [made] = audit(store, "caller.api_key.add")
    assert made["details"] == {"key_id": issued.key_id, "roles": ["pep"]}


def test_names_and_roles_are_checked(store: Engine) -> None:
    for name in ("", "-x", "a b", "x" * 201, "a\nb"):
        with pytest.raises(CallerConfigInvalid):
            add_api_key(store, name)
    for roles in ([Role.ADMIN], [Role.WORKLOAD], [Role.AUDITOR], []):
        with pytest.raises(CallerConfigInvalid):
            add_api_key(store, "gw", roles=roles)
    assert add_api_key(store, "collector", roles=[Role.INGEST]).roles == frozenset({Role.INGEST})


def test_one_key_per_caller_until_revoked(store: Engine) -> None:
    first = add_api_key(store, "gw-1")
    with pytest.raises(Conflict, match="revoke its key first"):
        add_api_key(store, "gw-1")
    assert revoke_api_key(store, "gw-1") == [first.key_id]
    assert revoke_api_key(store, "gw-1") == []
    assert row(store, identities, id="gw-1")["status"] == "revoked"  # type: ignore[index]
    second = add_api_key(store, "gw-1")
    assert row(store, identities, id="gw-1")["status"] == "active"  # type: ignore[index]
    statuses = {k["key_id"]: k["status"] for k in list_api_keys(store)}
    assert statuses == {first.key_id: "revoked", second.key_id: "active"}
    assert len(audit(store, "caller.api_key.revoke")) == 2


def test_only_cli_made_keys_can_be_revoked_here(world: World) -> None:
    with pytest.raises(NotFound):
        revoke_api_key(world.engine, "nobody")
    with pytest.raises(Conflict, match="not a PEP key"):
        revoke_api_key(world.engine, "gateway")
    with pytest.raises(Conflict, match="already exists"):
        add_api_key(world.engine, "gateway")


def test_the_listing_shows_age_and_never_a_secret(store: Engine) -> None:
    issued = add_api_key(store, "gw-1")
    [listed] = list_api_keys(store)
    assert listed["name"] == "gw-1"
    assert listed["key_id"] == issued.key_id
    assert listed["roles"] == ["pep"]
    assert listed["static_secret"] is True
    assert listed["age_days"] == 0
    assert issued.key.split("_", 2)[2] not in json.dumps(listed)
    assert not {"salt", "secret_hash", "key"} & set(listed)


def test_an_unknown_user_is_made_an_admin_and_audited_by_jti(world: World) -> None:
    issued = admin_token(world.engine, world.keys, "dave", issuer="t")
    assert issued.roles == frozenset({Role.ADMIN})
    user = row(world.engine, identities, id="dave")
    assert user is not None
    assert (user["kind"], user["origin"]) == ("user", "cli")
    claims = verify_admin_token(world.keys, issued.token)
    assert (claims.user, claims.jti) == ("dave", issued.jti)
    [logged] = audit(world.engine, "caller.admin_token.issue")
    assert logged["details"]["jti"] == issued.jti  # type: ignore[index]
    assert issued.token not in json.dumps(logged, default=str)
    assert audit(world.engine, "caller.user.add")


def test_a_known_user_gets_only_roles_it_holds(world: World) -> None:
    assert admin_token(world.engine, world.keys, "carol", issuer="t").roles == frozenset(
        {Role.AUDITOR, Role.APPROVER}
    )
    with pytest.raises(CallerConfigInvalid, match="not admin"):
        admin_token(world.engine, world.keys, "carol", issuer="t", roles=[Role.ADMIN])
    with pytest.raises(Conflict, match="`user` identities"):
        admin_token(world.engine, world.keys, "gateway", issuer="t")
    with pytest.raises(CallerConfigInvalid, match="people hold"):
        admin_token(world.engine, world.keys, "carol", issuer="t", roles=[Role.PEP])
    with pytest.raises(CallerConfigInvalid, match="1 s to 24 h"):
        admin_token(world.engine, world.keys, "carol", issuer="t", ttl_s=25 * 3600)


def test_a_user_without_tether_roles_gets_no_token(world: World) -> None:
    with pytest.raises(CallerConfigInvalid, match="holds no tether roles"):
        admin_token(world.engine, world.keys, "alice", issuer="t")


def test_the_first_start_makes_a_key_and_an_admin_once(store: Engine, tmp_path: Path) -> None:
    keys = KeyRing(store, load_or_create_master_key(tmp_path / "master.key"))
    made = bootstrap(store, keys, issuer="t")
    assert made.pep is not None
    assert made.admin is not None
    assert (made.pep.identity_id, made.admin.user) == ("local-pep", "local-admin")
    again = bootstrap(store, keys, issuer="t")
    assert (again.pep, again.admin) == (None, None)
