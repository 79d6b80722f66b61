"""``tether audit verify|checkpoint``: the tamper-evident chains, walked and checkpointed.

``audit verify`` exits 1 on a broken chain (events, decisions or the audit log).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import (
    EXIT_ACTION_NEEDED,
    EXIT_BAD_INPUT,
    EXIT_OK,
    console,
    emit_json,
    err_console,
    errors_to_exit,
    fail,
)
from tether.store.record_chain import CHAINS as RECORD_CHAINS
from tether.telemetry.audit import verify_chain
from tether.telemetry.checkpoints import latest_checkpoint, read_export
from tether.telemetry.records import RecordChainReport, verify_records
from tether.telemetry.store import EventStore

audit_app = typer.Typer(help="The tamper-evident audit chain.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    against: Annotated[
        Path | None, typer.Option(help="an exported checkpoint (`audit checkpoint --export`)")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Walk the event hash chain and the decision and audit-log chains; report the first
    broken link of each (exit 1 if any)."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        checkpoint = read_export(against, tether.keys) if against is not None else None
        report = verify_chain(tether.engine, tether.keys, against=checkpoint)
        records = [verify_records(tether.engine, tether.keys, chain) for chain in RECORD_CHAINS]
    broken = report.broken
    pruned = report.pruned
    intact = broken is None and all(r.ok for r in records)
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "events": report.events,
                "first_seq": report.first_seq,
                "last_seq": report.last_seq,
                "last_hash": report.last_hash,
                "checkpoints": report.checkpoints,
                "pruned": None
                if pruned is None
                else {"through": pruned.last_event_seq, "at": pruned.at.isoformat()},
                "broken": None
                if broken is None
                else {"seq": broken.seq, "kind": str(broken.kind), "message": broken.message},
                "records": {r.chain: _record_json(r) for r in records},
            }
        )
    elif broken is None:
        console.print(
            f"[green]chain verified[/]: {report.events} event(s), "
            f"{report.checkpoints} signed checkpoint(s), head {report.last_hash[:16]}"
        )
    else:
        err_console.print(
            f"[bold red]chain broken[/] at event {broken.seq} ({broken.kind}): "
            f"{escape(broken.message)}",
            soft_wrap=True,
        )
    if pruned is not None and not as_json:
        console.print(
            f"events 1-{pruned.last_event_seq} were pruned by retention "
            f"(signed checkpoint of {pruned.at:%Y-%m-%d %H:%M:%S} UTC)"
        )
    if not as_json:
        for record in records:
            _print_record(record)
    raise SystemExit(EXIT_OK if intact else EXIT_ACTION_NEEDED)


def _record_json(report: RecordChainReport) -> dict[str, Any]:
    broken = report.broken
    return {
        "ok": report.ok,
        "rows": report.rows,
        "unchained": report.unchained,
        "unsealed": report.unsealed,
        "sealed_seq": report.sealed_seq,
        "sealed_at": None if report.sealed_at is None else report.sealed_at.isoformat(),
        "broken": None
        if broken is None
        else {"seq": broken.seq, "kind": broken.kind, "message": broken.message},
    }


def _print_record(report: RecordChainReport) -> None:
    name = report.chain.replace("_", " ")
    extra = "".join(
        [
            f", {report.unchained} older than the chain" if report.unchained else "",
            f", {report.unsealed} not yet sealed" if report.unsealed else "",
        ]
    )
    if report.broken is None:
        console.print(
            f"[green]{name} chain verified[/]: {report.rows} row(s), sealed through "
            f"{report.sealed_seq if report.sealed_seq is not None else '-'}{extra}"
        )
    else:
        err_console.print(
            f"[bold red]{name} chain broken[/] at row {report.broken.seq} "
            f"({report.broken.kind}): {escape(report.broken.message)}",
            soft_wrap=True,
        )


@audit_app.command("checkpoint")
def audit_checkpoint(
    export: Annotated[
        Path | None, typer.Option(help="write the latest signed checkpoint to this file")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a checkpoint of the chain head now; with --export, keep it elsewhere."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        EventStore(tether.engine, tether.keys).checkpoint()
        latest = latest_checkpoint(tether.engine)
    if latest is None:
        fail(
            "the event store is empty: nothing to checkpoint",
            as_json=as_json,
            error_code="audit_chain_empty",
        )
    document = latest.export()
    if export is not None:
        try:
            export.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write `{export}`: {exc.strerror or exc}", EXIT_BAD_INPUT, as_json=as_json)
    if as_json or export is None:
        emit_json(document)
    else:
        console.print(
            f"checkpoint of event {latest.last_event_seq} written to [bold]{escape(str(export))}[/]"
        )
