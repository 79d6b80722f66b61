"""``tether task open|end|list|show``: tasks, from the command line, on the store directly.

The command line is an operator's tool: ``task open --identity ID`` opens a task for an
identity without its proof (recorded as opened by ``cli``); ``--proof`` opens it as the
workload would, authenticated by its JWT-SVID or OIDC token.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import EXIT_BAD_INPUT, console, emit_json, errors_to_exit, fail, table
from tether.errors import InvalidRequest
from tether.tokens import TaskRecord, TaskRequest

task_app = typer.Typer(help="Tasks: purpose and intent, for a bounded time.", no_args_is_help=True)

TokenArgument = Annotated[str, typer.Argument(help="the token, `@FILE` to read it, `-` for stdin")]


def read_secret(value: str) -> str:
    """A token given on the command line: itself, ``@FILE`` or ``-`` (stdin)."""
    if value == "-":
        return sys.stdin.read().strip()
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text().strip()
        except OSError as exc:
            raise InvalidRequest(f"cannot read `{value[1:]}`: {exc.strerror}") from None
    return value


def _show(task: TaskRecord, answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(answer)
        return
    for key in ("task_id", "identity", "status", "purpose", "opened_at", "expires_at"):
        console.print(f"[bold]{key}[/]: {answer.get(key)}", highlight=False, markup=True)
    intent = task.intent.to_json()
    for key, values in intent.items():
        console.print(f"[bold]{key}[/]: {', '.join(values) or '-'}", highlight=False)


@task_app.command("open")
def task_open(
    purpose: Annotated[str, typer.Option(help="what the task is for")],
    action: Annotated[list[str], typer.Option("--action", help="an action it will take")],
    resource: Annotated[
        list[str], typer.Option("--resource", help="a resource pattern it will touch")
    ],
    data_class: Annotated[
        list[str] | None, typer.Option("--data-class", help="a data class it will touch")
    ] = None,
    ttl: Annotated[str | None, typer.Option(help="how long, e.g. 15m (default: class max)")] = None,
    identity: Annotated[str | None, typer.Option(help="open it for this identity")] = None,
    proof: Annotated[
        str | None, typer.Option(help="open it as the workload: its proof, `@FILE` or `-`")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open a task: its intent must lie within the identity's entitlement."""
    if (identity is None) == (proof is None):
        fail("give `--identity` or `--proof`, not both", EXIT_BAD_INPUT, as_json=as_json)
    body: dict[str, Any] = {
        "purpose": purpose,
        "intent": {"actions": action, "resources": resource, "data_classes": data_class or []},
    }
    if ttl is not None:
        body["ttl"] = ttl
    with errors_to_exit(as_json):
        request = TaskRequest.from_json(body)
        with open_tether(db) as tether:
            authority = tether.tasks
            if proof is not None:
                workload = authority.authenticate(read_secret(proof), attempt="task.open")
                task = authority.open_task(
                    request,
                    identity_id=workload.identity.id,
                    opened_by=workload.name,
                    proof_id=workload.proof.token_id,
                )
            else:
                assert identity is not None
                task = authority.open_task(request, identity_id=identity, opened_by="cli")
            answer = task.to_json(authority.now())
    _show(task, answer, as_json)


@task_app.command("end")
def task_end(
    task_id: Annotated[str, typer.Argument(help="the task id")],
    reason: Annotated[str, typer.Option(help="why, for the audit log")] = "ended",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """End a task: every token issued for it is revoked at once."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        ended = tether.tasks.end_task(task_id, actor="cli", reason=reason)
        answer = ended.task.to_json(tether.tasks.now())
    answer["revoked_tokens"] = len(ended.revoked)
    answer["already_ended"] = ended.already_ended
    if as_json:
        emit_json(answer)
    elif ended.already_ended:
        console.print(f"task {task_id} had already ended", highlight=False)
    else:
        console.print(
            f"task {task_id} ended; {len(ended.revoked)} token(s) revoked", highlight=False
        )


@task_app.command("list")
def task_list(
    identity: Annotated[str | None, typer.Option(help="only this identity's tasks")] = None,
    status: Annotated[str | None, typer.Option(help="open | ended | expired")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="how many, newest first")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Tasks, newest first."""
    if status is not None and status not in ("open", "ended", "expired"):
        fail("`--status` must be open, ended or expired", EXIT_BAD_INPUT, as_json=as_json)
    with errors_to_exit(as_json), open_tether(db) as tether:
        tasks = tether.tasks.list_tasks(identity_id=identity, state=status, limit=limit)
        now = tether.tasks.now()
    rows = [t.to_json(now) for t in tasks]
    if as_json:
        emit_json({"tasks": rows})
        return
    table(
        f"{len(rows)} tasks",
        ["task", "identity", "status", "purpose", "expires"],
        [(r["task_id"], r["identity"], r["status"], r["purpose"], r["expires_at"]) for r in rows],
    )


@task_app.command("show")
def task_show(
    task_id: Annotated[str, typer.Argument(help="the task id")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One task with the tokens issued for it (by jti)."""
    with errors_to_exit(as_json), open_tether(db) as tether:
        task = tether.tasks.task(task_id, fresh=True)
        tokens = tether.tasks.tokens_of(task_id)
        answer = task.to_json(tether.tasks.now())
    answer["tokens"] = [t.to_json() for t in tokens]
    if as_json:
        emit_json(answer)
        return
    _show(task, answer, as_json)
    table(
        f"{len(tokens)} tokens",
        ["jti", "parent", "actor", "depth", "scope", "expires", "revoked"],
        [
            (t.jti, t.parent_jti, t.actor_id, t.depth, t.scope, t.expires_at, t.revoked_at)
            for t in tokens
        ],
    )
