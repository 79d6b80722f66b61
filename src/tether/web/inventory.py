"""The inventory (filtered, sorted, paged) and one identity's page, with offboarding.

Read models only (:class:`tether.records.Records`): the identity, the lifecycle of
:mod:`tether.review.lifecycle`, the access review of :mod:`tether.review.access`, recorded
decisions and findings, open tasks and their live tokens, third-party OAuth grants, and
the drift score per day over the last 30 days (drawn by :mod:`tether.web.plots`);
offboarding is :func:`tether.review.offboard.offboard_identity`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tether.callers import Role
from tether.drift.findings import FindingQuery
from tether.numerals import decimal
from tether.review.offboard import offboard_identity
from tether.services import Tether
from tether.web.pages import READERS, Dashboard, View
from tether.web.plots import drift_plot

log = logging.getLogger(__name__)

PAGE_SIZE = 50
SORTS = ("id", "kind", "class", "owner", "last_used", "findings")
FILTERS = ("kind", "class", "owner", "environment", "stale", "static_secret", "open_findings")
INVENTORY_TTL_S = 15.0
DRIFT_DAYS = 30


def inventory_rows(tether: Tether) -> list[dict[str, Any]]:
    """Every identity with what the inventory filters, sorts and shows."""
    now = tether.tasks.now()
    open_findings = tether.records.open_finding_counts()
    return [
        {
            "identity": item.identity_id,
            "kind": item.kind,
            "class": item.workload_class,
            "owner": item.owner,
            "environment": str(item.attributes.get("environment", "")),
            "last_used_at": item.last_used_at.isoformat() if item.last_used_at else None,
            "static_secret": item.credential.static,
            "flags": [flag for flag, _ in item.flags],
            "findings": open_findings.get(item.identity_id, 0),
        }
        for item in tether.records.lifecycles(now=now)
    ]


class InventorySnapshot:
    """The inventory rows, reused for ``ttl_s`` so that filtering, sorting and paging do not
    recompute every identity's lifecycle.

    Past ``ttl_s`` the rows are rebuilt in a background thread while the old ones are
    still served (the page says how old they are), so no visitor waits for a rebuild
    after an expiry; only the first visit and the first after one of the dashboard's own
    changes (which drop the rows at once, so its author sees it) build them in the request.
    """

    def __init__(
        self, build: Callable[[], list[dict[str, Any]]], ttl_s: float = INVENTORY_TTL_S
    ) -> None:
        self._build = build
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] | None = None
        self._at = 0.0
        self._generation = 0  # bumped by every drop: a refresh begun before it is stale
        self._refreshing = False

    def rows(self) -> tuple[list[dict[str, Any]], float]:
        """The rows and their age in seconds."""
        with self._lock:
            now = time.monotonic()
            if self._rows is None:
                self._rows, self._at = self._build(), now
            elif now - self._at > self._ttl_s and not self._refreshing:
                self._refreshing = True
                threading.Thread(
                    target=self._refresh, args=(self._generation,), daemon=True
                ).start()
            return self._rows, now - self._at

    def _refresh(self, generation: int) -> None:
        try:
            rows, at = self._build(), time.monotonic()
        except Exception:  # the old rows stay; the next request after the TTL tries again
            log.exception("the inventory could not be rebuilt")
            rows = None
        with self._lock:
            self._refreshing = False
            if rows is not None and generation == self._generation:
                self._rows, self._at = rows, at

    def drop(self) -> None:
        with self._lock:
            self._rows = None
            self._generation += 1

    def expire(self) -> None:
        """Take the rows for older than the TTL (as the benchmark does to time that case)."""
        with self._lock:
            self._at = time.monotonic() - self._ttl_s - 1


def _keep(row: dict[str, Any], filters: dict[str, str]) -> bool:
    for name, wanted in filters.items():
        if name in ("stale", "static_secret", "open_findings"):
            has = {
                "stale": "stale" in row["flags"],
                "static_secret": bool(row["static_secret"]),
                "open_findings": row["findings"] > 0,
            }[name]
            if has != (wanted == "yes"):
                return False
        elif str(row.get(name) or "") != wanted:
            return False
    return True


def _sort_key(name: str) -> Any:
    if name == "findings":
        return lambda r: (-r["findings"], r["identity"])
    if name == "last_used":
        return lambda r: (r["last_used_at"] or "", r["identity"])
    field = "identity" if name == "id" else name
    return lambda r: (str(r.get(field) or ""), r["identity"])


def inventory_routes(tether: Tether, dashboard: Dashboard) -> list[Route]:
    snapshot = dashboard.inventory = InventorySnapshot(lambda: inventory_rows(tether))

    async def inventory(view: View) -> Response:
        params = view.request.query_params
        filters = {n: params[n] for n in FILTERS if params.get(n)}
        sort = params.get("sort", "id")
        if sort not in SORTS:
            sort = "id"
        page = decimal(params.get("page"), low=1) or 1
        rows, age = await run_in_threadpool(snapshot.rows)
        choices = {
            n: sorted({str(r.get(n) or "") for r in rows} - {""})
            for n in ("kind", "class", "owner", "environment")
        }
        kept = sorted((r for r in rows if _keep(r, filters)), key=_sort_key(sort))
        pages = max(1, -(-len(kept) // PAGE_SIZE))
        page = min(max(page, 1), pages)
        shown = kept[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]

        def link(**changes: Any) -> str:
            return "?" + urlencode({**filters, "sort": sort, **changes})

        return view.render(
            "inventory.html",
            link=link,
            rows=shown,
            total=len(kept),
            filters=filters,
            choices=choices,
            sort=sort,
            sorts=SORTS,
            page=page,
            pages=pages,
            age=age,
        )

    def identity_facts(identity_id: str) -> dict[str, Any]:
        # Decisions are committed in batches: commit what is queued, so the page shows
        # them (in a worker thread: a flush may wait, the event loop must not).
        tether.decision_log.flush()
        now = tether.tasks.now()
        identity = tether.records.identity(identity_id)
        review = tether.records.access_review(
            since=now - timedelta(days=30), until=now, identity=identity_id
        ).identities
        lifecycle = next(
            (i.to_json(now) for i in tether.records.lifecycles(now=now, identity=identity_id)),
            None,
        )
        found = tether.records.findings(FindingQuery(identity_id=identity_id, limit=50))
        tasks = tether.records.open_tasks(identity_id, now=now)
        since = now - timedelta(days=DRIFT_DAYS)
        scores = tether.records.drift_scores(identity_id, since=since, until=now)
        return {
            "tasks": tasks,
            "tokens": tether.records.live_tokens([t.id for t in tasks], now=now),
            "grants": tether.records.grants_of(identity_id),
            "drift": drift_plot(scores, first=since.date(), last=now.date()),
            "identity": identity,
            "review": review[0] if review else None,
            "lifecycle": lifecycle,
            "decisions": tether.records.decisions(subject=identity_id, limit=20),
            "findings": sorted(found, key=lambda f: -f.score),
        }

    async def identity(view: View) -> Response:
        identity_id = view.request.path_params["identity_id"]
        facts = await run_in_threadpool(identity_facts, identity_id)
        return view.render("identity.html", **facts)

    async def confirm_offboard(view: View) -> Response:
        identity_id = view.request.query_params.get("identity", "")
        found = await run_in_threadpool(tether.records.identity, identity_id)
        return view.render("offboard.html", identity=found)

    async def offboard(view: View) -> Response:
        identity_id = view.field("identity")
        await run_in_threadpool(
            lambda: offboard_identity(
                tether.tasks,
                identity_id,
                actor=view.caller.identity_id,
                reason=view.field("reason") or "offboarded from the dashboard",
            )
        )
        await run_in_threadpool(tether.refresh_offboarded)
        snapshot.drop()
        return RedirectResponse(f"/identities/{quote(identity_id)}", status_code=303)

    return [
        dashboard.page("/inventory", inventory, roles=READERS),
        dashboard.page("/identities/{identity_id:path}", identity, roles=READERS),
        dashboard.page("/offboard", confirm_offboard, roles=(Role.ADMIN,)),
        dashboard.page("/offboard", offboard, roles=(Role.ADMIN,), methods=("POST",)),
    ]
