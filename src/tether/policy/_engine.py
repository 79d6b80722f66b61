"""The decision engine: Cedar (via cedarpy) with pre-parsed handles, tether outcomes on top.

Cedar answers Allow/Deny and names the determining policies; tether reads the
``@outcome`` and ``@obligations`` annotations of those policies to refine the answer
into ``allow``, ``constrain``, ``approval_required`` or ``deny``. Any evaluation
error is a deny carrying the error: Cedar on its own skips an erroring permit and
may still allow through another one; tether does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import cedarpy
import orjson

from tether.policy._cedar import CedarAnswer, authorize
from tether.policy._context_use import context_use, cut_context
from tether.policy._model import EMPTY, Decision, DecisionRequest, EntityRef, Outcome
from tether.policy._obligations import check_obligation_kinds, merge_obligations
from tether.policy._source import PolicySpec
from tether.policy.errors import PolicyInvalid

_IDENTIFIER = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*(::[_a-zA-Z][_a-zA-Z0-9]*)*$")
RESERVED_CONTEXT_KEYS = ("tether", "action")
NO_PERMIT = "no-permit-matched"
#: Decisions remembered per engine, keyed by the exact Cedar question: principal,
#: action, resource and the context exactly as tether hands it to Cedar (the JSON text
#: of the cut context, ``tether.policy._context_use``: of the caller's context and
#: ``context.tether``, which holds the resource's data class and the identity's live drift
#: record, what the policies read). Cedar is deterministic, it sees nothing but that text
#: and the engine's handles, and an engine (policies plus entities) is immutable, so a
#: remembered answer is the answer; questions with request-asserted entity attributes and
#: answers with evaluation errors are never remembered. A PEP asks the same questions
#: again and again, often with a new request id or trace id that no policy reads; each
#: costs Cedar ~50-100 µs, a lookup ~1 µs. Full: forgotten at once and refilled. 0 turns
#: the cache off.
DECISION_CACHE_SIZE = 65_536
#: Contexts longer than this (characters of JSON) are not remembered.
MAX_CACHED_CONTEXT = 2_048


@dataclass(frozen=True)
class EntityRecord:
    """An entity of the estate in Cedar's JSON form."""

    type: str
    id: str
    attrs: Mapping[str, Any]
    parents: Sequence[EntityRef] = ()

    def to_cedar(self, extra_attrs: Mapping[str, Any] = EMPTY) -> dict[str, Any]:
        attrs = dict(extra_attrs)
        attrs.update(self.attrs)  # the estate's attributes win over request properties
        return {
            "uid": {"type": self.type, "id": self.id},
            "attrs": to_cedar_value(attrs),
            "parents": [{"type": p.type, "id": p.id} for p in self.parents],
        }


class PolicyEngine:
    """An immutable, pre-parsed policy set plus entity graph; ``decide`` is pure."""

    def __init__(
        self,
        policies: Sequence[PolicySpec],
        entities: Iterable[EntityRecord] = (),
        *,
        schema_text: str | None = None,
        cache_size: int = DECISION_CACHE_SIZE,
    ) -> None:
        self.policies = {p.id: p for p in policies}
        # Answers by exact question (see DECISION_CACHE_SIZE); this engine never changes,
        # so an answer stays right for its lifetime: a new estate is a new engine.
        self._answers: dict[tuple[str, ...], Decision] = {}
        self._cache_size = cache_size
        if len(self.policies) != len(policies):
            seen: set[str] = set()
            dupes = sorted({p.id for p in policies if p.id in seen or seen.add(p.id)})  # type: ignore[func-returns-value]
            raise PolicyInvalid(f"duplicate policy id(s): {', '.join(dupes)}")
        check_obligation_kinds((p.id, p.obligations) for p in policies)
        est = {
            "staticPolicies": {p.id: p.est for p in policies},
            "templates": {},
            "templateLinks": [],
        }
        try:
            self._policy_set = cedarpy.PolicySet.from_json_str(json.dumps(est))
        except ValueError as exc:
            raise PolicyInvalid(f"cedar rejected the policy set: {exc}") from None
        self._entity_records = {(e.type, e.id): e for e in entities}
        self._entity_json = [e.to_cedar() for e in self._entity_records.values()]
        try:
            self._entities = cedarpy.Entities.from_json_str(json.dumps(self._entity_json))
        except ValueError as exc:
            raise PolicyInvalid(f"cedar rejected the entities: {exc}") from None
        self.schema_text = schema_text
        # What the policies read of the context: Cedar is handed only that (it parses every
        # key it is given, ~2 µs each), and the cache key is what Cedar is handed.
        self._context_use = context_use(p.est for p in policies)
        self._outcome_of = {p.id: p.outcome for p in policies}
        self._obligations_of = {p.id: p.obligations for p in policies if p.obligations}
        # approval_required forbids only offer approval for a request that is otherwise
        # permitted; a set without them (built only when such forbids exist) answers that.
        self._has_approval_forbids = any(_is_approval_forbid(p) for p in policies)
        # Slicing by principal: Cedar evaluates every policy of a set, so one decision
        # costs time linear in the estate. A policy scoped `principal == E` can neither
        # apply to nor error for a request by anyone but E (the scope is evaluated first),
        # so E is judged by the shared policies plus its own: the same answer from a set
        # of a few policies. Sets per principal are built on first use.
        self._shared: list[PolicySpec] = []
        self._own: dict[tuple[str, str], list[PolicySpec]] = {}
        for p in policies:
            principal = _scoped_principal(p)
            if principal is None:
                self._shared.append(p)
            else:
                self._own.setdefault(principal, []).append(p)
        self._shared_sets = self._policy_sets(self._shared)
        self._sets_of: dict[tuple[str, str], tuple[Any, Any]] = {}

    @property
    def policy_count(self) -> int:
        return len(self.policies)

    def entity(self, ref: EntityRef) -> EntityRecord | None:
        return self._entity_records.get((ref.type, ref.id))

    def entities_of_type(self, entity_type: str) -> list[EntityRecord]:
        return [e for (t, _), e in self._entity_records.items() if t == entity_type]

    def decide(
        self, request: DecisionRequest, extra_context: Mapping[str, Any] = EMPTY
    ) -> Decision:
        """Evaluate one request. Never raises for bad request content: it denies."""
        subject, resource = request.subject, request.resource
        if not _IDENTIFIER.match(subject.type) or not _IDENTIFIER.match(resource.type):
            bad = subject.type if not _IDENTIFIER.match(subject.type) else resource.type
            return _error_decision(f"entity type `{bad}` is not a valid Cedar type name")
        try:
            # Inside the try: a context nested too deeply is a deny, not a crash.
            context = build_context(request, extra_context)
            if self._context_use is not None:
                context = cut_context(context, self._context_use)
            cedar_context = orjson.dumps(context).decode()
            entities = self._entities_for(request)
        except (ValueError, TypeError, RuntimeError) as exc:
            return _error_decision(f"evaluation failed: {exc}")
        key = None
        # Not for request-asserted entity attributes, nor for large contexts (the cache
        # holds at most DECISION_CACHE_SIZE * MAX_CACHED_CONTEXT bytes of keys). The key
        # is what Cedar is handed, so the context no policy reads is not part of it.
        if entities is self._entities and len(cedar_context) <= MAX_CACHED_CONTEXT:
            key = (
                subject.type,
                subject.id,
                request.action,
                resource.type,
                resource.id,
                cedar_context,
            )
            cached = self._answers.get(key)
            if cached is not None:
                return cached
        cedar_request = {
            "principal": {"type": subject.type, "id": subject.id},
            "action": {"type": "Action", "id": request.action},
            "resource": {"type": resource.type, "id": resource.id},
            "context": cedar_context,
        }
        try:
            policy_set, without_approval_forbids = self._sets_for(subject)
            result = authorize(cedar_request, policy_set, entities)
        except (ValueError, TypeError, RuntimeError) as exc:
            return _error_decision(f"evaluation failed: {exc}")
        decision = self._interpret(result)
        if decision.outcome is Outcome.APPROVAL_REQUIRED and not result.allowed:
            decision = self._approval_or_deny(
                decision, cedar_request, entities, without_approval_forbids
            )
        if key is not None and not decision.errors:
            answers = self._answers
            if len(answers) >= self._cache_size:
                answers.clear()  # bounded; refilled by the questions still being asked
            if self._cache_size:
                answers[key] = decision
        return decision

    def _policy_sets(self, specs: Sequence[PolicySpec]) -> tuple[Any, Any]:
        """The Cedar set of ``specs`` and, when approval forbids exist, the set without them."""
        without = None
        if self._has_approval_forbids:
            without = _policy_set(p for p in specs if not _is_approval_forbid(p))
        return _policy_set(specs), without

    def _sets_for(self, subject: EntityRef) -> tuple[Any, Any]:
        key = (subject.type, subject.id)
        own = self._own.get(key)
        if own is None:
            return self._shared_sets
        sets = self._sets_of.get(key)
        if sets is None:  # bounded: one entry per principal the policies name
            sets = self._sets_of[key] = self._policy_sets(self._shared + own)
        return sets

    def _approval_or_deny(
        self,
        decision: Decision,
        cedar_request: dict[str, Any],
        entities: Any,
        without_approval_forbids: Any,
    ) -> Decision:
        """Approval is only on offer when the request is permitted but for approval forbids."""
        try:
            result = authorize(cedar_request, without_approval_forbids, entities)
        except (ValueError, TypeError, RuntimeError) as exc:
            return _error_decision(f"evaluation failed: {exc}")
        underlying = self._interpret(result)
        if not underlying.permits and underlying.outcome is not Outcome.APPROVAL_REQUIRED:
            return underlying
        if underlying.obligations:
            # What the approved retry must still enforce (tether.approvals).
            return Decision(decision.outcome, decision.reasons, underlying.obligations)
        return decision

    def _interpret(self, result: CedarAnswer) -> Decision:
        errors = result.errors
        reasons = result.reasons
        if errors:
            return Decision(Outcome.DENY, (*reasons, "evaluation-error"), errors=tuple(errors))
        if not reasons:
            return Decision(Outcome.DENY, (NO_PERMIT,))
        outcome_of = self._outcome_of
        if not result.allowed:
            # Determining policies are forbids: approval_required only if none is a plain deny.
            outcomes = {outcome_of[r] for r in reasons}
            outcome = Outcome.DENY if Outcome.DENY in outcomes else Outcome.APPROVAL_REQUIRED
            return Decision(outcome, tuple(reasons))
        if len(reasons) == 1:
            outcome = outcome_of[reasons[0]]
        else:
            outcome = max((outcome_of[r] for r in reasons), key=lambda o: o.precedence)
        if outcome is Outcome.CONSTRAIN or outcome is Outcome.APPROVAL_REQUIRED:
            # approval_required carries what the approved retry must still enforce.
            obligations = merge_obligations(
                self._obligations_of[r] for r in reasons if r in self._obligations_of
            )
            if obligations:
                return Decision(outcome, tuple(reasons), obligations)
        return Decision(outcome, tuple(reasons))

    def _entities_for(self, request: DecisionRequest) -> Any:
        added: list[dict[str, Any]] = []
        replaced: dict[tuple[str, str], dict[str, Any]] = {}
        for ref, props in (
            (request.subject, request.subject_properties),
            (request.resource, request.resource_properties),
        ):
            if not props:
                continue
            known = self._entity_records.get((ref.type, ref.id))
            if known is None:
                added.append(EntityRecord(ref.type, ref.id, {}).to_cedar(props))
            elif not set(props) <= set(known.attrs):
                replaced[(ref.type, ref.id)] = known.to_cedar(props)
        if not added and not replaced:
            return self._entities
        if len(added) == 2 and added[0]["uid"] == added[1]["uid"]:
            added = [added[0]]
        if not replaced:
            return self._entities.with_added_json_str(json.dumps(added))
        # Slow path: a known entity gains request-asserted attributes; rebuild the graph.
        merged = [replaced.get((e["uid"]["type"], e["uid"]["id"]), e) for e in self._entity_json]
        return cedarpy.Entities.from_json_str(json.dumps(merged + added))


def build_context(request: DecisionRequest, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The Cedar context: the caller's context minus reserved keys, plus tether's own."""
    context: dict[str, Any] = {}
    if request.context:
        context = to_cedar_value(
            {k: v for k, v in request.context.items() if k not in RESERVED_CONTEXT_KEYS}
        )
    context["action"] = (
        to_cedar_value(request.action_properties) if request.action_properties else {}
    )
    context["tether"] = dict(extra)
    return context


def to_cedar_value(value: Any) -> Any:
    """Turn JSON into Cedar JSON: drop nulls, floats become ``decimal`` or strings."""
    kind = type(value)
    if kind is str or kind is bool:  # most values: no abstract-class check
        return value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): to_cedar_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_cedar_value(v) for v in value if v is not None]
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        text = format(Decimal(repr(value)).normalize(), "f")
        if "." not in text:
            text += ".0"
        if len(text.split(".")[1]) <= 4 and abs(value) < 9e14:
            return {"__extn": {"fn": "decimal", "arg": text}}
        return text
    return str(value)


def _policy_set(specs: Iterable[PolicySpec]) -> Any:
    est = {"staticPolicies": {p.id: p.est for p in specs}, "templates": {}, "templateLinks": []}
    return cedarpy.PolicySet.from_json_str(json.dumps(est))


def _scoped_principal(spec: PolicySpec) -> tuple[str, str] | None:
    """The one principal a policy's scope names (``principal == E``), else ``None``."""
    scope = spec.est.get("principal")
    if not isinstance(scope, Mapping) or scope.get("op") != "==":
        return None
    entity = scope.get("entity")
    if isinstance(entity, Mapping) and "__entity" in entity:
        entity = entity["__entity"]
    if not isinstance(entity, Mapping):
        return None
    entity_type, entity_id = entity.get("type"), entity.get("id")
    if isinstance(entity_type, str) and isinstance(entity_id, str):
        return (entity_type, entity_id)
    return None


def _is_approval_forbid(spec: PolicySpec) -> bool:
    return spec.effect == "forbid" and spec.outcome is Outcome.APPROVAL_REQUIRED


def _error_decision(message: str) -> Decision:
    return Decision(Outcome.DENY, ("evaluation-error",), errors=(message,))


def scope_action_names(specs: Iterable[PolicySpec]) -> set[str]:
    """Action names a policy set mentions in its scopes (``==`` and ``in [...]``)."""
    names: set[str] = set()
    for spec in specs:
        scope = spec.est.get("action", {})
        if "entity" in scope:
            names.add(scope["entity"]["id"])
        for entity in scope.get("entities", []):
            names.add(entity["id"])
    return names
