"""Third-party OAuth grants: the inventory, scopes granted beside scopes used, vendor reviews.

The inventory is a YAML or JSON file (JSON is read as YAML, so errors name the line)::

    grants:
      - app: meeting-notes-bot          # the app's id; its events carry it as principal
        vendor: Notetaker Inc.
        identity: notes-bot             # optional: the inventory identity of the app
        scopes: [calendar.read, files.read, files.write]
        granted_by: alice@example.org
        granted_at: 2025-01-10
        last_vendor_review: 2025-06-01  # optional
        scope_actions:                  # optional: actions that exercise a scope
          files.read: [files.get, files.list]

Unknown keys are errors; every problem names ``file:line``. Importing upserts by ``app``
(grants the file does not name are kept) and is audited.

**Which scopes are in use** (:func:`review_grants`): within the window, every allowed
event (``events``) and allowed or constrained decision (``decisions``) whose identity is
the app (``identity``, else ``app``; for events also a principal key equal to ``app``)
counts, and it *uses* a scope when (1) its raw event carries ``scope`` or ``scopes``
(space- or comma-separated text, or a list: generic JSONL and OAuth provider logs), or
(2) its action is the scope's name, or (3) its action is listed under the scope in
``scope_actions``. The minimal-scope recommendation is granted AND used; granted but unused
is over-scoped; used but not granted is activity beyond the grant. A vendor review is overdue
when the last one (or, never reviewed, the grant) is older than ``review_every_days``
(default 365).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update

from tether.errors import EstateInvalid, EstateProblem
from tether.estate._fields import Fields, Problems, expect_list, expect_map
from tether.estate._yaml import Node, load_located
from tether.review.report_model import ReportSection, Row, section
from tether.store.lifecycle_tables import oauth_grants
from tether.store.tables import decisions
from tether.store.telemetry_tables import events
from tether.tokens.ledger import record_event, utc

DEFAULT_WINDOW_DAYS = 90
DEFAULT_REVIEW_EVERY_DAYS = 365
MAX_NAME = 200
_SCOPE_SPLIT = re.compile(r"[\s,]+")
_KEYS = ("app", "vendor", "scopes", "granted_by", "granted_at")
_OPTIONAL = ("identity", "last_vendor_review", "scope_actions")


class GrantsInvalid(EstateInvalid):
    """An OAuth grant inventory file that does not validate (every problem, file:line)."""

    code = "grants_invalid"


@dataclass(frozen=True)
class OAuthGrant:
    app: str
    vendor: str
    identity_id: str | None
    scopes: tuple[str, ...]
    scope_actions: Mapping[str, tuple[str, ...]]
    granted_by: str
    granted_at: datetime
    last_vendor_review: datetime | None
    source: str = ""

    @property
    def identity(self) -> str:
        return self.identity_id or self.app

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "vendor": self.vendor,
            "identity": self.identity_id,
            "scopes": list(self.scopes),
            "scope_actions": {k: list(v) for k, v in self.scope_actions.items()},
            "granted_by": self.granted_by,
            "granted_at": self.granted_at.isoformat(),
            "last_vendor_review": (
                self.last_vendor_review.isoformat() if self.last_vendor_review else None
            ),
            "source": self.source,
        }


# --- reading the inventory ------------------------------------------------------------------


def parse_grants(file: str, text: str) -> list[OAuthGrant]:
    """Read an inventory file's text.

    Raises:
        GrantsInvalid: listing every problem with its line.
    """
    problems = Problems()
    root, yaml_problems = load_located(file, text)
    for found in yaml_problems:
        problems.add(file, found.message, found.line)
    entries: list[Node] = []
    if root is not None and root.is_map:
        fields = Fields(root, problems, what="the grant inventory", required=["grants"])
        entries = expect_list(fields.get("grants"), problems, "`grants`")
    elif root is not None:
        entries = expect_list(root, problems, "the grant inventory")
    elif not yaml_problems:
        problems.add(file, "the file is empty: expected `grants:` with a list of grants", 1)
    grants: list[OAuthGrant] = []
    seen: dict[str, int] = {}
    for entry in entries:
        grant = _read_grant(entry, problems)
        if grant is None:
            continue
        if grant.app in seen:
            problems.add(
                entry, f"app `{grant.app}` is listed twice (also at line {seen[grant.app]})"
            )
            continue
        seen[grant.app] = entry.line
        grants.append(grant)
    if problems:
        raise GrantsInvalid(list(problems.items))
    return grants


def _read_grant(entry: Node, problems: Problems) -> OAuthGrant | None:
    if not expect_map(entry, problems, "a grant"):
        if entry.value is None:
            problems.add(entry, "a grant must be a mapping")
        return None
    app_node = entry.value.get("app")
    label = f"grant `{app_node.value}`" if app_node is not None else "a grant"
    fields = Fields(entry, problems, what=label, required=_KEYS, optional=_OPTIONAL)
    app = fields.string("app", max_length=MAX_NAME)
    vendor = fields.string("vendor", max_length=MAX_NAME)
    identity = fields.string("identity", max_length=MAX_NAME)
    granted_by = fields.string("granted_by", max_length=MAX_NAME)
    scopes = [value for value, _ in fields.strings("scopes")]
    # When a grant was made or reviewed: a date is that day's start (its age is at least
    # that; an expiry's date means its end).
    granted_at = fields.moment("granted_at", date_is_start=True)
    review = fields.moment("last_vendor_review", date_is_start=True)
    scope_actions: dict[str, tuple[str, ...]] = {}
    mapping = fields.get("scope_actions")
    if mapping is not None and expect_map(mapping, problems, f"`scope_actions` of {label}"):
        for scope, actions in mapping.items():
            if scope not in scopes:
                problems.add(
                    mapping,
                    f"`scope_actions` of {label} names scope `{scope}`, which is not granted",
                    mapping.key_line(scope),
                )
                fields.ok = False
                continue
            listed = [i.value for i in actions.value] if actions.is_seq else []
            if not listed or not all(isinstance(i, str) and i for i in listed):
                problems.add(
                    actions, f"actions of scope `{scope}` in {label} must be a list of names"
                )
                fields.ok = False
                continue
            scope_actions[scope] = tuple(dict.fromkeys(listed))
    elif mapping is not None and mapping.value is not None:
        fields.ok = False
    if (
        not fields.ok
        or app is None
        or vendor is None
        or granted_by is None
        or granted_at is None
        or not scopes
    ):
        return None
    return OAuthGrant(
        app=app,
        vendor=vendor,
        identity_id=identity,
        scopes=tuple(sorted(set(scopes))),
        scope_actions=scope_actions,
        granted_by=granted_by,
        granted_at=granted_at,
        last_vendor_review=review,
        source=f"{entry.file}:{entry.line}",
    )


def import_grants(
    engine: Engine, path: Path, *, actor: str, now: datetime | None = None
) -> dict[str, list[str]]:
    """Validate ``path`` completely, then upsert its grants in one transaction.

    Raises:
        GrantsInvalid: nothing is stored.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrantsInvalid(
            [EstateProblem(str(path), None, f"cannot read the file: {exc}")]
        ) from None
    return store_grants(engine, parse_grants(str(path), text), actor=actor, now=now)


def store_grants(
    engine: Engine, grants: Iterable[OAuthGrant], *, actor: str, now: datetime | None = None
) -> dict[str, list[str]]:
    moment = now or datetime.now(UTC)
    added: list[str] = []
    updated: list[str] = []
    with engine.begin() as connection:
        known = set(connection.execute(select(oauth_grants.c.app)).scalars())
        for grant in grants:
            values = {
                "vendor": grant.vendor,
                "identity_id": grant.identity_id,
                "scopes": list(grant.scopes),
                "scope_actions": {k: list(v) for k, v in grant.scope_actions.items()},
                "granted_by": grant.granted_by,
                "granted_at": grant.granted_at,
                "last_vendor_review": grant.last_vendor_review,
                "source": grant.source[:400],
                "imported_at": moment,
                "imported_by": actor[:200],
            }
            if grant.app in known:
                connection.execute(
                    update(oauth_grants).where(oauth_grants.c.app == grant.app).values(**values)
                )
                updated.append(grant.app)
            else:
                connection.execute(insert(oauth_grants).values(app=grant.app, **values))
                added.append(grant.app)
        record_event(
            connection,
            actor=actor,
            action="grants.import",
            target="oauth_grants",
            details={"added": added, "updated": updated},
            at=moment,
        )
    return {"added": added, "updated": updated}


def list_grants(engine: Engine) -> list[OAuthGrant]:
    with engine.connect() as connection:
        rows = connection.execute(select(oauth_grants).order_by(oauth_grants.c.app)).mappings()
        return [
            OAuthGrant(
                app=r["app"],
                vendor=r["vendor"],
                identity_id=r["identity_id"],
                scopes=tuple(r["scopes"]),
                scope_actions={k: tuple(v) for k, v in (r["scope_actions"] or {}).items()},
                granted_by=r["granted_by"],
                granted_at=utc(r["granted_at"]),
                last_vendor_review=utc(r["last_vendor_review"])
                if r["last_vendor_review"]
                else None,
                source=r["source"],
            )
            for r in rows
        ]


# --- granted beside used --------------------------------------------------------------------


@dataclass(frozen=True)
class GrantReview:
    grant: OAuthGrant
    used: tuple[str, ...]  # granted scopes in use: the minimal-scope recommendation
    unused: tuple[str, ...]  # granted, not used in the window: over-scoped
    beyond: tuple[str, ...]  # used, never granted
    activity: int  # events and decisions of the app in the window
    review_due: datetime
    review_overdue: bool

    @property
    def overscoped(self) -> bool:
        return bool(self.unused)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.grant.to_json(),
            "scopes_used": list(self.used),
            "scopes_unused": list(self.unused),
            "scopes_beyond_grant": list(self.beyond),
            "recommended_scopes": list(self.used),
            "overscoped": self.overscoped,
            "activity": self.activity,
            "vendor_review_due": self.review_due.isoformat(),
            "vendor_review_overdue": self.review_overdue,
        }


def scopes_of(raw: Any) -> set[str]:
    """The scopes a raw event carries in ``scope`` or ``scopes`` (text or a list)."""
    found: set[str] = set()
    if not isinstance(raw, Mapping):
        return found
    for key in ("scope", "scopes"):
        value = raw.get(key)
        if isinstance(value, str):
            found.update(s for s in _SCOPE_SPLIT.split(value) if s)
        elif isinstance(value, list):
            found.update(s for s in value if isinstance(s, str) and s)
    return found


def _used_scopes(grant: OAuthGrant, action: str, raw: Any) -> set[str]:
    used = scopes_of(raw)
    if action in grant.scopes:
        used.add(action)
    used.update(scope for scope, actions in grant.scope_actions.items() if action in actions)
    return used


def review_grants(
    engine: Engine,
    *,
    now: datetime | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    review_every_days: int = DEFAULT_REVIEW_EVERY_DAYS,
) -> list[GrantReview]:
    """Every imported grant, its scopes granted beside those used in the window."""
    moment = now or datetime.now(UTC)
    since = moment - timedelta(days=window_days)
    reviews = []
    with engine.connect() as connection:
        for grant in list_grants(engine):
            names = {grant.identity, grant.app}
            used: set[str] = set()
            activity = 0
            found = connection.execute(
                select(events.c.action, events.c.raw).where(
                    or_(events.c.identity_id.in_(names), events.c.principal_key == grant.app),
                    events.c.outcome == "allowed",
                    events.c.at >= since,
                )
            )
            for action, raw in found:
                activity += 1
                used |= _used_scopes(grant, action, raw)
            decided = connection.execute(
                select(decisions.c.action).where(
                    decisions.c.subject_id.in_(names),
                    decisions.c.outcome.in_(("allow", "constrain")),
                    decisions.c.at >= since,
                )
            )
            for (action,) in decided:
                activity += 1
                used |= _used_scopes(grant, action, None)
            granted = set(grant.scopes)
            last = grant.last_vendor_review or grant.granted_at
            due = last + timedelta(days=review_every_days)
            reviews.append(
                GrantReview(
                    grant=grant,
                    used=tuple(sorted(granted & used)),
                    unused=tuple(sorted(granted - used)),
                    beyond=tuple(sorted(used - granted)),
                    activity=activity,
                    review_due=due,
                    review_overdue=due <= moment,
                )
            )
    return reviews


GRANT_COLUMNS = ("app", "vendor", "finding", "scopes_granted", "recommended_scopes", "detail")


def grants_section(reviews: Iterable[GrantReview], *, window_days: int) -> ReportSection:
    """Over-scoped grants, unused scopes and overdue vendor reviews, one row each."""
    reviews = list(reviews)
    rows: list[Row] = []
    for review in reviews:
        grant = review.grant
        common = {
            "app": grant.app,
            "vendor": grant.vendor,
            "scopes_granted": " ".join(grant.scopes),
            "recommended_scopes": " ".join(review.used),
        }
        if review.overscoped:
            rows.append(
                {
                    "row_type": "grant_overscoped",
                    "row_id": f"grant_overscoped:{grant.app}",
                    "finding": "grant_overscoped",
                    "detail": f"{len(review.unused)} of {len(grant.scopes)} scopes unused in "
                    f"{window_days} days",
                    **common,
                }
            )
            for scope in review.unused:
                rows.append(
                    {
                        "row_type": "grant_unused_scope",
                        "row_id": f"grant_unused_scope:{grant.app}:{scope}",
                        "finding": "grant_unused_scope",
                        "detail": f"scope `{scope}` not used",
                        **common,
                    }
                )
        if review.review_overdue:
            rows.append(
                {
                    "row_type": "vendor_review_overdue",
                    "row_id": f"vendor_review_overdue:{grant.app}",
                    "finding": "vendor_review_overdue",
                    "detail": f"vendor review was due {review.review_due.date().isoformat()}",
                    **common,
                }
            )
    return section(
        "grants",
        "Third-party OAuth grants",
        GRANT_COLUMNS,
        rows,
        summary={
            "apps": len(reviews),
            "overscoped": sum(r.overscoped for r in reviews),
            "vendor_review_overdue": sum(r.review_overdue for r in reviews),
        },
        frameworks={"owasp-asi": ["ASI04"], "nist-csf": ["GV.SC-07", "PR.AA-05"]},
        description=(
            "Scopes granted to third-party apps beside the scopes observed in use; the "
            "recommendation keeps only the scopes used."
        ),
    )


def review_sections(
    engine: Engine, *, now: datetime, since: datetime, identity: str | None
) -> list[ReportSection]:
    """The grants section of a review report over its window (``tether.review.service``)."""
    window_days = max(1, (now - since).days)
    reviews = review_grants(engine, now=now, window_days=window_days)
    if identity is not None:
        reviews = [r for r in reviews if identity in (r.grant.app, r.grant.identity)]
    return [grants_section(reviews, window_days=window_days)]
