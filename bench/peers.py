"""The peers tether is measured against, each built from the same benchmark estate.

* a plain-Python floor: one dict lookup per request, the cheapest "policy" there is;
* pycasbin: an RBAC model with deny rules, the estate's grants and guardrails as rows;
* cedarpy raw: ``cedarpy.is_authorized`` on pre-parsed ``PolicySet``, ``Entities`` and
  ``Schema`` handles with dict-form entity ids, given exactly the Cedar request tether
  builds (its ``context.tether`` included), with the schema handle and without.

Every peer answers the mix with a permit/refuse boolean; :func:`check_agreement` holds
each to tether's answers so that nobody is timed giving wrong answers fast.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import casbin
import cedarpy
from casbin.persist.adapters.string_adapter import StringAdapter

from bench.estate import TABLES, BenchEstate
from tether.policy import EntityRef

# One decision function per peer: answers the whole mix, one boolean per request.
MixRunner = Callable[[], list[bool]]

CASBIN_MODEL = """\
[request_definition]
r = sub, obj, act, env, depth

[policy_definition]
p = sub, obj, act, cond, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && (p.act == "*" || r.act == p.act) && globMatch(r.obj, p.obj) \
&& (p.cond == "*" || p.cond == r.env || p.cond == r.depth)
"""


def floor_runner(estate: BenchEstate) -> MixRunner:
    """The floor: a dict keyed by (subject, action, resource type), looked up per request."""
    policy: dict[tuple[str, str, str], bool] = {}
    for identity in estate.identities:
        for actions, patterns in identity.grants:
            for action in actions:
                for pattern in patterns:
                    policy[(identity.id, action, pattern.partition(":")[0])] = True
    keys = [(r.subject.id, r.action, r.resource.type) for r in estate.requests]
    get = policy.get

    def run() -> list[bool]:
        return [get(key, False) for key in keys]

    return run


def casbin_policy(estate: BenchEstate) -> str:
    """The estate as casbin rows: grants, the constrain permits as allows, guardrails as denies.

    Context conditions are pre-classified into request fields (``env``, ``depth``), the way
    tether pre-classifies resource sensitivity; casbin has no approval or obligations, so
    ``approval_required`` is a deny and ``constrain`` an allow.
    """
    lines: list[str] = []
    for identity in estate.identities:
        sub = f"{identity.kind}:{identity.id}"
        lines.append(f"g, {sub}, team:{identity.team}")
        lines.append(f"g, {sub}, kind:{identity.kind}")
        lines.append(f"g, {sub}, class:{identity.workload_class}")
        for actions, patterns in identity.grants:
            for action in actions:
                for pattern in patterns:
                    lines.append(f"p, {sub}, {pattern}, {action}, *, allow")
    lines += [
        "p, team:support, invoice:*, read_invoice, *, allow",
        "p, team:data, table:customers*, read_table, *, allow",
        "p, kind:agent, payments:*, pay_invoice, *, deny",
        "p, kind:agent, secret:*, *, *, deny",
        "p, kind:agent, *, *, deep, deny",
        "p, class:batch, *, write_table, prod, deny",
    ]
    lines += [
        f"p, team:ml, table:{name}, read_table, *, deny" for name, _, env in TABLES if env == "prod"
    ]
    return "\n".join(lines)


def casbin_runner(estate: BenchEstate) -> MixRunner:
    model = casbin.Enforcer.new_model(text=CASBIN_MODEL)
    enforcer = casbin.Enforcer(model, StringAdapter(casbin_policy(estate)))
    args = [
        (
            f"{r.subject.type}:{r.subject.id}",
            f"{r.resource.type}:{r.resource.id}",
            r.action,
            str(r.context.get("environment", "")),
            "deep" if int(r.context.get("chain_depth", 0)) > 3 else "shallow",
        )
        for r in estate.requests
    ]
    enforce = enforcer.enforce

    def run() -> list[bool]:
        return [bool(enforce(*a)) for a in args]

    return run


def cedarpy_runner(estate: BenchEstate, *, with_schema: bool) -> MixRunner:
    """cedarpy raw on the estate's plain strings, parsed once into handles."""
    policies = cedarpy.PolicySet.from_str(estate.policy_text)
    entities = cedarpy.Entities.from_json_str(estate.entities_json)
    schema = cedarpy.Schema.from_str(estate.schema_text) if with_schema else None
    requests: list[dict[str, Any]] = [estate.cedar_request(r) for r in estate.requests]
    is_authorized = cedarpy.is_authorized

    def run() -> list[bool]:
        return [is_authorized(r, policies, entities, schema).allowed for r in requests]

    first = [is_authorized(r, policies, entities, schema) for r in requests]
    errors = [e for result in first for e in result.diagnostics.errors]
    if errors:
        raise RuntimeError(f"cedarpy raw fails on the bench requests: {errors[:3]}")
    return run


def cedarpy_sliced_runner(estate: BenchEstate) -> MixRunner:
    """cedarpy raw on per-principal slices: the shared policies plus the principal's own.

    This is the evaluation tether performs (it slices by ``principal == E`` scopes), so the
    gap between this and tether's core is tether's own overhead, like for like.
    """
    shared: list[str] = []
    own: dict[tuple[str, str], list[str]] = {}
    for spec in estate.compiled.policies:
        scope = spec.est.get("principal", {})
        text = _policy_text(spec.est)
        if scope.get("op") == "==":
            entity = scope["entity"]
            own.setdefault((entity["type"], entity["id"]), []).append(text)
        else:
            shared.append(text)
    entities = cedarpy.Entities.from_json_str(estate.entities_json)
    shared_set = cedarpy.PolicySet.from_str("\n".join(shared))
    cases: list[tuple[dict[str, Any], Any]] = []
    for r in estate.requests:
        texts = own.get((r.subject.type, r.subject.id))
        policies = cedarpy.PolicySet.from_str("\n".join(shared + texts)) if texts else shared_set
        cases.append((estate.cedar_request(r), policies))
    is_authorized = cedarpy.is_authorized

    def run() -> list[bool]:
        return [is_authorized(r, policies, entities).allowed for r, policies in cases]

    return run


def _policy_text(est: Any) -> str:
    document = {"staticPolicies": {"p": est}, "templates": {}, "templateLinks": []}
    return str(cedarpy.PolicySet.from_json_str(json.dumps(document))).strip()


def sweep_disagreements(estate: BenchEstate, stride: int = 1) -> tuple[int, list[str]]:
    """Every identity (every ``stride``-th) asking every question of the mix: tether's
    permit/refuse must equal cedarpy raw's allow/deny on the full, unsliced policy set."""
    policies = cedarpy.PolicySet.from_str(estate.policy_text)
    entities = cedarpy.Entities.from_json_str(estate.entities_json)
    engine = estate.compiled.engine()
    problems: list[str] = []
    swept = 0
    # Principals no policy names (`principal == E`) are judged by the shared slice alone.
    strangers = [EntityRef("agent", "unknown-agent"), EntityRef("service_account", "unknown")]
    for subject in [i.ref for i in estate.identities[::stride]] + strangers:
        for template in estate.requests:
            request = dataclasses.replace(template, subject=subject)
            swept += 1
            cedar_request = estate.cedar_request(request)
            extra = dict(cedar_request["context"]["tether"])
            decision = engine.decide(request.decision_request(), extra)
            raw = cedarpy.is_authorized(cedar_request, policies, entities)
            if decision.permits != raw.allowed or (decision.errors and not raw.diagnostics.errors):
                problems.append(
                    f"{subject} {request.action} {request.resource}: tether "
                    f"{decision.outcome.value}, cedarpy raw {raw.decision.value}"
                )
    return swept, problems


def check_agreement(name: str, answers: Sequence[bool], expected: Sequence[bool]) -> str | None:
    """A problem when a peer's answers differ from tether's, else ``None``."""
    wrong = [i for i, (a, b) in enumerate(zip(answers, expected, strict=True)) if a != b]
    if not wrong:
        return None
    return f"{name} disagrees with tether on request(s) {wrong} of the mix"
