"""The contracts of the AuthZEN 1.0 operations (§6-§8), as JSON schemas.

Unknown members are allowed everywhere (AuthZEN: a PDP ignores what it does not know).
Errors are problem+json with ``error_code`` (``authzen_request_invalid`` names the member).
"""

from __future__ import annotations

from tether.api.contract import OBJECT, STRING, Doc, Schema, array, obj

_PROPERTIES = {"properties": OBJECT}
ENTITY = obj(("type", "id"), type=STRING, id=STRING, **_PROPERTIES)
ACTION = obj(("name",), name=STRING, **_PROPERTIES)
EVALUATION = obj(
    ("subject", "action", "resource"),
    subject=ENTITY,
    action=ACTION,
    resource=ENTITY,
    context=OBJECT,
)
_PARTIAL = obj(subject=ENTITY, action=ACTION, resource=ENTITY, context=OBJECT)
EVALUATIONS = obj(
    subject=ENTITY,
    action=ACTION,
    resource=ENTITY,
    context=OBJECT,
    evaluations=array(_PARTIAL),  # at most TETHER_MAX_EVALUATIONS (413 says so)
    options=obj(
        evaluations_semantic={
            "enum": ["execute_all", "deny_on_first_deny", "permit_on_first_permit"]
        }
    ),
)
# `context` of a decision: outcome, reasons, obligations, approval, decision_id.
DECISION = obj(("decision",), decision={"type": "boolean"}, context=OBJECT)
_PAGE = obj(token=STRING, limit={"type": "integer", "minimum": 0})
_TYPED = obj(("type",), type=STRING, **_PROPERTIES)


# AuthZEN §10.1.3: the PEP's id of the request, echoed on the answer; kept with the
# decision (tether makes one when it is left out).
REQUEST_ID = {
    "X-Request-ID": {
        **STRING,
        "description": "the PEP's request id: echoed, and kept with the decision",
    }
}


def _search(kind: str, **entities: Schema | None) -> Doc:
    given = {name: schema for name, schema in entities.items() if schema is not None}
    return Doc(
        f"AuthZEN {kind} Search (§8): the {kind.lower()}s the policies permit",
        headers=REQUEST_ID,
        body=obj(tuple(given), **given, context=OBJECT, page=_PAGE),
        answer=obj(
            ("results",),
            results=array(OBJECT),
            page=obj(next_token=STRING, count={"type": "integer"}, total={"type": "integer"}),
        ),
    )


AUTHZEN_DOCS = {
    "/access/v1/evaluation": Doc(
        "AuthZEN Access Evaluation (§6); a task token as `subject.properties.token`",
        headers=REQUEST_ID,
        body=EVALUATION,
        answer=DECISION,
    ),
    "/access/v1/evaluations": Doc(
        "AuthZEN Access Evaluations (§7, batch, up to TETHER_MAX_EVALUATIONS)",
        headers=REQUEST_ID,
        body=EVALUATIONS,
        # §7.1: without items (none, or an empty list) it is one evaluation, one decision.
        answer={"anyOf": [obj(("evaluations",), evaluations=array(DECISION)), DECISION]},
    ),
    "/access/v1/search/subject": _search("Subject", subject=_TYPED, action=ACTION, resource=ENTITY),
    "/access/v1/search/resource": _search(
        "Resource", subject=ENTITY, action=ACTION, resource=_TYPED
    ),
    "/access/v1/search/action": _search("Action", subject=ENTITY, action=None, resource=ENTITY),
}
