"""``tether init`` and ``tether apply``: create the store, apply estate-as-code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tether.cli.common import DbOption, JsonOption, migrated_store, settings_for
from tether.cli.output import EXIT_BAD_INPUT, console, emit_json, errors_to_exit, fail, table
from tether.estate import apply_estate
from tether.store import migrate
from tether.tokens import KeyRing, load_or_create_master_key


def init(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Create (or migrate) the store."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        settings = settings_for(db)
        master = load_or_create_master_key(
            Path(settings.master_key_file), settings.master_key or None
        )
        signing_key = KeyRing(engine, master).active()
    url = engine.url.render_as_string(hide_password=True)
    if as_json:
        emit_json(
            {
                "database": url,
                "schema_revision": migrate.head_revision(),
                "signing_key": signing_key.kid,
            }
        )
    else:
        console.print(f"store ready at [bold]{url}[/] (schema {migrate.head_revision()})")
        console.print(f"signing key [bold]{signing_key.kid}[/] ({signing_key.alg})")


def apply(
    directory: Annotated[Path, typer.Argument(help="estate folder (*.yaml, *.cedar)")],
    db: DbOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the changes, write nothing")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate and apply an estate folder atomically (all or nothing, idempotent)."""
    if not directory.is_dir():
        fail(f"`{directory}` is not a folder", EXIT_BAD_INPUT, as_json=as_json)
    with errors_to_exit(as_json), migrated_store(db) as engine:
        result = apply_estate(engine, directory, dry_run=dry_run, actor="cli")
    if as_json:
        emit_json(
            {
                "revision": result.revision,
                "changed": result.changed,
                "dry_run": result.dry_run,
                "changes": [{"kind": c.kind, "name": c.name, "op": c.op} for c in result.changes],
            }
        )
        return
    if result.changes:
        table(
            "changes" + (" (dry run, nothing written)" if dry_run else ""),
            ["op", "kind", "name"],
            [(c.op, c.kind, c.name) for c in result.changes],
        )
    if dry_run:
        console.print(f"dry run: {len(result.changes)} change(s) would be applied")
    elif result.changed:
        console.print(
            f"applied estate revision [bold]{result.revision}[/] ({len(result.changes)} change(s))"
        )
    else:
        console.print(f"no changes; estate revision {result.revision} is current")
