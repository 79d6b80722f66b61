"""Access reviews: generate and read the review of the live estate, sign it off (admins).

The report is :func:`tether.review.service.generate_report`; a sign-off
(:func:`tether.review.signoff.sign_off`) keeps or revokes each row and is bound to the
digest of the report the signer read, so a report that changed meanwhile is refused.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.callers import Role
from tether.review.metrics import DEFAULT_WINDOW_DAYS
from tether.review.service import generate_report
from tether.services import Tether
from tether.web.pages import READERS, Dashboard, View

VERDICTS = ("keep", "revoke")


def review_routes(tether: Tether, dashboard: Dashboard) -> list[Route]:
    async def review(view: View) -> Response:
        since = view.request.query_params.get("since") or "30d"
        built = await run_in_threadpool(generate_report, tether, since=since)
        signed = await run_in_threadpool(tether.records.recent_sign_offs)
        return view.render(
            "review.html",
            report=built,
            since=since,
            signed=signed,
            may_sign=view.may(Role.ADMIN),
        )

    async def sign(view: View) -> Response:
        since = view.field("since") or "30d"
        built = await run_in_threadpool(generate_report, tether, since=since)
        decisions = {
            row_id: verdict
            for row_id in built.row_ids()
            if (verdict := view.field(f"row:{row_id}")) in VERDICTS
        }
        record = await run_in_threadpool(
            lambda: tether.records.sign_off(
                built,
                signed_by=view.caller.identity_id,
                decisions=decisions,
                note=view.field("note"),
                expected_digest=view.field("report_digest") or None,
            )
        )
        return RedirectResponse(f"/reviews/{record.id}", status_code=303)

    async def signed(view: View) -> Response:
        record = await run_in_threadpool(
            tether.records.get_sign_off, view.request.path_params["review_id"]
        )
        return view.render("signoff.html", record=record)

    async def metrics(view: View) -> Response:
        current = await run_in_threadpool(
            lambda: tether.records.metrics(window_days=DEFAULT_WINDOW_DAYS)
        )
        trend = await run_in_threadpool(lambda: tether.records.metric_trend(last=30))
        return view.render("metrics.html", metrics=current.to_json(), trend=trend)

    return [
        dashboard.page("/reviews", review, roles=READERS),
        dashboard.page("/reviews", sign, roles=(Role.ADMIN,), methods=("POST",)),
        dashboard.page("/reviews/{review_id}", signed, roles=READERS),
        dashboard.page("/estate-metrics", metrics, roles=READERS),
    ]
