"""AuthZEN Authorization API 1.0 endpoints: evaluation, evaluations, search, metadata.

The response is ``{"decision": bool, "context": {...}}``; tether puts ``outcome``,
``reasons``, ``obligations``, ``approval`` and ``decision_id`` in ``context``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from tether.api.authzen_schema import (
    RequestInvalid,
    describe,
    merge_item,
    parse_action,
    parse_context,
    parse_entity,
    parse_evaluation,
    parse_semantic,
    require_object_body,
    require_object_defaults,
)
from tether.config import Settings
from tether.decider import RecordedDecision, WouldBlock
from tether.errors import FieldError, InvalidRequest
from tether.policy import Decision, DecisionRequest, EntityRef, Outcome
from tether.services import Tether
from tether.tokens import TOKEN_PROPERTY, UNVERIFIED_SUBJECT, bind_task_token
from tether.tokens.decisions import bind_inspected


def decision_json(recorded: RecordedDecision) -> dict[str, Any]:
    decision: Decision = recorded.decision
    permits = decision.permits
    context: dict[str, Any] = {
        "decision_id": recorded.decision_id,
        "outcome": str(decision.outcome),  # a StrEnum's str() is its value
        "reasons": list(decision.reasons),
    }
    if decision.obligations and permits:  # none to enforce on a refusal
        context["obligations"] = dict(decision.obligations)
    if decision.errors:
        context["errors"] = list(decision.errors)
    if decision.error_code is not None:
        context["error_code"] = decision.error_code
    if decision.outcome is Outcome.APPROVAL_REQUIRED:
        # The ticket (id, status, expires_at, poll) of the pending approval.
        context["approval"] = dict(recorded.approval or {"required": True})
    return {"decision": permits, "context": context}


# The reason given for an evaluations item that could not be evaluated (§7.2.1).
INVALID_ITEM = "invalid-request"


def evaluate_one(
    tether: Tether,
    body: Any,
    request_id: str | None,
    caller: str | None,
    *,
    may_block: bool = True,
) -> bytes:
    """``POST /access/v1/evaluation`` (``may_block=False``: raise
    :class:`~tether.services.WouldBlock` where the answer needs store I/O)."""
    request = require_object_body(body)
    return orjson.dumps(_evaluate(tether, request, request_id, caller, may_block=may_block))


def _evaluate(
    tether: Tether,
    body: Mapping[str, Any],
    request_id: str | None,
    caller: str | None,
    path: str = "",
    *,
    may_block: bool = True,
) -> dict[str, Any]:
    """One evaluation; with a task token in ``subject.properties.token``, the subject and
    the task come from the token (``tether.tokens.decisions``)."""
    subject = body.get("subject")
    properties = subject.get("properties") if isinstance(subject, dict) else None
    if not isinstance(properties, dict) or TOKEN_PROPERTY not in properties:
        request = parse_evaluation(body, path=path)
        recorded = tether.decider.evaluate(
            request, request_id=request_id, caller=caller, may_block=may_block
        )
        return decision_json(recorded)
    token = properties[TOKEN_PROPERTY]
    inspection = None
    if not may_block:
        # Answered here only when checking the token needs no store I/O: verified before,
        # and the revocation state known current (PostgreSQL with a live change feed).
        inspection = tether.tasks.inspect_in_memory(token)
        if inspection is None:
            raise WouldBlock
    assert isinstance(subject, dict)  # the task token never reaches Cedar or the log
    subject_given = "type" in subject or "id" in subject
    stripped = {k: v for k, v in properties.items() if k != TOKEN_PROPERTY}
    if subject_given:
        without = {**subject, "properties": stripped}
    else:
        without = {
            "type": UNVERIFIED_SUBJECT.type,
            "id": UNVERIFIED_SUBJECT.id,
            "properties": stripped,
        }
    request = parse_evaluation({**body, "subject": without}, path=path)
    if inspection is None:
        request, task = bind_task_token(tether.tasks, request, token, subject_given=subject_given)
    else:
        request, task = bind_inspected(
            tether.tasks, request, inspection, subject_given=subject_given
        )
    recorded = tether.decider.evaluate(
        request, request_id=request_id, caller=caller, task=task, may_block=may_block
    )
    return decision_json(recorded)


def evaluate_many(
    tether: Tether,
    body: Any,
    request_id: str | None,
    caller: str | None,
    *,
    may_block: bool = True,
) -> bytes:
    """``POST /access/v1/evaluations`` (``may_block`` as for :func:`evaluate_one`)."""
    body = require_object_body(body)
    items = body.get("evaluations")
    if items is None or items == []:
        return evaluate_one(tether, body, request_id, caller, may_block=may_block)
    if not isinstance(items, list):
        raise RequestInvalid([FieldError("evaluations", "must be an array")])
    require_object_defaults(body)
    semantic = parse_semantic(body)
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append(
                _item_error(index, FieldError(f"evaluations[{index}]", "must be an object"))
            )
        else:
            try:
                merged = merge_item(body, item)
                results.append(_evaluate(tether, merged, request_id, caller, may_block=may_block))
            except RequestInvalid as exc:
                results.append(_item_error(index, *exc.field_errors))
        decided = results[-1]["decision"]
        if (semantic == "deny_on_first_deny" and not decided) or (
            semantic == "permit_on_first_permit" and decided
        ):
            break
    return orjson.dumps({"evaluations": results})


def _item_error(index: int, *errors: FieldError) -> dict[str, Any]:
    # Nothing was evaluated, so nothing is recorded and there is no decision_id.
    return {
        "decision": False,
        "context": {
            "outcome": Outcome.DENY.value,
            "reasons": [INVALID_ITEM],
            "error": {
                "status": 400,
                "error_code": RequestInvalid.code,
                "message": f"evaluation {index}: " + describe(list(errors)),
            },
        },
    }


# --- search (§8): the searched-for entity may omit its id, every input entity must not ----


def _paginate(results: list[Any], body: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    page = body.get("page")
    if page is not None and not isinstance(page, dict):
        raise RequestInvalid([FieldError("page", "must be an object")])
    page = page or {}
    limit = page.get("limit", settings.search_page_size)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:  # §8.2.1
        raise RequestInvalid([FieldError("page.limit", "must be a non-negative integer")])
    # A PDP may return fewer than asked (§8.2.1): a page is bounded whatever the caller asks.
    limit = min(limit, settings.search_max_page_size)
    fingerprint = hashlib.sha256(
        orjson.dumps(
            {k: body.get(k) for k in ("subject", "action", "resource", "context")},
            option=orjson.OPT_SORT_KEYS,
        )
    ).hexdigest()[:16]
    offset = 0
    token = page.get("token")
    if token:
        offset = _decode_token(token, fingerprint)
    chunk = results[offset : offset + limit]
    next_offset = offset + len(chunk)
    next_token = _encode_token(next_offset, fingerprint) if next_offset < len(results) else ""
    return {
        "results": chunk,
        "page": {"next_token": next_token, "count": len(chunk), "total": len(results)},
    }


def _encode_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{fingerprint}".encode()).decode().rstrip("=")


def _decode_token(token: Any, fingerprint: str) -> int:
    problem = RequestInvalid([FieldError("page.token", "is not a token this search returned")])
    if not isinstance(token, str):
        raise problem
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        offset_text, _, seen = raw.partition(":")
        offset = int(offset_text)
    except (ValueError, UnicodeDecodeError):
        raise problem from None
    if seen != fingerprint or offset < 0:
        raise problem
    return offset


def search_subject(tether: Tether, body: Any) -> bytes:
    body = require_object_body(body)
    errors: list[FieldError] = []
    stype, _, _ = parse_entity(body, "subject", errors, need_id=False)
    action, aprops = parse_action(body, errors)
    rtype, rid, rprops = parse_entity(body, "resource", errors)
    context = parse_context(body, errors)
    if errors or stype is None or action is None or rtype is None or rid is None:
        raise RequestInvalid(errors)
    template = DecisionRequest(
        EntityRef(stype, ""), action, EntityRef(rtype, rid), context, {}, rprops, aprops
    )
    found = tether.search_subjects(stype, template)
    results = [{"type": r.type, "id": r.id} for r in found]
    return orjson.dumps(_paginate(results, body, tether.settings))


def search_resource(tether: Tether, body: Any) -> bytes:
    body = require_object_body(body)
    errors: list[FieldError] = []
    stype, sid, sprops = parse_entity(body, "subject", errors)
    action, aprops = parse_action(body, errors)
    rtype, _, _ = parse_entity(body, "resource", errors, need_id=False)
    context = parse_context(body, errors)
    if errors or stype is None or sid is None or action is None or rtype is None:
        raise RequestInvalid(errors)
    template = DecisionRequest(
        EntityRef(stype, sid), action, EntityRef(rtype, ""), context, sprops, {}, aprops
    )
    found = tether.search_resources(rtype, template)
    results = [{"type": r.type, "id": r.id} for r in found]
    return orjson.dumps(_paginate(results, body, tether.settings))


def search_action(tether: Tether, body: Any) -> bytes:
    body = require_object_body(body)
    errors: list[FieldError] = []
    stype, sid, sprops = parse_entity(body, "subject", errors)
    rtype, rid, rprops = parse_entity(body, "resource", errors)
    context = parse_context(body, errors)
    if errors or stype is None or sid is None or rtype is None or rid is None:
        raise RequestInvalid(errors)
    template = DecisionRequest(
        EntityRef(stype, sid), "", EntityRef(rtype, rid), context, sprops, rprops, {}
    )
    results = [{"name": name} for name in tether.search_actions(template)]
    return orjson.dumps(_paginate(results, body, tether.settings))


def configuration(base_url: str) -> bytes:
    base = base_url.rstrip("/")
    return orjson.dumps(
        {
            "policy_decision_point": base,
            "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
            "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
            "search_subject_endpoint": f"{base}/access/v1/search/subject",
            "search_resource_endpoint": f"{base}/access/v1/search/resource",
            "search_action_endpoint": f"{base}/access/v1/search/action",
        }
    )


__all__ = ["InvalidRequest"]
