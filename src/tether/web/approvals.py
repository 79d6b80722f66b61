"""The approvals queue: pending requests, approved or denied by an approver.

:meth:`tether.approvals.ApprovalService.decide` applies the rules (a person with the
approver role, never a party to the request); the PEP's retry then passes once.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.approvals import ApprovalStatus, Verdict, check_comment
from tether.callers import Role
from tether.services import Tether
from tether.web.pages import Dashboard, Handler, View

VIEWERS = (Role.APPROVER, Role.AUDITOR, Role.ADMIN)


def approval_routes(tether: Tether, dashboard: Dashboard) -> list[Route]:
    service = tether.approvals

    async def queue(view: View) -> Response:
        now = service.now()
        pending = await run_in_threadpool(
            lambda: service.store.list(status=ApprovalStatus.PENDING, limit=200, now=now)
        )
        recent = await run_in_threadpool(lambda: service.store.list(limit=50, now=now))
        return view.render(
            "approvals.html",
            pending=pending,
            recent=[a for a in recent if a.status(now) is not ApprovalStatus.PENDING],
            now=now,
            may_decide=view.may(Role.APPROVER),
        )

    def deciding(verdict: Verdict) -> Handler:
        async def decide(view: View) -> Response:
            approval_id = view.request.path_params["approval_id"]
            comment = check_comment(view.field("comment") or None)
            await run_in_threadpool(
                lambda: service.decide(
                    approval_id,
                    verdict,
                    approver_id=view.caller.identity_id,
                    comment=comment,
                    via="dashboard",
                )
            )
            return RedirectResponse("/approvals", status_code=303)

        return decide

    return [
        dashboard.page("/approvals", queue, roles=VIEWERS),
        *(
            dashboard.page(
                f"/approvals/{{approval_id}}/{verdict.value}",
                deciding(verdict),
                roles=(Role.APPROVER,),
                methods=("POST",),
            )
            for verdict in (Verdict.APPROVE, Verdict.DENY)
        ),
    ]
