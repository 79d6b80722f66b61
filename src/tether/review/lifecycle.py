"""Identity lifecycle: owner, age, last use, credential and rotation of every identity.

For each identity of the inventory :func:`identity_lifecycles` works out:

* **last used**: the latest of its recorded last use (tether callers), decision (as
  subject), ingested event, task opened and task token issued;
* **credential**: what it authenticates with, and whether that is a long-lived static
  secret. In order: a live PEP API key (``tether_pep_key``, last rotated = the newest key's
  creation); an identity of kind ``api_key`` (its ``credential`` attribute, rotated at its
  ``rotated_at`` attribute, else when tether first recorded it); a discovered AWS principal
  seen with a long-term access key (``AKIA...``: in use since at least its first sighting,
  so its age is a lower bound); a bound workload (``workload_proof``: JWT-SVID or OIDC,
  short-lived by construction); a ``user`` (short-lived admin tokens); an ``oauth_app``
  (``oauth_grant``, see :mod:`tether.review.grants`);
* **flags**, each a review row type of ``frameworks.yaml``: ``rotation_overdue`` (a static
  secret older than its class's ``rotate_every``, default 90 days), ``stale`` (unused for
  ``stale_days``, default 90; never used and created that long ago counts),
  ``orphaned`` (no owner, or an owner that is an identity no longer active or offboarded;
  an owner that is not an inventory identity is taken for a team), ``static_secret``
  and ``credential_expiring`` (an ``expires`` attribute within 30 days).

Offboarded identities are listed with their offboarding and get no other flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from tether.estate._fields import parse_moment
from tether.review.offboard import OFFBOARDED, OffboardRecord, offboard_records
from tether.review.report_model import ReportSection, Row, section
from tether.store.caller_tables import api_keys
from tether.store.tables import decisions, identities, workload_classes
from tether.store.telemetry_tables import events
from tether.store.token_tables import issued_tokens, tasks
from tether.tokens.ledger import utc

DEFAULT_STALE_DAYS = 90
DEFAULT_ROTATE_EVERY_S = 90 * 86400
EXPIRING_WITHIN = timedelta(days=30)
FLAGS = ("rotation_overdue", "stale", "orphaned", "static_secret", "credential_expiring")


@dataclass(frozen=True)
class Credential:
    """What an identity authenticates with."""

    type: str
    static: bool  # a long-lived static secret (a monitored exception)
    since: datetime | None  # last rotated, or in use since at least (see ``exact``)
    exact: bool = True  # False: ``since`` is only a lower bound of its age
    expiry: str = "short-lived"  # short-lived | never | an ISO 8601 moment | unknown


@dataclass(frozen=True)
class IdentityLifecycle:
    identity_id: str
    kind: str
    workload_class: str | None
    owner: str | None
    status: str
    origin: str
    created_at: datetime
    last_used_at: datetime | None
    credential: Credential
    rotate_every_days: int | None  # the policy, for static secrets only
    flags: tuple[tuple[str, str], ...]  # (flag, why)
    offboarding: OffboardRecord | None
    attributes: Mapping[str, Any] = field(default_factory=dict)  # the inventory's

    def credential_age_days(self, now: datetime) -> int | None:
        since = self.credential.since
        return None if since is None else max(0, (now - since).days)

    def to_json(self, now: datetime) -> dict[str, Any]:
        credential = self.credential
        return {
            "identity": self.identity_id,
            "kind": self.kind,
            "class": self.workload_class,
            "owner": self.owner,
            "status": self.status,
            "origin": self.origin,
            "created_at": self.created_at.isoformat(),
            "last_used_at": _iso(self.last_used_at),
            "last_rotated_at": _iso(credential.since) if credential.exact else None,
            "credential": credential.type,
            "credential_age_days": self.credential_age_days(now),
            "credential_age_is_lower_bound": not credential.exact,
            "static_secret": credential.static,
            "expiry": credential.expiry,
            "rotate_every_days": self.rotate_every_days,
            "flags": [flag for flag, _ in self.flags],
            "why": dict(self.flags),
            "offboarded_at": _iso(self.offboarding.offboarded_at) if self.offboarding else None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def identity_lifecycles(
    engine: Engine,
    *,
    now: datetime | None = None,
    stale_days: int = DEFAULT_STALE_DAYS,
    default_rotate_every_s: int = DEFAULT_ROTATE_EVERY_S,
    identity: str | None = None,
) -> list[IdentityLifecycle]:
    """The lifecycle of every identity (or only of ``identity``), by id."""
    moment = now or datetime.now(UTC)
    offboarded = offboard_records(engine)
    with engine.connect() as connection:
        chosen = select(*_COLUMNS, *_last_activity()).order_by(identities.c.id)
        if identity is not None:
            chosen = chosen.where(identities.c.id == identity)
        rows = connection.execute(chosen).mappings().all()
        rotate = {
            r.name: (r.settings or {}).get("rotate_every_seconds")
            for r in connection.execute(select(workload_classes))
        }
        keys = _newest_live_keys(connection)
        tokens = _last_token(connection, identity)
    statuses = {r["id"]: r["status"] for r in rows}
    result = []
    for row in rows:
        identity_id = row["id"]
        credential = _credential(row, keys.get(identity_id))
        # All naive (SQLite) or all aware (PostgreSQL): compared as read, made UTC once.
        moments = [m for m in (row["last_used_at"], *(row[n] for n in _ACTIVITY)) if m is not None]
        last = utc(max(moments)) if moments else None
        token = tokens.get(identity_id)
        if token is not None and (last is None or token > last):
            last = token
        every = rotate.get(row["workload_class"]) or default_rotate_every_s
        record = offboarded.get(identity_id)
        fields: dict[str, Any] = {
            "identity_id": identity_id,
            "kind": row["kind"],
            "workload_class": row["workload_class"],
            "owner": row["owner"],
            "status": row["status"],
            "origin": row["origin"],
            "created_at": utc(row["created_at"]),
            "last_used_at": last,
            "credential": credential,
            "rotate_every_days": int(every) // 86400 if credential.static else None,
            "offboarding": record,
            "attributes": row["attributes"] if isinstance(row["attributes"], Mapping) else {},
        }
        flags = (
            ()
            if record or row["status"] == OFFBOARDED
            else _flags(
                credential,
                fields["created_at"],
                last,
                row["owner"],
                moment,
                stale_days,
                int(every),
                statuses,
                offboarded,
            )
        )
        result.append(IdentityLifecycle(**fields, flags=flags))
    return result


def _newest_live_keys(connection: Connection) -> dict[str, datetime]:
    query = (
        select(api_keys.c.identity_id, func.max(api_keys.c.created_at))
        .where(api_keys.c.revoked_at.is_(None))
        .group_by(api_keys.c.identity_id)
    )
    return {identity: utc(at) for identity, at in connection.execute(query)}


_COLUMNS = tuple(
    identities.c[name]
    for name in (
        "id",
        "kind",
        "workload_class",
        "owner",
        "workload",
        "attributes",
        "status",
        "origin",
        "created_at",
        "last_used_at",
    )
)
_ACTIVITY = ("last_decision", "last_event", "last_task")


def _last_activity() -> list[Any]:
    """Each identity's latest decision (as subject), event and task, as columns.

    A correlated ``max`` per identity, which SQLite and PostgreSQL both answer from the
    ``(identity, at)`` index with one seek per identity instead of reading every row of
    those tables: the cost follows the inventory, not the history (1,000,000 events cost
    as little as 1,000).
    """
    indexed = (
        (decisions.c.subject_id, decisions.c.at),
        (events.c.identity_id, events.c.at),
        (tasks.c.identity_id, tasks.c.opened_at),
    )
    return [
        select(func.max(at)).where(who == identities.c.id).scalar_subquery().label(name)
        for name, (who, at) in zip(_ACTIVITY, indexed, strict=True)
    ]


def _last_token(connection: Connection, only: str | None = None) -> dict[str, datetime]:
    """The latest task token issued to each identity (or to ``only``), as subject or actor
    (tokens carry no identity index, and are few beside events: grouped)."""
    latest: dict[str, datetime] = {}
    for who in (issued_tokens.c.identity_id, issued_tokens.c.actor_id):
        grouped = (
            select(who, func.max(issued_tokens.c.issued_at))
            .where(who.is_not(None) if only is None else who == only)
            .group_by(who)
        )
        for identity, at in connection.execute(grouped):
            if at is not None and (identity not in latest or utc(at) > latest[identity]):
                latest[identity] = utc(at)
    return latest


def _credential(row: Mapping[Any, Any], newest_key: datetime | None) -> Credential:
    attributes = row["attributes"] if isinstance(row["attributes"], Mapping) else {}
    created = utc(row["created_at"])
    if newest_key is not None:
        return Credential("tether_pep_key", True, newest_key, expiry="never")
    if row["kind"] == "api_key":
        rotated = parse_moment(attributes.get("rotated_at"))
        expires = parse_moment(attributes.get("expires"))
        return Credential(
            str(attributes.get("credential") or "api_key"),
            True,
            rotated or created,
            exact=rotated is not None or row["origin"] != "discovered",
            expiry=expires.isoformat() if expires else "never",
        )
    principal = attributes.get("principal_attributes")
    access_key = principal.get("access_key_id") if isinstance(principal, Mapping) else None
    if isinstance(access_key, str) and access_key.startswith("AKIA"):
        first_seen = parse_moment(attributes.get("first_seen")) or created
        return Credential("aws_access_key", True, first_seen, exact=False, expiry="never")
    if row["workload"]:
        return Credential("workload_proof", False, None)
    if row["kind"] == "user":
        return Credential("admin_token", False, None)
    if row["kind"] == "oauth_app":
        return Credential("oauth_grant", False, None, expiry="unknown")
    if isinstance(access_key, str) and access_key.startswith("ASIA"):
        return Credential("aws_temporary_credentials", False, None)
    return Credential("unknown", False, None, expiry="unknown")


def _flags(
    credential: Credential,
    created_at: datetime,
    last_used_at: datetime | None,
    owner_of_record: str | None,
    now: datetime,
    stale_days: int,
    rotate_every_s: int,
    statuses: Mapping[str, str],
    offboarded: Mapping[str, OffboardRecord],
) -> tuple[tuple[str, str], ...]:
    flags: list[tuple[str, str]] = []
    if credential.static and credential.since is not None:
        age = now - credential.since
        if age.total_seconds() > rotate_every_s:
            qualifier = "at least " if not credential.exact else ""
            flags.append(
                (
                    "rotation_overdue",
                    f"`{credential.type}` is {qualifier}{age.days} days old; policy: rotate "
                    f"every {rotate_every_s // 86400} days",
                )
            )
    horizon = now - timedelta(days=stale_days)
    if last_used_at is None and created_at <= horizon:
        flags.append(("stale", f"never used; created {created_at.date().isoformat()}"))
    elif last_used_at is not None and last_used_at <= horizon:
        days = (now - last_used_at).days
        flags.append(("stale", f"unused for {days} days (threshold {stale_days})"))
    owner = (owner_of_record or "").strip()
    if not owner:
        flags.append(("orphaned", "no owner"))
    elif owner in offboarded:
        flags.append(("orphaned", f"owner `{owner}` is offboarded"))
    elif owner in statuses and statuses[owner] != "active":
        flags.append(("orphaned", f"owner `{owner}` is {statuses[owner]}"))
    if credential.static:
        flags.append(
            ("static_secret", f"long-lived `{credential.type}` (expiry: {credential.expiry})")
        )
    if credential.expiry not in ("short-lived", "never", "unknown"):
        expires = datetime.fromisoformat(credential.expiry)
        if expires <= now + EXPIRING_WITHIN:
            flags.append(("credential_expiring", f"expires {credential.expiry}"))
    return tuple(flags)


# --- report sections ------------------------------------------------------------------------

LIFECYCLE_COLUMNS = (
    "identity",
    "finding",
    "why",
    "owner",
    "credential",
    "credential_age_days",
    "last_used_at",
)


def lifecycle_sections(
    items: Iterable[IdentityLifecycle], *, now: datetime
) -> tuple[ReportSection, ReportSection]:
    """Two sections: lifecycle findings (one row per identity and flag) and offboardings."""
    items = list(items)
    rows: list[Row] = []
    counts = dict.fromkeys(FLAGS, 0)
    for item in items:
        for flag, why in item.flags:
            counts[flag] += 1
            rows.append(
                {
                    "row_type": flag,
                    "row_id": f"{flag}:{item.identity_id}",
                    "identity": item.identity_id,
                    "finding": flag,
                    "why": why,
                    "owner": item.owner,
                    "credential": item.credential.type,
                    "credential_age_days": item.credential_age_days(now),
                    "last_used_at": _iso(item.last_used_at),
                }
            )
    gone = [i for i in items if i.offboarding is not None]
    findings = section(
        "lifecycle",
        "Identity lifecycle",
        LIFECYCLE_COLUMNS,
        rows,
        summary={"identities": len(items), **counts},
        frameworks={"owasp-asi": ["ASI03"], "nist-csf": ["PR.AA-01", "ID.AM-08"]},
        description=(
            "Identities whose credential is overdue for rotation, that went unused, that "
            "have no (active) owner, or that hold long-lived static secrets."
        ),
        chart="bar",
    )
    offboarded = section(
        "offboarded",
        "Offboarded identities",
        ("identity", "offboarded_at", "offboarded_by", "reason", "tasks_ended", "tokens_revoked"),
        [
            {
                "row_type": "offboarded",
                "row_id": f"offboarded:{i.identity_id}",
                "identity": i.identity_id,
                "offboarded_at": i.offboarding.offboarded_at.isoformat(),
                "offboarded_by": i.offboarding.offboarded_by,
                "reason": i.offboarding.reason,
                "tasks_ended": len(i.offboarding.revoked.get("tasks_ended", [])),
                "tokens_revoked": len(i.offboarding.revoked.get("tokens_revoked", [])),
            }
            for i in gone
            if i.offboarding is not None
        ],
        summary={"offboarded": len(gone)},
        description="Identities offboarded: every token revoked, tasks ended, evidence kept.",
    )
    return findings, offboarded


def review_sections(
    engine: Engine, *, now: datetime, since: datetime, identity: str | None
) -> list[ReportSection]:
    """The lifecycle sections of a review report (``tether.review.service``)."""
    del since  # lifecycle flags look at all history; staleness has its own threshold
    items = identity_lifecycles(engine, now=now)
    if identity is not None:
        items = [i for i in items if i.identity_id == identity]
    return list(lifecycle_sections(items, now=now))
