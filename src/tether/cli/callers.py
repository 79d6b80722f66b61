"""``tether pep add|list|revoke`` and ``tether admin token``: tether's own callers.

These work on the store directly (no server, no HTTP credentials); a running server sees
a new key, a revoked one or a new admin within one reload interval.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.callers import Role, add_api_key, admin_token, list_api_keys, revoke_api_key
from tether.cli.common import DbOption, JsonOption, migrated_store, settings_for
from tether.cli.output import EXIT_BAD_INPUT, console, emit_json, errors_to_exit, fail, table
from tether.tokens import KeyRing, load_or_create_master_key

pep_app = typer.Typer(
    help="PEP API keys (legacy static secrets, inventoried).", no_args_is_help=True
)
admin_app = typer.Typer(help="People who administer tether.", no_args_is_help=True)

RoleOption = Annotated[
    list[Role] | None,
    typer.Option("--role", help="a role to hold (repeat for several)", show_default=False),
]
_TTL = re.compile(r"^([0-9]+)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@pep_app.command("add")
def pep_add(
    name: Annotated[str, typer.Argument(help="the caller's name (an identity id)")],
    role: RoleOption = None,
    owner: Annotated[str | None, typer.Option(help="who is responsible for this key")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a PEP API key; it is printed once and only its salted hash is kept."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        issued = add_api_key(engine, name, roles=role or [Role.PEP], owner=owner)
    roles = sorted(r.value for r in issued.roles)
    if as_json:
        emit_json(
            {
                "name": issued.identity_id,
                "key_id": issued.key_id,
                "key": issued.key,
                "roles": roles,
                "created_at": issued.created_at.isoformat(),
            }
        )
        return
    console.print(
        f"PEP key for [bold]{escape(issued.identity_id)}[/] "
        f"(roles {', '.join(roles)}, key id {issued.key_id}); shown once, store it now:",
        highlight=False,
    )
    console.print(issued.key, highlight=False, markup=False, soft_wrap=True)
    console.print("send it as `Authorization: Bearer <key>`", highlight=False, markup=False)


@pep_app.command("list")
def pep_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every PEP key: caller, roles, key id, status, age, last use (never a secret)."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        rows = list_api_keys(engine)
    if as_json:
        emit_json({"keys": rows})
        return
    table(
        f"{len(rows)} PEP keys (static secrets)",
        ["name", "roles", "key id", "status", "created", "age", "last used", "owner"],
        [
            (
                r["name"],
                ", ".join(r["roles"]),
                r["key_id"],
                r["status"],
                r["created_at"][:19],
                f"{r['age_days']}d",
                (r["last_used_at"] or "never")[:19],
                r["owner"],
            )
            for r in rows
        ],
    )


@pep_app.command("revoke")
def pep_revoke(
    name: Annotated[str, typer.Argument(help="the caller whose keys to revoke")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke every key of a PEP; a running server refuses them within a second."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        revoked = revoke_api_key(engine, name)
    if as_json:
        emit_json({"name": name, "revoked": revoked})
        return
    shown = ", ".join(revoked) or "none (already revoked)"
    console.print(f"revoked keys of [bold]{escape(name)}[/]: {shown}", highlight=False)


def parse_ttl(text: str) -> int:
    match = _TTL.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        fail(f"--ttl must look like `30m`, `1h` or `8h`, not `{text}`", EXIT_BAD_INPUT)
    return int(match.group(1)) * _UNIT[match.group(2)]


@admin_app.command("token")
def token(
    user: Annotated[str, typer.Option("--user", help="the person (a `user` identity)")],
    ttl: Annotated[str, typer.Option(help="lifetime, at most 24h")] = "1h",
    role: RoleOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a short-lived admin token (a user the store does not know is made an admin)."""
    seconds = parse_ttl(ttl)
    with errors_to_exit(as_json), migrated_store(db) as engine:
        settings = settings_for(db)
        master = load_or_create_master_key(
            Path(settings.master_key_file), settings.master_key or None
        )
        issued = admin_token(
            engine,
            KeyRing(engine, master),
            user,
            issuer=settings.public_url,
            roles=role,
            ttl_s=seconds,
        )
    roles = sorted(r.value for r in issued.roles)
    if as_json:
        emit_json(
            {
                "user": issued.user,
                "token": issued.token,
                "jti": issued.jti,
                "roles": roles,
                "expires_at": issued.expires_at.isoformat(),
            }
        )
        return
    left = issued.expires_at - datetime.now(UTC)
    console.print(
        f"admin token for [bold]{escape(issued.user)}[/] (roles {', '.join(roles)}, "
        f"jti {issued.jti}, expires in {int(left.total_seconds() // 60)} min):",
        highlight=False,
    )
    console.print(issued.token, highlight=False, markup=False, soft_wrap=True)
