"""Human approvals under ``/v1/approvals`` (RFC 9457 problem+json errors).

* ``GET /v1/approvals`` (approver, auditor, admin): newest first; ``status``
  (pending, approved, denied, expired, used) and ``limit`` filter;
* ``GET /v1/approvals/{id}`` (pep, approver, auditor, admin): one approval; a PEP reads
  only the approvals its own requests created (any other answers 404). ``?wait=SECONDS``
  (at most 30) long-polls: the answer comes as soon as the approval is no longer pending,
  or when the wait is over. Waiting never blocks the event loop: a verdict recorded by
  this server wakes the wait at once, one recorded elsewhere (``tether approvals``,
  another replica) as soon as its change notice arrives on PostgreSQL
  (:mod:`tether.store.changes`), else within a quarter of a second;
* ``POST /v1/approvals/{id}/approve`` and ``/deny`` (approver), body optional
  ``{"comment": "..."}``: only a ``user`` with the approver role who is no party to the
  request decides (``tether.approvals.decide``); answers the approval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tether.api.contract import STRING, Doc, listing, obj
from tether.api.routing import caller_of, secured
from tether.api.tasks import read_json
from tether.approvals import Approval, ApprovalStatus, Verdict, check_comment
from tether.approvals.errors import ApprovalNotFound, ApprovalRequestInvalid
from tether.callers import Caller, Role
from tether.numerals import decimal
from tether.services import Tether

READERS = (Role.APPROVER, Role.AUDITOR, Role.ADMIN)
MAX_WAIT_S = 30
# How often a long-poll looks at the store for a verdict recorded by another process.
POLL_INTERVAL_S = 0.25
MAX_BODY = 16 * 1024
MAX_LIMIT = 1000
_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}


class _Verdicts:
    """Wakes every long-poll of this process when it records a verdict, or when a change
    notice says another process recorded one (:meth:`notify_from_thread`)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def event(self) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        return self._event

    def notify(self) -> None:
        fired, self._event = self._event, asyncio.Event()
        fired.set()

    def notify_from_thread(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.notify)


def _status_param(request: Request) -> ApprovalStatus | None:
    raw = request.query_params.get("status")
    if raw is None:
        return None
    try:
        return ApprovalStatus(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in ApprovalStatus)
        raise ApprovalRequestInvalid(f"`status` must be one of {allowed}, got `{raw}`") from None


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = decimal(raw, low=low, high=high)
    if value is None:
        raise ApprovalRequestInvalid(f"`{name}` must be an integer from {low} to {high}")
    return value


def _reads_everything(caller: Caller) -> bool:
    return bool(caller.roles & frozenset(READERS))


async def _comment(request: Request) -> str | None:
    body = await read_json(request, MAX_BODY, required=False)
    if not isinstance(body, dict):
        raise ApprovalRequestInvalid('the body must be a JSON object: `{"comment": "..."}`')
    unknown = sorted(set(body) - {"comment"})
    if unknown:
        raise ApprovalRequestInvalid(f"unknown member `{unknown[0]}`; only `comment` is accepted")
    return check_comment(body.get("comment"))


def approval_routes(tether: Tether) -> list[Route]:
    service = tether.approvals
    verdicts = _Verdicts()
    if tether.changes is not None:  # PostgreSQL: verdicts of other replicas wake at once
        tether.changes.subscribe(["approvals"], verdicts.notify_from_thread)

    async def visible(approval_id: str, caller: Caller) -> Approval:
        found = await run_in_threadpool(service.store.find, approval_id)
        if found is None or (
            not _reads_everything(caller) and found.requested_by != caller.identity_id
        ):
            # Not 403: whether another PEP's approval exists is none of this caller's business.
            raise ApprovalNotFound(f"no approval `{approval_id[:40]}` requested by you")
        return found

    async def list_approvals(request: Request) -> Response:
        status = _status_param(request)
        limit = _int_param(request, "limit", 100, 1, MAX_LIMIT)
        found = await run_in_threadpool(
            lambda: service.store.list(status=status, limit=limit, now=service.now())
        )
        now = service.now()
        return JSONResponse({"approvals": [a.to_json(now) for a in found]})

    async def show_approval(request: Request) -> Response:
        approval_id = request.path_params["approval_id"]
        caller = caller_of(request)
        wait = _int_param(request, "wait", 0, 0, MAX_WAIT_S)
        approval = await visible(approval_id, caller)
        deadline = time.monotonic() + wait
        while approval.status(service.now()) is ApprovalStatus.PENDING:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            woken = verdicts.event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, POLL_INTERVAL_S))
            approval = await visible(approval_id, caller)
        return JSONResponse(approval.to_json(service.now()))

    def deciding(verdict: Verdict) -> Any:
        async def decide(request: Request) -> Response:
            approval_id = request.path_params["approval_id"]
            caller = caller_of(request)
            comment = await _comment(request)
            approval = await run_in_threadpool(
                lambda: service.decide(
                    approval_id,
                    verdict,
                    approver_id=caller.identity_id,
                    comment=comment,
                    via="http",
                )
            )
            verdicts.notify()
            return JSONResponse(approval.to_json(service.now()))

        return decide

    return [
        secured(
            "/v1/approvals",
            list_approvals,
            roles=READERS,
            doc=Doc(
                "Approvals, newest first",
                query={"status": {"enum": [s.value for s in ApprovalStatus]}, "limit": _LIMIT},
                answer=listing("approvals"),
                refusals={400: "a query parameter out of range"},
            ),
        ),
        secured(
            "/v1/approvals/{approval_id}",
            show_approval,
            roles=(Role.PEP, *READERS),
            doc=Doc(
                "One approval; `wait` long-polls up to that many seconds for a verdict (a PEP "
                "sees only its own requests)",
                query={"wait": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_S}},
                refusals={400: "`wait` out of range", 404: "no such approval of yours"},
            ),
        ),
        *(
            secured(
                f"/v1/approvals/{{approval_id}}/{verdict.value}",
                deciding(verdict),
                roles=(Role.APPROVER,),
                methods=("POST",),
                doc=Doc(
                    f"{verdict.value.capitalize()} a pending approval (never one's own "
                    "request), with an optional comment",
                    body={**obj(comment=STRING), "additionalProperties": False},
                    body_required=False,
                    refusals={
                        400: "a malformed body",
                        403: "one's own request",
                        404: "no such approval",
                        409: "already decided or expired",
                    },
                ),
            )
            for verdict in (Verdict.APPROVE, Verdict.DENY)
        ),
    ]
