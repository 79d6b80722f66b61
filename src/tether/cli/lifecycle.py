"""``tether identity offboard|lifecycle``, ``tether grants import|list`` and ``tether metrics``.

The identity commands join the ``identity`` group of :mod:`tether.cli.inventory`; importing
this module registers them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tether.cli.common import DbOption, JsonOption, migrated_store, open_tether
from tether.cli.inventory import identity_app
from tether.cli.output import console, emit_json, errors_to_exit, table
from tether.review.grants import (
    DEFAULT_REVIEW_EVERY_DAYS,
    DEFAULT_WINDOW_DAYS,
    import_grants,
    review_grants,
)
from tether.review.lifecycle import DEFAULT_STALE_DAYS, identity_lifecycles
from tether.review.metrics import (
    INDUSTRY_EXCESSIVE,
    INDUSTRY_NOT_ROTATED,
    INDUSTRY_SOURCE,
    compute_metrics,
    record_snapshot,
    snapshots,
)
from tether.review.offboard import offboard_identity

grants_app = typer.Typer(help="Third-party OAuth grants: inventory and scope use.")

WindowOption = Annotated[
    int, typer.Option("--window-days", min=1, max=3650, help="lookback window in days")
]


@identity_app.command("offboard")
def identity_offboard(
    identity_id: Annotated[str, typer.Argument(help="identity id")],
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "offboarded",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Offboard an identity: revoke its tokens, end its tasks, disable it and its keys."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        done = offboard_identity(tether.tasks, identity_id, actor="cli", reason=reason)
    if as_json:
        emit_json(done.to_json())
        return
    again = " (already offboarded; swept again)" if done.already_offboarded else ""
    console.print(
        f"identity {identity_id} offboarded{again}: {len(done.tasks_ended)} task(s) ended, "
        f"{len(done.tokens_revoked)} token(s) revoked, "
        f"{len(done.api_keys_disabled)} API key(s) disabled; evidence kept",
        highlight=False,
    )


@identity_app.command("lifecycle")
def identity_lifecycle(
    stale_days: Annotated[
        int, typer.Option(min=1, max=3650, help="unused this many days is stale")
    ] = DEFAULT_STALE_DAYS,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Owner, age, last use, credential and rotation of every identity, with flags."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        items = identity_lifecycles(engine, stale_days=stale_days)
    now = datetime.now(UTC)
    rows = [i.to_json(now) for i in items]
    if as_json:
        emit_json({"stale_days": stale_days, "identities": rows})
        return
    table(
        f"{len(rows)} identities",
        ["id", "kind", "owner", "status", "last used", "credential", "age (d)", "flags"],
        [
            (
                r["identity"],
                r["kind"],
                r["owner"],
                r["status"],
                (r["last_used_at"] or "never")[:19],
                r["credential"],
                (">=" if r["credential_age_is_lower_bound"] else "") + str(r["credential_age_days"])
                if r["credential_age_days"] is not None
                else "",
                ", ".join(r["flags"]),
            )
            for r in rows
        ],
    )


@grants_app.command("import")
def grants_import(
    file: Annotated[Path, typer.Argument(help="a YAML or JSON grant inventory")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import (upsert) third-party OAuth grants; an invalid file changes nothing."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        result = import_grants(engine, file, actor="cli")
    if as_json:
        emit_json(result)
        return
    console.print(
        f"{len(result['added'])} grant(s) added, {len(result['updated'])} updated",
        highlight=False,
    )


@grants_app.command("list")
def grants_list(
    window_days: WindowOption = DEFAULT_WINDOW_DAYS,
    review_every_days: Annotated[
        int, typer.Option(min=1, max=3650, help="vendor review period in days")
    ] = DEFAULT_REVIEW_EVERY_DAYS,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Grants with scopes granted beside scopes used, and the minimal-scope recommendation."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        reviews = review_grants(
            engine, window_days=window_days, review_every_days=review_every_days
        )
    if as_json:
        emit_json({"window_days": window_days, "grants": [r.to_json() for r in reviews]})
        return
    table(
        f"{len(reviews)} third-party grants (use over {window_days} days)",
        ["app", "vendor", "granted", "used", "unused", "recommended", "review due"],
        [
            (
                r.grant.app,
                r.grant.vendor,
                " ".join(r.grant.scopes),
                " ".join(r.used) or "-",
                " ".join(r.unused) or "-",
                " ".join(r.used) or "(revoke the grant)",
                r.review_due.date().isoformat() + (" OVERDUE" if r.review_overdue else ""),
            )
            for r in reviews
        ],
    )


def metrics(
    window_days: WindowOption = DEFAULT_WINDOW_DAYS,
    last: Annotated[int, typer.Option(min=1, max=1000, help="snapshots in the trend")] = 10,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Excessive privilege and rotation beside the industry figures; keeps a snapshot."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        current = record_snapshot(engine, compute_metrics(engine, window_days=window_days))
        trend = snapshots(engine, last=last)
    if as_json:
        emit_json({**current.to_json(), "trend": [s.to_json() for s in trend]})
        return
    table(
        f"estate metrics (window {window_days} days) beside the industry ({INDUSTRY_SOURCE})",
        ["metric", "this estate", "count", "industry"],
        [
            (
                "excessive privilege",
                _percent(current.excessive_share),
                f"{len(current.excessive)} of {current.entitled}",
                f"{INDUSTRY_EXCESSIVE:g} %",
            ),
            (
                "not rotated within policy",
                _percent(current.not_rotated_share),
                f"{len(current.not_rotated)} of {current.rotation_governed}",
                f"{INDUSTRY_NOT_ROTATED:g} %",
            ),
        ],
    )
    table(
        f"trend (last {len(trend)} runs)",
        ["at", "excessive privilege", "not rotated"],
        [
            (s.at.isoformat()[:19], _percent(s.excessive_share), _percent(s.not_rotated_share))
            for s in trend
        ],
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} %"
