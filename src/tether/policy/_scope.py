"""Which policies of a set can apply to one principal and action: their scopes, read ahead.

Cedar evaluates a policy's scope (``principal``, ``action``, ``resource`` constraints)
before its conditions, and a scope can neither error nor read the context: a policy
whose principal or action constraint is false for a request is not determining, errs
for nothing and observes nothing. So the policies handed to Cedar for a principal and
action can be the ones whose scope may hold for them: the same answer (decision,
reasons, errors) from fewer policies, and a context cut to what those read
(``tether.policy._context_use``). A constraint is judged false only where that is
certain from the estate alone: ``principal is T`` for another type, ``principal == E``
or ``principal in E`` when ``E`` is neither the principal nor one of its ancestors in the
estate's graph (request-asserted entities bring no parents), and ``action == A`` or
``action in [A, ...]`` naming other actions while no action entity has parents. Any
other constraint (templates' slots, entity types of other namespaces, forms not
listed) may hold: the policy is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

#: The type of every request's action (``tether.policy._engine``).
ACTION_TYPE = "Action"

EntityKey = tuple[str, str]


def action_may_match(scope: Any, action: str | None) -> bool:
    """``False`` only when the action ``scope`` names actions and ``action`` (``None``: an
    action no scope names) is none of them. For callers that have ruled out action
    hierarchies: with no action entity having parents, ``in`` is ``==``."""
    if not isinstance(scope, Mapping):
        return True
    op = scope.get("op")
    if op == "==" or (op == "in" and "entity" in scope):
        named = entity_key(scope.get("entity"))
        return named is None or named[0] != ACTION_TYPE or named[1] == action
    if op == "in" and "entities" in scope:
        entities = scope.get("entities")
        if not isinstance(entities, list):
            return True
        keys = [entity_key(e) for e in entities]
        if any(k is None or k[0] != ACTION_TYPE for k in keys):
            return True
        return any(k is not None and k[1] == action for k in keys)
    return True


def principal_may_match(scope: Any, principal: EntityKey, ancestors: Set[EntityKey]) -> bool:
    """``False`` only when the principal ``scope`` cannot hold for ``principal``, whose
    ancestors in every entity set handed to Cedar are ``ancestors``."""
    if not isinstance(scope, Mapping):
        return True
    op = scope.get("op")
    if op == "==":
        named = entity_key(scope.get("entity"))
        return named is None or named == principal
    if op == "in" and "entity" in scope:
        named = entity_key(scope.get("entity"))
        return named is None or named == principal or named in ancestors
    if op == "is":
        if scope.get("entity_type") != principal[0]:
            return not isinstance(scope.get("entity_type"), str)
        inner = scope.get("in")
        if isinstance(inner, Mapping) and "entity" in inner:
            named = entity_key(inner.get("entity"))
            return named is None or named == principal or named in ancestors
        return True
    return True


def entity_key(node: Any) -> EntityKey | None:
    """``(type, id)`` of an entity literal in EST (plain or ``__entity``-escaped)."""
    if isinstance(node, Mapping) and "__entity" in node:
        node = node["__entity"]
    if not isinstance(node, Mapping):
        return None
    entity_type, entity_id = node.get("type"), node.get("id")
    if isinstance(entity_type, str) and isinstance(entity_id, str):
        return (entity_type, entity_id)
    return None


def ancestors_of(
    entity: EntityKey, parents_of: Mapping[EntityKey, Iterable[EntityKey]]
) -> set[EntityKey]:
    """Every entity ``entity`` is ``in`` through ``parents_of`` (parents the graph does not
    hold as entities count too: Cedar reads ``in`` from the parent links)."""
    found: set[EntityKey] = set()
    pending = [entity]
    while pending:
        for parent in parents_of.get(pending.pop(), ()):
            if parent not in found:
                found.add(parent)
                pending.append(parent)
    return found
