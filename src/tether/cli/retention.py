"""``tether retention apply``: prune events past their data class's retention.

The policy comes from the command line (``--default 400d --class restricted=7y --class
internal=90d``); classes named must be declared in the applied estate's ``data_classes``.
Only the expired prefix of the audit chain is removed, with a signed ``pruned``
checkpoint, so ``tether audit verify`` still verifies (see
:mod:`tether.telemetry.retention`). Exit codes: 0 done (or nothing to do), 2 bad usage.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy import select

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import console, emit_json, errors_to_exit
from tether.store.tables import data_classes
from tether.telemetry.retention import (
    RetentionInvalid,
    RetentionPolicy,
    RetentionResult,
    apply_retention,
    parse_retention,
)

retention_app = typer.Typer(help="Retention of telemetry events.", no_args_is_help=True)


def _policy(default: str | None, classes: list[str]) -> RetentionPolicy:
    by_class = {}
    for item in classes:
        name, equals, duration = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise RetentionInvalid(
                f"`--class {item}` must look like `NAME=DURATION`, e.g. `internal=90d`"
            )
        if name in by_class:
            raise RetentionInvalid(f"data class `{name}` is given twice")
        by_class[name] = parse_retention(duration)
    if default is None and not by_class:
        raise RetentionInvalid(
            "give a retention: `--default DURATION` and/or `--class NAME=DURATION`"
        )
    return RetentionPolicy(None if default is None else parse_retention(default), by_class)


@retention_app.command("apply")
def retention_apply(
    default: Annotated[
        str | None,
        typer.Option("--default", help="keep events of any other class this long, e.g. `400d`"),
    ] = None,
    data_class: Annotated[
        list[str] | None,
        typer.Option("--class", help="`NAME=DURATION` for one data class, e.g. `internal=90d`"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would go; change nothing")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete the expired prefix of the event chain, recording a signed pruned checkpoint."""
    with errors_to_exit(as_json):
        policy = _policy(default, data_class or [])
        with open_tether(db) as tether:
            with tether.engine.connect() as connection:
                declared = set(connection.execute(select(data_classes.c.name)).scalars())
            unknown = sorted(set(policy.classes) - declared)
            if unknown:
                listed = ", ".join(f"`{n}`" for n in sorted(declared)) or "none"
                raise RetentionInvalid(
                    f"data class `{unknown[0]}` is not declared in the estate (declared: {listed})"
                )
            result = apply_retention(tether.engine, tether.keys, policy, dry_run=dry_run)
    if as_json:
        emit_json({**result.to_json(), "policy": policy.to_json()})
        return
    _show(result)


def _show(result: RetentionResult) -> None:
    verb = "would prune" if result.dry_run else "pruned"
    if result.pruned_through is None:
        console.print(f"nothing to prune ({result.expired} expired event(s) in the store)")
    else:
        console.print(
            f"{verb} [bold]{result.pruned}[/] event(s), up to event {result.pruned_through}"
            + ("" if result.dry_run else " (signed pruned checkpoint recorded)")
        )
    by = result.held_back_by
    if result.held_back and by is not None:
        console.print(
            f"{result.held_back} expired event(s) kept: they are chained after event {by.seq} "
            f"(class {escape(by.data_class or 'none')}, {by.at:%Y-%m-%d}), which is not expired",
            soft_wrap=True,
        )
