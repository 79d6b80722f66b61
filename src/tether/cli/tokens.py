"""``tether token exchange|introspect|revoke``: task tokens from the command line."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import EXIT_ACTION_NEEDED, EXIT_OK, console, emit_json, errors_to_exit
from tether.cli.tasks import TokenArgument, read_secret
from tether.tokens import (
    ACCESS_TOKEN_TYPE,
    GRANT_TYPE,
    JWT_TYPE,
    TASK_RESOURCE,
    TOKEN_TYP,
    ExchangeRequest,
    exchange,
    introspect,
    revoke,
    token_response,
    unverified_header,
)
from tether.tokens.errors import TokenRejected

token_app = typer.Typer(help="Task tokens: exchange, introspect, revoke.", no_args_is_help=True)

_TYPES = {"jwt": JWT_TYPE, "access_token": ACCESS_TOKEN_TYPE}


def _subject_type(token: str, given: str | None) -> str:
    if given is not None:
        return _TYPES.get(given, given)
    try:  # a task token says so in its header; anything else is taken for a proof
        return ACCESS_TOKEN_TYPE if unverified_header(token).get("typ") == TOKEN_TYP else JWT_TYPE
    except TokenRejected:
        return JWT_TYPE


@token_app.command("exchange")
def token_exchange(
    subject_token: Annotated[
        str, typer.Option(help="a workload proof or a task token; `@FILE` or `-`")
    ],
    task: Annotated[str | None, typer.Option(help="the task id (needed with a proof)")] = None,
    subject_token_type: Annotated[
        str | None, typer.Option(help="jwt | access_token (default: from the token)")
    ] = None,
    actor_token: Annotated[
        str | None, typer.Option(help="delegate: the sub-agent's proof; `@FILE` or `-`")
    ] = None,
    scope: Annotated[
        str | None, typer.Option(help="narrow to these actions (space-separated)")
    ] = None,
    audience: Annotated[str | None, typer.Option(help="must be tether's audience")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Exchange a workload proof (or a task token) for a task token (RFC 8693)."""
    with errors_to_exit(as_json):
        subject = read_secret(subject_token)
        form: dict[str, list[str]] = {
            "grant_type": [GRANT_TYPE],
            "subject_token": [subject],
            "subject_token_type": [_subject_type(subject, subject_token_type)],
        }
        if task is not None:
            form["resource"] = [TASK_RESOURCE + task]
        if actor_token is not None:
            form["actor_token"] = [read_secret(actor_token)]
            form["actor_token_type"] = [JWT_TYPE]
        if scope is not None:
            form["scope"] = [scope]
        if audience is not None:
            form["audience"] = [audience]
        request = ExchangeRequest.from_form(form)
        with open_tether(db) as tether:
            issued = exchange(tether.tasks, request)
    answer = token_response(issued, time.time())
    if as_json:
        emit_json(answer)
        return
    console.print(answer["access_token"], highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"scope: {answer['scope']}; expires in {answer['expires_in']} s; "
        f"jti {issued.claims.jti}; task {issued.claims.task_id}",
        highlight=False,
        markup=False,
        style="dim",
    )


@token_app.command("introspect")
def token_introspect(
    token: TokenArgument, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """Is this task token active (RFC 7662)? Exit 0 if it is, 1 if not."""
    with errors_to_exit(as_json):
        presented = read_secret(token)
        with open_tether(db) as tether:
            answer = introspect(tether.tasks, presented)
    if as_json:
        emit_json(answer)
    elif answer["active"]:
        console.print(
            f"[bold green]active[/]  {answer['sub']} task {answer['txn']} scope "
            f"{answer['scope']!r} depth {answer['delegation_depth']}",
            highlight=False,
        )
    else:
        console.print(f"[bold red]inactive[/]  ({answer['error_code']})", highlight=False)
    raise SystemExit(EXIT_OK if answer["active"] else EXIT_ACTION_NEEDED)


@token_app.command("revoke")
def token_revoke(
    token: Annotated[
        str | None, typer.Argument(help="the token, `@FILE` or `-` (or give --jti)")
    ] = None,
    jti: Annotated[str | None, typer.Option(help="revoke by jti instead")] = None,
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "revoked",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a task token and every token delegated from it (RFC 7009)."""
    from tether.cli.output import EXIT_BAD_INPUT, fail

    if (token is None) == (jti is None):
        fail("give a token or `--jti`, not both", EXIT_BAD_INPUT, as_json=as_json)
    with errors_to_exit(as_json), open_tether(db) as tether:
        if jti is not None:
            revoked = tether.tasks.revoke_jti(jti, actor="cli", reason=reason)
        else:
            assert token is not None
            revoked = revoke(tether.tasks, read_secret(token), actor="cli")
    if as_json:
        emit_json({"revoked": list(revoked)})
    elif revoked:
        console.print(f"revoked {len(revoked)} token(s): {', '.join(revoked)}", highlight=False)
    else:
        console.print("nothing to revoke (unknown, expired or already revoked)", highlight=False)
