"""``tether findings``, ``tether exceptions list|add|expire``, ``tether drift scan|baseline``.

Every command works on the store directly; a running server sees new exceptions within
its reload interval. Times are ISO 8601 (``2026-12-31``, ``2026-03-01T10:00:00Z``) or a
duration (``24h``, ``30d``): back from now for ``--since``, ahead of now for ``--expires``.
``drift scan`` exits 1 when it found a high or critical finding no exception covers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import typer
from sqlalchemy import Engine, select

from tether.cli.common import DbOption, JsonOption, migrated_store
from tether.cli.output import EXIT_ACTION_NEEDED, console, emit_json, errors_to_exit, table
from tether.drift.engine import DriftEngine
from tether.drift.exceptions import add_exception, expire_exception, list_exceptions
from tether.drift.findings import FindingQuery, finding_json, query_findings
from tether.drift.model import Finding, Severity
from tether.errors import InvalidRequest
from tether.estate import parse_duration
from tether.estate.compiled import EMPTY_ESTATE, CompiledEstate
from tether.store.tables import estate_revisions
from tether.tokens import TaskRecord, ledger

exceptions_app = typer.Typer(
    help="Drift exceptions: owned, justified, scoped, expiring.", no_args_is_help=True
)
drift_app = typer.Typer(help="Drift detection: batch scans and baselines.", no_args_is_help=True)
baseline_app = typer.Typer(help="Learned baselines.", no_args_is_help=True)
drift_app.add_typer(baseline_app, name="baseline")

IdentityOption = Annotated[str | None, typer.Option("--identity", help="only this identity")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="from this time or this long ago (e.g. 24h)")
]


def parse_when(text: str, now: datetime, *, ahead: bool, what: str) -> datetime:
    """``text`` as a moment: ISO 8601, or a duration from ``now`` (ahead or back)."""
    seconds = parse_duration(text)
    if seconds is not None:
        delta = timedelta(seconds=seconds)
        return now + delta if ahead else now - delta
    try:
        day = date.fromisoformat(text)
        # A date: its end for an expiry, its start for a `since`.
        return datetime.combine(day, time.max if ahead else time.min, UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{what} `{text}` is neither an ISO 8601 time nor a duration such as `24h`"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _severity(text: str | None) -> Severity | None:
    if text is None:
        return None
    try:
        return Severity(text)
    except ValueError:
        known = ", ".join(s.value for s in Severity)
        raise InvalidRequest(f"severity `{text}` is not one of {known}") from None


def _findings_table(items: list[Finding], title: str) -> None:
    table(
        title,
        ["at", "identity", "detector", "severity", "score", "response", "reason"],
        [
            (
                f.at.strftime("%Y-%m-%d %H:%M:%S"),
                f.identity_id,
                f.detector,
                f.severity.value + (" (suppressed)" if f.suppressed_by else ""),
                f"{f.score:.0f}",
                f.response or "-",
                f.reason,
            )
            for f in items
        ],
    )


def findings(
    identity: IdentityOption = None,
    severity: Annotated[
        str | None, typer.Option("--severity", help="at least this severity (low, high...)")
    ] = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many")] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show drift findings, newest first."""
    with errors_to_exit(as_json):
        now = datetime.now(UTC)
        query = FindingQuery(
            identity_id=identity,
            severity=_severity(severity),
            since=parse_when(since, now, ahead=False, what="since") if since else None,
            limit=limit,
        )
        with migrated_store(db) as engine:
            items = query_findings(engine, query)
    if as_json:
        emit_json({"findings": [finding_json(f) for f in items]})
    elif not items:
        console.print("no findings")
    else:
        _findings_table(items, f"{len(items)} finding(s)")


# --- exceptions ----------------------------------------------------------------------------


@exceptions_app.command("list")
def exceptions_list(
    within: Annotated[
        str, typer.Option("--expiring-within", help="list those expiring within this first")
    ] = "14d",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List exceptions: those expiring soon first, then the other valid ones, then expired."""
    with errors_to_exit(as_json):
        seconds = parse_duration(within)
        if seconds is None:
            raise InvalidRequest(f"`--expiring-within` `{within}` is not a duration such as `14d`")
        now = datetime.now(UTC)
        with migrated_store(db) as engine:
            items = list_exceptions(engine, now=now, expiring_within=timedelta(seconds=seconds))
    horizon = now + timedelta(seconds=seconds)
    if as_json:
        emit_json(
            {
                "exceptions": [
                    {**e.to_json(now), "expiring_soon": e.valid_at(now) and e.expires_at <= horizon}
                    for e in items
                ]
            }
        )
        return
    if not items:
        console.print("no exceptions")
        return
    table(
        f"{len(items)} exception(s)",
        ["id", "identity", "detector", "resource", "owner", "expires", "state", "origin"],
        [
            (
                e.id,
                e.identity_id,
                e.detector,
                e.resource_pattern or "*",
                e.owner,
                e.expires_at.strftime("%Y-%m-%d %H:%M"),
                "expired"
                if not e.valid_at(now)
                else ("expiring soon" if e.expires_at <= horizon else "valid"),
                e.origin,
            )
            for e in items
        ],
    )


@exceptions_app.command("add")
def exceptions_add(
    identity: Annotated[str, typer.Option(help="the identity it covers")],
    detector: Annotated[str, typer.Option(help="the detector it covers, e.g. volume_anomaly")],
    owner: Annotated[str, typer.Option(help="who answers for it")],
    justification: Annotated[str, typer.Option(help="why the deviation is acceptable")],
    expires: Annotated[str, typer.Option(help="when it stops: a date, a time or e.g. 30d")],
    resource: Annotated[
        str | None, typer.Option(help="only resources matching this pattern (type:glob)")
    ] = None,
    downgrade_to: Annotated[
        str | None, typer.Option(help="lower matching findings to this severity, not suppress")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add an exception (origin `cli`; `tether apply` leaves it alone)."""
    with errors_to_exit(as_json):
        now = datetime.now(UTC)
        with migrated_store(db) as engine:
            item = add_exception(
                engine,
                identity_id=identity,
                detector=detector,
                owner=owner,
                justification=justification,
                expires_at=parse_when(expires, now, ahead=True, what="expires"),
                resource_pattern=resource,
                downgrade_to=downgrade_to,
                actor="cli",
                now=now,
            )
    if as_json:
        emit_json(item.to_json(now))
    else:
        console.print(f"added exception {item.id} (expires {item.expires_at.isoformat()})")


@exceptions_app.command("expire")
def exceptions_expire(
    exception_id: Annotated[str, typer.Argument(help="the exception's id")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """End an exception now."""
    with errors_to_exit(as_json):
        now = datetime.now(UTC)
        with migrated_store(db) as engine:
            item = expire_exception(engine, exception_id, actor="cli", now=now)
    if as_json:
        emit_json(item.to_json(now))
    else:
        console.print(f"exception {item.id} expired at {item.expires_at.isoformat()}")


# --- drift -----------------------------------------------------------------------------------


def _latest_estate(engine: Engine) -> tuple[int | None, CompiledEstate]:
    with engine.connect() as connection:
        row = connection.execute(
            select(estate_revisions.c.revision, estate_revisions.c.bundle)
            .order_by(estate_revisions.c.revision.desc())
            .limit(1)
        ).first()
    if row is None:
        return None, EMPTY_ESTATE
    return int(row.revision), CompiledEstate.from_bundle(row.bundle)


def _drift(engine: Engine) -> DriftEngine:
    estate = _latest_estate(engine)

    def task(task_id: str) -> TaskRecord:
        with engine.connect() as connection:
            found = ledger.load_task(connection, task_id)
        if found is None:
            raise LookupError(task_id)
        return found

    return DriftEngine(engine, lambda: estate, tasks=task, tail_events=False)


@drift_app.command("scan")
def drift_scan(
    since: Annotated[str, typer.Option("--since", help="from this time or this long ago")],
    identity: IdentityOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-run detection on stored events and decisions (stores new findings, no responses)."""
    with errors_to_exit(as_json):
        now = datetime.now(UTC)
        start = parse_when(since, now, ahead=False, what="since")
        with migrated_store(db) as engine:
            items = _drift(engine).scan(since=start, until=now, identity_id=identity)
    serious = [
        f for f in items if f.suppressed_by is None and f.severity.rank >= Severity.HIGH.rank
    ]
    if as_json:
        emit_json({"findings": [finding_json(f) for f in items], "serious": len(serious)})
    elif not items:
        console.print("no findings")
    else:
        _findings_table(items, f"{len(items)} finding(s), {len(serious)} high or critical")
    if serious:
        raise SystemExit(EXIT_ACTION_NEEDED)


@baseline_app.command("rebuild")
def baseline_rebuild(
    identity: Annotated[str | None, typer.Argument(help="one identity (default: all)")] = None,
    window: Annotated[str, typer.Option(help="learning window, e.g. 30d")] = "30d",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learn a new baseline version from the stored events and decisions."""
    with errors_to_exit(as_json):
        seconds = parse_duration(window)
        if seconds is None:
            raise InvalidRequest(f"`--window` `{window}` is not a duration such as `30d`")
        with migrated_store(db) as engine:
            built = _drift(engine).rebuild_baselines(
                now=datetime.now(UTC), window=timedelta(seconds=seconds), identity_id=identity
            )
    rows: list[dict[str, Any]] = [
        {"identity": b.identity_id, "version": b.version, "observations": b.observations}
        for b in built
    ]
    if as_json:
        emit_json({"baselines": rows})
    elif not rows:
        console.print("nothing observed in the window")
    else:
        table(
            f"{len(rows)} baseline(s)",
            ["identity", "version", "observations"],
            [(r["identity"], r["version"], r["observations"]) for r in rows],
        )
