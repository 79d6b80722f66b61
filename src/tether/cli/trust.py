"""``tether trust add|list|remove``: who may prove workload identity.

Anchors the estate declares (``trust:``) are changed in the estate files; these commands
manage anchors of their own (origin ``cli``). Adding an anchor again replaces its keys:
that is how a bundle rotates without an estate change. A running server uses the change
within its reload interval.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tether.cli.common import DbOption, JsonOption, migrated_store
from tether.cli.output import EXIT_BAD_INPUT, console, emit_json, errors_to_exit, fail, table
from tether.errors import InvalidRequest
from tether.tokens.trust import add_trust_anchor, list_trust_anchors, remove_trust_anchor

trust_app = typer.Typer(
    help="Trust anchors: SPIFFE trust domains, OIDC issuers.", no_args_is_help=True
)


def _jwks(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"cannot read `{path}`: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidRequest(f"`{path}` is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequest(f"`{path}` is not a JWKS (a JSON object with `keys`)")
    return document


@trust_app.command("add")
def trust_add(
    name: Annotated[
        str, typer.Argument(help="a trust domain (spiffe://example.org) or an OIDC issuer URL")
    ],
    jwks_file: Annotated[Path | None, typer.Option(help="the JWKS bundle (a file)")] = None,
    jwks_uri: Annotated[str | None, typer.Option(help="OIDC only: fetch keys from here")] = None,
    audience: Annotated[str | None, typer.Option(help="the audience its tokens carry")] = None,
    require_kid: Annotated[
        bool, typer.Option("--require-kid/--no-require-kid", help="refuse tokens without kid")
    ] = True,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trust a SPIFFE trust domain or an OIDC issuer (again: replace its keys)."""
    if (jwks_file is None) == (jwks_uri is None):
        fail("give `--jwks-file` or `--jwks-uri`", EXIT_BAD_INPUT, as_json=as_json)
    with errors_to_exit(as_json), migrated_store(db) as engine:
        settings: dict[str, Any] = {"require_kid": require_kid}
        if jwks_file is not None:
            settings["jwks"] = _jwks(jwks_file)
            settings["jwks_file"] = str(jwks_file)
        if jwks_uri is not None:
            settings["jwks_uri"] = jwks_uri
        if audience is not None:
            settings["audience"] = audience
        kind = add_trust_anchor(engine, name, settings, actor="cli", now=datetime.now(UTC))
    if as_json:
        emit_json({"name": name, "kind": kind, "origin": "cli"})
    else:
        console.print(f"trusting {kind} anchor {name}", highlight=False, markup=False)


@trust_app.command("list")
def trust_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every trust anchor, where it comes from, and whether tether can use it."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        rows = list_trust_anchors(engine)
    if as_json:
        emit_json({"trust": rows})
        return
    table(
        f"{len(rows)} trust anchors",
        ["name", "kind", "origin", "audience", "keys", "usable"],
        [
            (
                r["name"],
                r["kind"],
                r["origin"],
                r["audience"],
                r["jwks_uri"] or r["keys"],
                "yes" if r["usable"] else f"no: {r['problem']}",
            )
            for r in rows
        ],
    )


@trust_app.command("remove")
def trust_remove(
    name: Annotated[str, typer.Argument(help="the anchor's name")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop trusting an anchor added with `tether trust add`."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        removed = remove_trust_anchor(engine, name, actor="cli", now=datetime.now(UTC))
    if not removed:
        fail(f"no trust anchor `{name}`", EXIT_BAD_INPUT, as_json=as_json, error_code="not_found")
    if as_json:
        emit_json({"removed": name})
    else:
        console.print(f"no longer trusting {name}", highlight=False, markup=False)
