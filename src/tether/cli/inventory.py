"""``tether identity list|show`` and ``tether decisions``."""

from __future__ import annotations

from typing import Annotated

import typer

from tether.cli.common import DbOption, JsonOption, migrated_store
from tether.cli.output import console, emit_json, errors_to_exit, table
from tether.inventory import list_decisions, list_identities, show_identity

identity_app = typer.Typer(help="The identity inventory.", no_args_is_help=True)


@identity_app.command("list")
def identity_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List every identity: kind, class, owner, status, origin."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        rows = list_identities(engine)
    if as_json:
        emit_json({"identities": rows})
        return
    table(
        f"{len(rows)} identities",
        ["id", "kind", "class", "owner", "status", "origin", "last used"],
        [
            (
                r["id"],
                r["kind"],
                r["workload_class"],
                r["owner"],
                r["status"],
                r["origin"],
                r["last_used_at"],
            )
            for r in rows
        ],
    )


@identity_app.command("show")
def identity_show(
    identity_id: Annotated[str, typer.Argument(help="identity id")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one identity with its entitlements."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        row = show_identity(engine, identity_id)
    if as_json:
        emit_json(row)
        return
    for key in (
        "id",
        "kind",
        "workload_class",
        "owner",
        "status",
        "origin",
        "workload",
        "created_at",
        "last_used_at",
    ):
        console.print(f"[bold]{key}[/]: {row.get(key)}", highlight=False)
    table(
        "entitlements",
        ["policy", "actions", "resources"],
        [
            (g["policy_id"], ", ".join(g["actions"]), ", ".join(g["resources"]))
            for g in row["entitlements"]
        ],
    )


def decisions(
    subject: Annotated[str | None, typer.Option(help="only this subject id")] = None,
    action: Annotated[str | None, typer.Option(help="only this action")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="allow|constrain|approval_required|deny")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="how many, newest first")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent decisions, newest first."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        rows = list_decisions(
            engine, limit=limit, subject=subject, action=action, outcome=outcome, since=since
        )
    if as_json:
        emit_json({"decisions": rows})
        return
    table(
        f"{len(rows)} decisions",
        ["at", "subject", "action", "resource", "outcome", "reasons"],
        [
            (
                r["at"],
                f"{r['subject_type']}:{r['subject_id']}",
                r["action"],
                f"{r['resource_type']}:{r['resource_id']}",
                r["outcome"],
                ", ".join(r["reasons"]),
            )
            for r in rows
        ],
    )
