"""``tether ingest`` and ``tether audit verify|checkpoint``: telemetry into the chained store.

``ingest`` streams each file through its source's adapter into the event store
(attributed, deduplicated, hash-chained), with a progress bar for people and one JSON
summary with ``--json``. Exit codes: 0 when events were stored (or all were already
there) and problems were per line only, 1 when no line of the input was an event,
2 on bad usage or an unreadable file. ``audit verify`` exits 1 on a broken chain.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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
from tether.cli.paths import paths as paths  # `tether paths`: registered from here
from tether.store.record_chain import CHAINS as RECORD_CHAINS
from tether.telemetry.audit import verify_chain
from tether.telemetry.checkpoints import latest_checkpoint, read_export
from tether.telemetry.errors import SourceUnreadable
from tether.telemetry.ingest import iter_file, iter_labelled_fixture
from tether.telemetry.model import IngestError, ObservedAccess, Source
from tether.telemetry.records import RecordChainReport, verify_records
from tether.telemetry.store import EventStore, IngestSummary

_SHOWN_ERRORS = 20


class IngestSource(StrEnum):
    CLOUDTRAIL = "cloudtrail"
    K8S_AUDIT = "k8s-audit"
    GCP_AUDIT = "gcp-audit"
    AZURE_ACTIVITY = "azure-activity"
    OTEL = "otel"
    JSONL = "jsonl"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    BEDROCK = "bedrock"
    FIXTURE = "fixture"  # labelled test cases: the event of each line's `log`, any format


def ingest(
    source: Annotated[IngestSource, typer.Argument(help="the format of the files")],
    files: Annotated[list[Path], typer.Argument(help="files to read (gzip accepted)")],
    mapping: Annotated[
        str | None,
        typer.Option(
            help='jsonl field mapping, e.g. \'{"principal": "actor.id", "action": "op"}\''
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest audit logs into the event store (re-ingesting a file adds nothing)."""
    fields: dict[str, str] | None = None
    if mapping is not None:
        try:
            fields = json.loads(mapping)
        except ValueError as exc:
            fail(f"`--mapping` is not JSON: {exc}", as_json=as_json, error_code="invalid_request")
        if not isinstance(fields, dict):
            fail("`--mapping` must be a JSON object", as_json=as_json, error_code="invalid_request")
    with errors_to_exit(as_json):
        # Every file and the mapping are checked before anything is stored.
        streams = [(path, _stream(source, path, fields)) for path in files]
        with open_tether(db) as tether:
            store = EventStore(tether.engine, tether.keys)
            started = time.perf_counter()
            summary, shown = _run(store, streams, quiet=as_json)
            store.checkpoint()
            elapsed = time.perf_counter() - started
    seen = summary.ingested + summary.duplicates
    code = EXIT_OK if seen or not summary.errors else EXIT_ACTION_NEEDED
    if as_json:
        emit_json(
            {
                "ingested": summary.ingested,
                "duplicates": summary.duplicates,
                "errors": summary.errors,
                "discovered_identities": summary.discovered,
                "error_lines": shown,
                "seconds": round(elapsed, 3),
            }
        )
    else:
        rate = seen / elapsed if elapsed > 0 else 0.0
        console.print(
            f"ingested [bold]{summary.ingested}[/] event(s), {summary.duplicates} already "
            f"stored, {summary.errors} line(s) skipped, {summary.discovered} new discovered "
            f"identit{'y' if summary.discovered == 1 else 'ies'} ({rate:,.0f} events/s)"
        )
        if summary.errors and not seen:
            err_console.print("[bold red]error:[/] no line of the input was an event")
    raise SystemExit(code)


def _stream(
    source: IngestSource, path: Path, fields: dict[str, str] | None
) -> Iterator[ObservedAccess | IngestError]:
    if source is IngestSource.FIXTURE:
        if not path.is_file() or not os.access(path, os.R_OK):
            raise SourceUnreadable(f"cannot read `{path}`: not a readable file")
        return iter_labelled_fixture(path)
    return iter_file(path, Source(source.value), mapping=fields)


def _run(
    store: EventStore, streams: list[tuple[Path, Any]], *, quiet: bool
) -> tuple[IngestSummary, list[str]]:
    shown: list[str] = []
    summary = IngestSummary()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:,.0f} events"),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    )

    def on_error(error: IngestError) -> None:
        if len(shown) < _SHOWN_ERRORS * 5:
            shown.append(str(error))
        if not quiet and len(shown) <= _SHOWN_ERRORS:
            progress.console.print(f"[yellow]skipped[/] {escape(str(error))}", soft_wrap=True)

    with progress:
        for path, stream in streams:
            task = progress.add_task(path.name, total=None)
            summary += store.ingest(
                stream,
                on_error=on_error,
                on_progress=functools.partial(progress.advance, task),
            )
    if not quiet and summary.errors > _SHOWN_ERRORS:
        err_console.print(f"... and {summary.errors - _SHOWN_ERRORS} more skipped line(s)")
    return summary, shown


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
