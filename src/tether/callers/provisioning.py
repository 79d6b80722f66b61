"""Making and ending callers in the store: PEP API keys, people, admin tokens.

What the ``tether pep`` and ``tether admin`` commands (and the first ``tether serve`` on a
fresh store) do. Every caller is an identity of the inventory: a PEP key is an identity
of kind ``api_key`` (origin ``cli``, attribute ``static_secret: true``, so reviews flag
it as a legacy static secret with its age); a person is a ``user``. Each change writes
an audit row in the same transaction, naming keys by id and tokens by ``jti``.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, select, update

from tether.callers.admin_tokens import (
    DEFAULT_TTL_S,
    PEOPLE_ROLES,
    IssuedAdminToken,
    issue_admin_token,
)
from tether.callers.api_keys import new_api_key
from tether.callers.directory import parse_roles
from tether.callers.errors import CallerConfigInvalid
from tether.callers.roles import Role
from tether.errors import Conflict, NotFound
from tether.store.audit import record_audit
from tether.store.caller_tables import api_keys, caller_roles
from tether.store.tables import identities
from tether.tokens import KeyRing

# Roles a static key may carry: machines that enforce or feed, never people or workloads.
API_KEY_ROLES = frozenset({Role.PEP, Role.INGEST})
CLI_ORIGIN = "cli"
LOCAL_PEP = "local-pep"
LOCAL_ADMIN = "local-admin"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,199}\Z")


@dataclass(frozen=True)
class IssuedApiKey:
    """A key just made: ``key`` is shown once and never stored."""

    identity_id: str
    key_id: str
    key: str
    roles: frozenset[Role]
    created_at: datetime


@dataclass(frozen=True)
class Bootstrap:
    """What the first start on a store made so that someone can call it."""

    pep: IssuedApiKey | None
    admin: IssuedAdminToken | None


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise CallerConfigInvalid(
            f"{what} `{name}` must be 1 to 200 characters: letters, digits and `._:@/+-`, "
            "starting with a letter or digit"
        )


def _roles_text(roles: Collection[Role]) -> str:
    return ", ".join(sorted(r.value for r in roles)) or "none"


def _set_roles(
    connection: Connection, identity_id: str, roles: Collection[Role], now: datetime
) -> None:
    connection.execute(delete(caller_roles).where(caller_roles.c.identity_id == identity_id))
    connection.execute(
        insert(caller_roles).values(
            identity_id=identity_id,
            roles=sorted(r.value for r in roles),
            origin=CLI_ORIGIN,
            updated_at=now,
        )
    )


def _identity(connection: Connection, identity_id: str) -> Any:
    return connection.execute(select(identities).where(identities.c.id == identity_id)).first()


# --- PEP API keys ----------------------------------------------------------------------


def add_api_key(
    engine: Engine,
    name: str,
    *,
    roles: Collection[Role] = (Role.PEP,),
    owner: str | None = None,
    actor: str = "cli",
    now: datetime | None = None,
) -> IssuedApiKey:
    """Make a PEP API key for a new caller ``name`` (or one whose key was revoked).

    Raises:
        CallerConfigInvalid: a bad name or a role a static key may not hold.
        Conflict: ``name`` is already an identity that is not a revoked PEP key.
    """
    _check_name(name, "caller name")
    wanted = frozenset(roles)
    if not wanted or not wanted <= API_KEY_ROLES:
        raise CallerConfigInvalid(
            f"a PEP key may hold the roles {_roles_text(API_KEY_ROLES)}, "
            f"not {_roles_text(wanted)}; people use `tether admin token`, "
            "workloads prove themselves with an SVID"
        )
    moment = now or datetime.now(UTC)
    secret = new_api_key()
    with engine.begin() as connection:
        row = _identity(connection, name)
        if row is None:
            connection.execute(
                insert(identities).values(
                    id=name,
                    kind="api_key",
                    workload_class=None,
                    owner=owner,
                    workload=None,
                    attributes={"static_secret": True, "credential": "tether_pep_key"},
                    status="active",
                    origin=CLI_ORIGIN,
                    created_at=moment,
                    updated_at=moment,
                )
            )
        elif row.origin == CLI_ORIGIN and row.kind == "api_key" and row.status != "active":
            values: dict[str, Any] = {"status": "active", "updated_at": moment}
            if owner is not None:
                values["owner"] = owner
            connection.execute(update(identities).where(identities.c.id == name).values(**values))
        else:
            raise Conflict(
                f"identity `{name}` already exists "
                f"({row.kind}, origin {row.origin}, {row.status}); choose another name"
                + (", or revoke its key first" if row.origin == CLI_ORIGIN else "")
            )
        connection.execute(
            insert(api_keys).values(
                key_id=secret.key_id,
                identity_id=name,
                salt=secret.salt,
                secret_hash=secret.secret_hash,
                created_at=moment,
                created_by=actor,
                revoked_at=None,
            )
        )
        _set_roles(connection, name, wanted, moment)
        record_audit(
            connection,
            actor=actor,
            action="caller.api_key.add",
            target=name,
            details={"key_id": secret.key_id, "roles": sorted(r.value for r in wanted)},
            at=moment,
        )
    return IssuedApiKey(name, secret.key_id, secret.text, wanted, moment)


def revoke_api_key(
    engine: Engine, name: str, *, actor: str = "cli", now: datetime | None = None
) -> list[str]:
    """Revoke every key of the PEP ``name``; its identity stays, status ``revoked``.

    Returns the ids of the keys revoked (empty when they already were).

    Raises:
        NotFound: there is no such identity.
        Conflict: the identity is not a PEP key made by ``tether pep add``.
    """
    moment = now or datetime.now(UTC)
    with engine.begin() as connection:
        row = _identity(connection, name)
        if row is None:
            raise NotFound(f"no caller `{name}`")
        if row.origin != CLI_ORIGIN or row.kind != "api_key":
            raise Conflict(
                f"identity `{name}` is not a PEP key made by `tether pep add` "
                f"({row.kind}, origin {row.origin})"
            )
        revoked = list(
            connection.execute(
                select(api_keys.c.key_id).where(
                    and_(api_keys.c.identity_id == name, api_keys.c.revoked_at.is_(None))
                )
            ).scalars()
        )
        connection.execute(
            update(api_keys)
            .where(and_(api_keys.c.identity_id == name, api_keys.c.revoked_at.is_(None)))
            .values(revoked_at=moment)
        )
        connection.execute(
            update(identities)
            .where(identities.c.id == name)
            .values(status="revoked", updated_at=moment)
        )
        record_audit(
            connection,
            actor=actor,
            action="caller.api_key.revoke",
            target=name,
            details={"key_ids": revoked},
            at=moment,
        )
    return revoked


def list_api_keys(engine: Engine, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every PEP key (active and revoked) with its caller, roles and age; never a secret."""
    moment = now or datetime.now(UTC)
    query = (
        select(
            api_keys.c.key_id,
            api_keys.c.identity_id,
            api_keys.c.created_at,
            api_keys.c.created_by,
            api_keys.c.revoked_at,
            identities.c.owner,
            identities.c.status,
            identities.c.last_used_at,
            caller_roles.c.roles,
        )
        .join(identities, identities.c.id == api_keys.c.identity_id)
        .outerjoin(caller_roles, caller_roles.c.identity_id == api_keys.c.identity_id)
        .order_by(api_keys.c.identity_id, api_keys.c.created_at)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    result = []
    for r in rows:
        created = _aware(r.created_at)
        result.append(
            {
                "name": r.identity_id,
                "key_id": r.key_id,
                "roles": sorted(x.value for x in parse_roles(r.roles)),
                "owner": r.owner,
                "status": "revoked" if r.revoked_at is not None else r.status,
                "static_secret": True,
                "created_at": created.isoformat(),
                "age_days": (moment - created).days,
                "created_by": r.created_by,
                "revoked_at": _aware(r.revoked_at).isoformat() if r.revoked_at else None,
                "last_used_at": _aware(r.last_used_at).isoformat() if r.last_used_at else None,
            }
        )
    return result


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- people and admin tokens -----------------------------------------------------------


def admin_token(
    engine: Engine,
    keys: KeyRing,
    user: str,
    *,
    issuer: str,
    roles: Collection[Role] | None = None,
    ttl_s: int = DEFAULT_TTL_S,
    actor: str = "cli",
    now: datetime | None = None,
) -> IssuedAdminToken:
    """Issue an admin token for the person ``user``.

    A user the store does not know is created (kind ``user``, origin ``cli``) holding
    ``roles`` (default: admin). For a known user, the token holds ``roles`` (default: all
    its people roles), each of which it must hold.

    Raises:
        CallerConfigInvalid: a bad name or TTL, or roles the user does not hold.
        Conflict: ``user`` is an identity of another kind, or not active.
    """
    _check_name(user, "user name")
    asked = frozenset(roles) if roles else None
    if asked is not None and not asked <= PEOPLE_ROLES:
        raise CallerConfigInvalid(
            f"people hold the roles {_roles_text(PEOPLE_ROLES)}, not {_roles_text(asked)}"
        )
    moment = now or datetime.now(UTC)
    keys.active()  # a fresh store gets its signing key now, not inside the transaction below
    with engine.begin() as connection:
        row = _identity(connection, user)
        if row is None:
            granted = asked or frozenset({Role.ADMIN})
            connection.execute(
                insert(identities).values(
                    id=user,
                    kind="user",
                    workload_class=None,
                    owner=None,
                    workload=None,
                    attributes={},
                    status="active",
                    origin=CLI_ORIGIN,
                    created_at=moment,
                    updated_at=moment,
                )
            )
            _set_roles(connection, user, granted, moment)
            record_audit(
                connection,
                actor=actor,
                action="caller.user.add",
                target=user,
                details={"roles": sorted(r.value for r in granted)},
                at=moment,
            )
        else:
            if row.kind != "user" or row.status != "active":
                raise Conflict(
                    f"identity `{user}` is a {row.status} `{row.kind}`; "
                    "admin tokens are for active `user` identities"
                )
            stored = connection.execute(
                select(caller_roles.c.roles).where(caller_roles.c.identity_id == user)
            ).scalar()
            held = parse_roles(stored) & PEOPLE_ROLES
            if not held:
                raise CallerConfigInvalid(
                    f"user `{user}` holds no tether roles; declare `tether_roles: [admin]` "
                    "(or auditor, approver) for it in the estate"
                )
            if asked is not None and not asked <= held:
                raise CallerConfigInvalid(
                    f"user `{user}` holds {_roles_text(held)}, not {_roles_text(asked - held)}"
                )
            granted = asked or held
        issued = issue_admin_token(
            keys, user=user, roles=granted, ttl_s=ttl_s, issuer=issuer, now=moment
        )
        record_audit(
            connection,
            actor=actor,
            action="caller.admin_token.issue",
            target=user,
            details={
                "jti": issued.jti,
                "roles": sorted(r.value for r in granted),
                "expires_at": issued.expires_at.isoformat(),
            },
            at=moment,
        )
    return issued


# --- the first start -------------------------------------------------------------------


def bootstrap(engine: Engine, keys: KeyRing, *, issuer: str) -> Bootstrap:
    """Make sure someone can call a fresh store: a PEP key and an admin, if absent.

    ``local-pep`` is made when no active API key exists, ``local-admin`` (with a token)
    when no active identity holds the admin role. What exists is left alone, so the
    secrets are shown once: on the start that made them.
    """
    with engine.connect() as connection:
        has_key = connection.execute(
            select(api_keys.c.key_id)
            .join(identities, identities.c.id == api_keys.c.identity_id)
            .where(and_(api_keys.c.revoked_at.is_(None), identities.c.status == "active"))
            .limit(1)
        ).first()
        admins = connection.execute(
            select(caller_roles.c.roles)
            .join(identities, identities.c.id == caller_roles.c.identity_id)
            .where(identities.c.status == "active")
        ).scalars()
        has_admin = any(Role.ADMIN in parse_roles(r) for r in admins)
    pep = None if has_key else add_api_key(engine, LOCAL_PEP, actor="serve")
    admin = (
        None if has_admin else admin_token(engine, keys, LOCAL_ADMIN, issuer=issuer, actor="serve")
    )
    return Bootstrap(pep, admin)
