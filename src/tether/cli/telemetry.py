"""``tether ingest``: telemetry into the chained store.

``ingest`` streams each file through its source's adapter into the event store
(attributed, deduplicated, hash-chained), with a progress bar for people and one JSON
summary with ``--json``. Exit codes: 0 when events were stored (or all were already
there) and problems were per line only, 1 when no line of the input was an event,
2 on bad usage or an unreadable file.
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

from tether.cli.common import DbOption, JsonOption, open_signed_store
from tether.cli.output import (
    EXIT_ACTION_NEEDED,
    EXIT_OK,
    console,
    emit_json,
    err_console,
    errors_to_exit,
    fail,
)
from tether.telemetry.errors import SourceUnreadable
from tether.telemetry.ingest import iter_file, iter_labelled_fixture
from tether.telemetry.model import IngestError, ObservedAccess, Source
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
        with open_signed_store(db) as signed:
            store = EventStore(signed.engine, signed.keys)
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
