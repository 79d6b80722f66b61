"""``tether keys rotate|list``: tether's signing keys (private halves encrypted at rest)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import console, emit_json, errors_to_exit, table
from tether.tokens import SigningKey
from tether.tokens.ledger import record_event

keys_app = typer.Typer(help="tether's signing keys.", no_args_is_help=True)


def _row(key: SigningKey) -> dict[str, object]:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "status": key.status,
        "created_at": key.created_at.isoformat(),
        "verify_until": key.verify_until.isoformat() if key.verify_until else None,
    }


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[str, typer.Option(help="ES256 (default) or RS256")] = "ES256",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a new signing key; the old ones verify until their last token expired."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        key = tether.tasks.rotate_keys(alg=alg)
        keys = tether.keys.keys()
        with tether.engine.begin() as connection:
            record_event(
                connection,
                actor="cli",
                action="keys.rotate",
                target=key.kid,
                details={"alg": key.alg},
                at=datetime.now(UTC),
            )
    if as_json:
        emit_json({"active": _row(key), "keys": [_row(k) for k in keys]})
        return
    console.print(f"new signing key [bold]{key.kid}[/] ({key.alg})", highlight=False)
    for old in keys:
        if old.status == "retired" and old.verify_until and old.verify_until > key.created_at:
            console.print(
                f"  {old.kid} keeps verifying until {old.verify_until.isoformat()}",
                highlight=False,
                markup=False,
            )


@keys_app.command("list")
def keys_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every signing key: active, or retired and verifying until when."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        keys = tether.keys.keys()
    rows = [_row(k) for k in keys]
    if as_json:
        emit_json({"keys": rows})
        return
    table(
        f"{len(rows)} signing keys",
        ["kid", "alg", "status", "created", "verify until"],
        [(r["kid"], r["alg"], r["status"], r["created_at"], r["verify_until"]) for r in rows],
    )
