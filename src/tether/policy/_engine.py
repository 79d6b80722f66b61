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
from tether.policy._context_use import ContextUse, context_use, cut_context
from tether.policy._model import EMPTY, Decision, DecisionRequest, EntityRef, Outcome
from tether.policy._obligations import check_obligation_kinds, merge_obligations
from tether.policy._scope import (
    ACTION_TYPE,
    action_may_match,
    ancestors_of,
    entity_key,
    principal_may_match,
)
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
#: Policy slices remembered per engine, one per principal and action asked about (an
#: action no policy names shares one): built on first use (a Cedar parse of the few
#: policies, ~0.1-1 ms), forgotten at once when full and refilled.
SLICE_CACHE_SIZE = 16_384
#: Entity type names remembered as valid Cedar names (a regular expression per request
#: otherwise); past this many, new ones are checked every time.
MAX_VALID_TYPES = 1_024


@dataclass(frozen=True, slots=True)
class _Slice:
    """What Cedar is handed for one principal and action: the policies whose scope may
    hold (``tether.policy._scope``), without the approval forbids when some exist, and
    what those policies read of the context."""

    policy_set: Any
    without_approval_forbids: Any
    context_use: ContextUse


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
        # key it is given, ~2 µs each), and the cache key is what Cedar is handed. Per
        # slice (below), what the slice's policies read.
        self._context_use = context_use(p.est for p in policies)
        self._cut_context = True
        self._outcome_of = {p.id: p.outcome for p in policies}
        self._obligations_of = {p.id: p.obligations for p in policies if p.obligations}
        # Slicing by principal: Cedar evaluates every policy of a set, so one decision
        # costs time linear in the estate. A policy scoped `principal == E` can neither
        # apply to nor error for a request by anyone but E (the scope is evaluated first),
        # so E is judged by the shared policies plus its own: the same answer from a set
        # of a few policies. Then by principal and action: of those, only the policies
        # whose scope may hold for E and the action (tether.policy._scope), and the
        # context they read. Slices are built on first use.
        self._shared: list[PolicySpec] = []
        self._own: dict[tuple[str, str], list[PolicySpec]] = {}
        for p in policies:
            principal = _scoped_principal(p)
            if principal is None:
                self._shared.append(p)
            else:
                self._own.setdefault(principal, []).append(p)
        self._slicing = True
        self._named_actions = frozenset(scope_action_names(policies))
        # `action in A` follows the action entities' parents: with any, an action scope
        # is never judged false ahead (request-asserted entities bring no parents).
        self._actions_nest = any(
            e.parents for e in self._entity_records.values() if e.type == ACTION_TYPE
        )
        self._parents_of = {
            key: [(p.type, p.id) for p in e.parents]
            for key, e in self._entity_records.items()
            if e.parents
        }
        self._slices: dict[tuple[str, str, str | None], _Slice] = {}
        self._valid_types: set[str] = set()
        self._slices_by_policies: dict[tuple[str, ...], _Slice] = {}

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
        valid = self._valid_types
        if (subject.type not in valid or resource.type not in valid) and not (
            self._valid_type(subject.type) and self._valid_type(resource.type)
        ):
            bad = subject.type if not _IDENTIFIER.match(subject.type) else resource.type
            return _error_decision(f"entity type `{bad}` is not a valid Cedar type name")
        try:
            # Inside the try: a context nested too deeply is a deny, not a crash.
            context = build_context(request, extra_context)
            cut = self._slice_for(subject, request.action)
            if self._cut_context:
                context = cut_context(context, cut.context_use)
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
            result = authorize(cedar_request, cut.policy_set, entities)
        except (ValueError, TypeError, RuntimeError) as exc:
            return _error_decision(f"evaluation failed: {exc}")
        decision = self._interpret(result)
        if decision.outcome is Outcome.APPROVAL_REQUIRED and not result.allowed:
            decision = self._approval_or_deny(
                decision, cedar_request, entities, cut.without_approval_forbids
            )
        if key is not None and not decision.errors:
            answers = self._answers
            if len(answers) >= self._cache_size:
                answers.clear()  # bounded; refilled by the questions still being asked
            if self._cache_size:
                answers[key] = decision
        return decision

    def _valid_type(self, name: str) -> bool:
        """Whether ``name`` is a Cedar type name (remembered: a few per estate)."""
        if not _IDENTIFIER.match(name):
            return False
        if len(self._valid_types) < MAX_VALID_TYPES:
            self._valid_types.add(name)
        return True

    def _slice_for(self, subject: EntityRef, action: str) -> _Slice:
        # An action no scope names is keyed as one: the slices stay bounded by the
        # principals asked about times the actions the policies name.
        key = (subject.type, subject.id, action if action in self._named_actions else None)
        cut = self._slices.get(key)
        if cut is None:
            cut = self._new_slice(key)
            if len(self._slices) >= SLICE_CACHE_SIZE:
                self._slices.clear()  # bounded; refilled by the questions still asked
                self._slices_by_policies.clear()
            self._slices[key] = cut
        return cut

    def _new_slice(self, key: tuple[str, str, str | None]) -> _Slice:
        principal = (key[0], key[1])
        specs = self._shared + self._own.get(principal, [])
        if self._slicing:
            ancestors = ancestors_of(principal, self._parents_of)
            specs = [
                p
                for p in specs
                if principal_may_match(p.est.get("principal"), principal, ancestors)
                and (self._actions_nest or action_may_match(p.est.get("action"), key[2]))
            ]
        ids = tuple(p.id for p in specs)
        cut = self._slices_by_policies.get(ids)
        if cut is None:  # principals of one kind share their slices
            # approval_required forbids only offer approval for a request that is otherwise
            # permitted; the slice without them (built only when it has some) answers that.
            policy_set = without = _policy_set(specs)
            if any(_is_approval_forbid(p) for p in specs):
                without = _policy_set(p for p in specs if not _is_approval_forbid(p))
            use = context_use(p.est for p in specs) if self._slicing else self._context_use
            cut = self._slices_by_policies[ids] = _Slice(policy_set, without, use)
        return cut

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
    if request.context:  # to_cedar_value of the caller's context without the reserved keys
        context = {
            str(k): v if type(v) is str else to_cedar_value(v)
            for k, v in request.context.items()
            if k not in RESERVED_CONTEXT_KEYS and v is not None
        }
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
    return entity_key(scope.get("entity"))


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
