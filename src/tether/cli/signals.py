"""``tether signals list`` and ``tether signals receiver add|list|remove``: Shared Signals.

``list`` shows the latest Security Event Tokens tether emitted (by ``jti``: the tokens
themselves are never shown) and how each delivery stands. Receivers are streams: a push
endpoint (``receiver add URL [--token T]``) or a caller's poll stream
(``receiver add --poll CALLER``); every change is in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import console, emit_json, errors_to_exit, table
from tether.cli.tasks import read_secret
from tether.errors import InvalidRequest
from tether.signals import Receiver
from tether.signals.events import CAEP

signals_app = typer.Typer(
    help="Shared Signals: CAEP Security Event Tokens and their receivers.", no_args_is_help=True
)
receiver_app = typer.Typer(help="Receivers (push endpoints and poll streams).")
signals_app.add_typer(receiver_app, name="receiver", no_args_is_help=True)

ACTOR = "cli"


def _short(event_type: str) -> str:
    return event_type.removeprefix(CAEP)


@signals_app.command("list")
def signals_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="how many, newest first")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent Security Event Tokens (by jti) and their delivery status per receiver."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        events = tether.signals.recent(limit=limit)
    if as_json:
        emit_json({"events": [e.to_json() for e in events]})
        return
    rows: list[tuple[Any, ...]] = []
    for event in events:
        subject = event.sub_id.get("id") or event.sub_id.get("uri") or event.sub_id.get("format")
        deliveries = (
            ", ".join(
                f"{d['receiver']} {d['status']}"
                + (f" ({d['attempts']} tries)" if d["attempts"] > 1 else "")
                + (f": {d['last_error']}" if d["last_error"] and d["status"] != "delivered" else "")
                for d in event.deliveries
            )
            or "no receivers"
        )
        rows.append(
            (
                event.issued_at.isoformat(timespec="seconds"),
                event.jti,
                _short(event.event_type),
                subject,
                deliveries,
            )
        )
    table(
        f"{len(rows)} security event tokens",
        ["issued", "jti", "event", "subject", "deliveries"],
        rows,
    )


def _receiver_row(r: Receiver) -> tuple[Any, ...]:
    events = ", ".join(_short(e) for e in r.events) or "all"
    where = r.endpoint_url if r.delivery == "push" else f"polled by {r.poller}"
    return (r.id, r.delivery, where, r.audience, events, "yes" if r.has_token else "")


@receiver_app.command("add")
def receiver_add(
    url: Annotated[str | None, typer.Argument(help="push endpoint URL (RFC 8935)")] = None,
    token: Annotated[
        str | None,
        typer.Option(help="bearer token the receiver expects (`@FILE`, `-` for stdin)"),
    ] = None,
    events: Annotated[
        list[str] | None,
        typer.Option("--events", help="event types it gets, comma-separated (default: all)"),
    ] = None,
    poll: Annotated[
        str | None,
        typer.Option("--poll", help="make a poll stream (RFC 8936) for this caller identity"),
    ] = None,
    audience: Annotated[
        str | None, typer.Option(help="the SETs' `aud` (default: URL or caller)")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a receiver: a push endpoint URL, or `--poll CALLER` for a poll stream."""
    with errors_to_exit(as_json):
        if (url is None) == (poll is None):
            raise InvalidRequest("give a push endpoint URL or `--poll CALLER`, not both")
        if poll is not None and token is not None:
            raise InvalidRequest("`--token` is for push endpoints; a poller authenticates itself")
        types = [name.strip() for item in events or () for name in item.split(",") if name.strip()]
        with open_tether(db) as tether:
            if url is not None:
                receiver = tether.signals.add_push_receiver(
                    url,
                    token=read_secret(token) if token is not None else None,
                    events=types,
                    audience=audience,
                    actor=ACTOR,
                )
            else:
                assert poll is not None
                receiver = tether.signals.add_poll_receiver(
                    poll, events=types, audience=audience, actor=ACTOR
                )
    if as_json:
        emit_json(receiver.to_json())
        return
    console.print(f"added receiver [bold]{receiver.id}[/] ({receiver.delivery})", highlight=False)


@receiver_app.command("list")
def receiver_list(
    include_removed: Annotated[bool, typer.Option("--all", help="removed ones too")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Configured receivers."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        receivers = tether.signals.receivers(include_removed=include_removed)
    if as_json:
        emit_json({"receivers": [r.to_json() for r in receivers]})
        return
    table(
        f"{len(receivers)} receivers",
        ["id", "delivery", "where", "audience", "events", "token"],
        [_receiver_row(r) for r in receivers],
    )


@receiver_app.command("remove")
def receiver_remove(
    receiver_id: Annotated[str, typer.Argument(help="the receiver id (`rcv_...`)")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a receiver; SETs still queued for it are cancelled."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        receiver, cancelled = tether.signals.remove_receiver(receiver_id, actor=ACTOR)
    if as_json:
        emit_json({"removed": receiver.to_json(), "cancelled": cancelled})
        return
    console.print(
        f"removed receiver {receiver.id}; {cancelled} queued SETs cancelled",
        highlight=False,
        markup=False,
    )
