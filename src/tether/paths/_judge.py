"""Marks for path steps: within the task's intent, within the standing entitlement, or outside.

Nothing here matches patterns of its own: the standing entitlement is the identity's
grants as the live estate stores them (:func:`tether.tokens.ledger.grants_of`), matched
with the estate's :class:`~tether.estate.ResourcePattern`; the intent check is the
task's own :meth:`~tether.tokens.tasks.TaskIntent.outside`, the one decisions use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tether.estate import ResourceClassifier, parse_pattern
from tether.paths._model import Mark
from tether.policy import EntityRef
from tether.tokens.tasks import Grant, TaskIntent, TaskRecord, intent_excess

#: The type given to a resource whose text names none (``type:id``).
UNTYPED = "resource"

Verdict = tuple[Mark, str | None]


def resource_ref(resource: str | None, resource_type: str | None) -> EntityRef | None:
    """An event's resource as ``type:id`` the way estate patterns read it.

    ``invoice:INV-1`` is ``invoice::"INV-1"`` and an ARN is of type ``arn`` (as the pattern
    ``arn:aws:s3:::reports/*`` is); text without such a prefix takes ``resource_type``.
    """
    if not resource:
        return None
    pattern = parse_pattern(resource)
    if not isinstance(pattern, str) and pattern.type is not None:
        return EntityRef(pattern.type, pattern.id_glob)
    return EntityRef(resource_type or UNTYPED, resource)


class Judge:
    """Marks steps of one path (answers are memoised: paths repeat the same accesses)."""

    def __init__(
        self,
        grants_of: Callable[[str], Sequence[Grant]],
        classifier: ResourceClassifier | None = None,
    ) -> None:
        self._grants_of = grants_of
        self._grants: dict[str, Sequence[Grant]] = {}
        self._scopes: dict[str, tuple[TaskIntent, ...]] = {}
        self._refs: dict[tuple[str | None, str | None], EntityRef | None] = {}
        self._classifier = classifier
        self._memo: dict[tuple[str, str | None, str, EntityRef | None, str | None], Verdict] = {}

    def grants(self, identity_id: str) -> Sequence[Grant]:
        found = self._grants.get(identity_id)
        if found is None:
            found = self._grants[identity_id] = tuple(self._grants_of(identity_id))
        return found

    def resource(self, resource: str | None, resource_type: str | None) -> EntityRef | None:
        """:func:`resource_ref`, remembered (paths touch the same resources again and again)."""
        key = (resource, resource_type)
        if key not in self._refs:
            self._refs[key] = resource_ref(resource, resource_type)
        return self._refs[key]

    def data_class(self, resource: EntityRef | None, recorded: str | None) -> str | None:
        if recorded is not None or resource is None or self._classifier is None:
            return recorded
        return self._classifier.classify(resource)[0]

    def step(
        self,
        identity_id: str,
        task: TaskRecord | None,
        action: str,
        resource: EntityRef | None,
        data_class: str | None = None,
    ) -> Verdict:
        """The mark of ``action`` on ``resource`` by ``identity_id`` (in ``task``, if any).

        A step without a resource is judged on its action alone.
        """
        key = (identity_id, task.id if task else None, action, resource, data_class)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._step(identity_id, task, action, resource, data_class)
        return found

    def _step(
        self,
        identity_id: str,
        task: TaskRecord | None,
        action: str,
        resource: EntityRef | None,
        data_class: str | None,
    ) -> Verdict:
        if not self._entitled(identity_id, action, resource):
            target = f" on `{resource}`" if resource else ""
            return (
                Mark.OUTSIDE,
                f"`{action}`{target} is not in the standing entitlement of `{identity_id}`",
            )
        if task is None:
            return Mark.WITHIN_ENTITLEMENT, None
        why = _outside_intent(task.intent, action, resource, data_class)
        return (Mark.OUTSIDE, why) if why else (Mark.WITHIN_INTENT, None)

    def _entitled(self, identity_id: str, action: str, resource: EntityRef | None) -> bool:
        # Each grant read as an intent of its own: the same compiled matching decisions use.
        scopes = self._scopes.get(identity_id)
        if scopes is None:
            scopes = self._scopes[identity_id] = tuple(
                TaskIntent(tuple(sorted(g.actions)), g.resources) for g in self.grants(identity_id)
            )
        return any(
            action in scope.actions
            and (resource is None or scope.outside(action, resource, None) is None)
            for scope in scopes
        )

    def task(self, task: TaskRecord) -> Verdict:
        """A task is outside when its intent now exceeds its identity's entitlement."""
        excess = intent_excess(task.identity_id, task.intent, self.grants(task.identity_id))
        if excess:
            return Mark.OUTSIDE, "; ".join(e.message for e in excess)
        return Mark.WITHIN_ENTITLEMENT, None

    @staticmethod
    def token(task: TaskRecord, scope: Sequence[str]) -> Verdict:
        """A token is outside when its scope names an action the intent does not declare."""
        extra = [a for a in scope if a not in task.intent.actions]
        if extra:
            names = ", ".join(f"`{a}`" for a in extra)
            return Mark.OUTSIDE, f"scope {names} is not in the task's intent"
        return Mark.WITHIN_INTENT, None


def _outside_intent(
    intent: TaskIntent, action: str, resource: EntityRef | None, data_class: str | None
) -> str | None:
    if resource is not None:
        return intent.outside(action, resource, data_class)
    if action not in intent.actions:
        return f"action `{action}` is not in the task's intent"
    return None
