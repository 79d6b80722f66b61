"""Findings ranked by score (with its parts and framework references) and exceptions:
owned, justified, expiring (:func:`tether.drift.exceptions.add_exception`, audited)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.callers import Role
from tether.drift.findings import FindingQuery
from tether.errors import InvalidRequest
from tether.services import Tether
from tether.web.pages import READERS, Dashboard, View

SHOWN = 200


def _expiry(text: str) -> datetime:
    try:
        day = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"the expiry must be a date (YYYY-MM-DD), got `{text}`") from None
    if day.tzinfo is None:
        day = datetime.combine(day.date(), time(23, 59, 59), tzinfo=UTC)
    return day


def finding_routes(tether: Tether, dashboard: Dashboard) -> list[Route]:
    async def findings(view: View) -> Response:
        now = datetime.now(UTC)
        identity = view.request.query_params.get("identity") or None
        found = await run_in_threadpool(
            tether.records.findings, FindingQuery(identity_id=identity, limit=SHOWN)
        )
        exceptions = await run_in_threadpool(
            lambda: tether.records.exceptions(now=now, expiring_within=timedelta(days=14))
        )
        return view.render(
            "findings.html",
            findings=sorted(found, key=lambda f: (-f.score, f.finding_id)),
            exceptions=[e.to_json(now) for e in exceptions],
            identity=identity,
            default_expiry=(now + timedelta(days=30)).date().isoformat(),
            may_except=view.may(Role.ADMIN),
        )

    async def create_exception(view: View) -> Response:
        now = datetime.now(UTC)
        fields = {n: view.field(n) for n in ("identity", "detector", "owner", "justification")}
        missing = [n for n, v in fields.items() if not v]
        if missing:
            raise InvalidRequest(f"fill in {', '.join(missing)}")
        expires = _expiry(view.field("expires"))
        await run_in_threadpool(
            lambda: tether.records.add_exception(
                identity_id=fields["identity"],
                detector=fields["detector"],
                owner=fields["owner"],
                justification=fields["justification"],
                expires_at=expires,
                resource_pattern=view.field("resource") or None,
                downgrade_to=None,
                actor=view.caller.identity_id,
                now=now,
            )
        )
        if dashboard.inventory is not None:  # open findings counts may have changed
            dashboard.inventory.drop()
        return RedirectResponse("/findings", status_code=303)

    return [
        dashboard.page("/findings", findings, roles=READERS),
        dashboard.page("/exceptions", create_exception, roles=(Role.ADMIN,), methods=("POST",)),
    ]
