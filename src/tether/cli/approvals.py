"""``tether approvals list|show|approve|deny``: human approvals, on the store directly.

The same rules as ``/v1/approvals``: ``--as`` names the person deciding, who must be an
active ``user`` identity holding the approver role and no party to the request (its
subject, the caller that asked, the subject's owner). Each verdict is in the audit log.
A running server sees a verdict at once (a PEP's long-poll within a quarter second).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tether.approvals import Approval, ApprovalStatus, ApprovalStore, Verdict, decide
from tether.cli.common import DbOption, JsonOption, migrated_store
from tether.cli.output import console, emit_json, errors_to_exit

approvals_app = typer.Typer(
    help="Human approvals of high-impact actions (outcome approval_required).",
    no_args_is_help=True,
)

AsOption = Annotated[
    str,
    typer.Option("--as", help="who decides: a `user` identity with the approver role"),
]
CommentOption = Annotated[str | None, typer.Option("--comment", help="why (kept in the audit log)")]


def _table(found: list[Approval], now: datetime) -> None:
    # Ids are copied into `approve`/`deny`: never truncated; long values fold, never hide.
    view = Table(title="approvals", title_justify="left", header_style="bold")
    view.add_column("id", no_wrap=True, min_width=32)
    view.add_column("status", no_wrap=True)
    for column in ("request", "requested by", "expires (UTC)", "decided by"):
        view.add_column(column, overflow="fold")
    for approval in found:
        request = (
            f"{approval.subject_type}:{approval.subject_id} {approval.action} "
            f"{approval.resource_type}:{approval.resource_id}"
        )
        view.add_row(
            *(
                Text(value or "")
                for value in (
                    approval.id,
                    approval.status(now).value,
                    request,
                    approval.requested_by,
                    approval.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                    approval.decided_by,
                )
            )
        )
    console.print(view)


@approvals_app.command("list")
def approvals_list(
    status: Annotated[
        ApprovalStatus | None, typer.Option(help="only approvals in this status")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many")] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approvals, newest first."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        now = datetime.now(UTC)
        found = ApprovalStore(engine).list(status=status, limit=limit, now=now)
    if as_json:
        emit_json({"approvals": [a.to_json(now) for a in found]})
        return
    _table(found, now)


@approvals_app.command("show")
def approvals_show(
    approval_id: Annotated[str, typer.Argument(help="the approval id")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One approval: the request it is bound to, who asked, who decided."""
    with errors_to_exit(as_json), migrated_store(db) as engine:
        approval = ApprovalStore(engine).get(approval_id)
    answer = approval.to_json(datetime.now(UTC))
    if as_json:
        emit_json(answer)
        return
    for key, value in answer.items():
        console.print(f"[bold]{key}[/]: ", end="", highlight=False)
        console.print(str(value), highlight=False, markup=False, soft_wrap=True)


def _decide(
    verdict: Verdict,
    approval_id: str,
    user: str,
    comment: str | None,
    db: str | None,
    as_json: bool,
) -> None:
    with errors_to_exit(as_json), migrated_store(db) as engine:
        approval = decide(
            engine, approval_id, verdict, approver_id=user, comment=comment, via="cli"
        )
    if as_json:
        emit_json(approval.to_json(datetime.now(UTC)))
        return
    console.print(
        f"approval {approval.id} {approval.decided.value} by {user}: "
        f"{approval.subject_type}:{approval.subject_id} {approval.action} "
        f"{approval.resource_type}:{approval.resource_id}",
        highlight=False,
        markup=False,
    )


@approvals_app.command("approve")
def approvals_approve(
    approval_id: Annotated[str, typer.Argument(help="the approval id")],
    user: AsOption,
    comment: CommentOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a pending request: the requester's retry is then allowed, once."""
    _decide(Verdict.APPROVE, approval_id, user, comment, db, as_json)


@approvals_app.command("deny")
def approvals_deny(
    approval_id: Annotated[str, typer.Argument(help="the approval id")],
    user: AsOption,
    comment: CommentOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deny a pending request: its retry is denied (`approval_denied`)."""
    _decide(Verdict.DENY, approval_id, user, comment, db, as_json)
