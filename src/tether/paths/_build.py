"""Building an identity's access path from its records (pure: no I/O past :func:`build_path`).

Placement rules, in this order, for each step:

* a token sits under its parent token (delegation, the ``act`` chain), else its task;
* a call sits under the call named by its ``parent_call_id`` when that call came earlier
  in the path (so bad data cannot make a cycle), else under its token (``token_id``), its
  task (``task_id``), or the identity;
* a decision sits under the token it was made with, else its task, else the identity.

Siblings are ordered by time, then by their store sequence. A call made with a delegated
token under its parent's call stays under that call: the tool-call order is the tree,
and the token it used is named on the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from tether.estate import ResourceClassifier
from tether.paths._judge import Judge, Verdict
from tether.paths._load import DecisionRow, EventRow, PathRecords, load_records
from tether.paths._model import (
    AccessPath,
    Mark,
    NodeKind,
    PathEdge,
    PathNode,
    Relation,
)
from tether.paths._query import DEFAULT_LIMIT
from tether.tokens.decisions import OUTSIDE_INTENT
from tether.tokens.ledger import IssuedToken
from tether.tokens.tasks import TaskRecord

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_TREE_RELATION = {
    NodeKind.PROOF: Relation.PROVED,
    NodeKind.TASK: Relation.OPENED,
    NodeKind.TOKEN: Relation.ISSUED,
    NodeKind.DECISION: Relation.DECIDED,
    NodeKind.CALL: Relation.CALLED,
}
_SEVERITY = {Mark.WITHIN_INTENT: 0, Mark.WITHIN_ENTITLEMENT: 1, Mark.OUTSIDE: 2}


def build_path(
    engine: Engine,
    identity_id: str,
    *,
    task: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    classifier: ResourceClassifier | None = None,
) -> AccessPath:
    """The access path of ``identity_id`` (of one of its tasks, within ``[since, until)``).

    ``classifier`` (the live estate's) gives the data class of resources whose event did
    not record one, for the intent's ``data_classes``. At most ``limit`` decisions and
    ``limit`` events are read; ``truncated`` says when there were more.

    Raises:
        NotFound: the identity is unknown, or ``task`` is not one of its tasks.
    """
    records = load_records(engine, identity_id, task_id=task, since=since, until=until, limit=limit)
    return assemble(records, classifier=classifier, since=since, until=until, task=task)


@dataclass
class _Draft:
    """Nodes as placed, before they are put in reading order."""

    root: PathNode
    children: dict[str, list[tuple[tuple[Any, ...], PathNode]]] = field(default_factory=dict)
    edges: list[PathEdge] = field(default_factory=list)

    def add(self, node: PathNode, order: tuple[Any, ...]) -> None:
        assert node.parent is not None
        self.children.setdefault(node.parent, []).append((order, node))

    def ordered(self) -> list[PathNode]:
        nodes: list[PathNode] = []
        stack = [self.root]
        while stack:
            node = stack.pop()
            nodes.append(node)
            below = sorted(self.children.get(node.id, ()), key=lambda pair: pair[0])
            stack.extend(child for _, child in reversed(below))
        return nodes


def assemble(
    records: PathRecords,
    *,
    classifier: ResourceClassifier | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    task: str | None = None,
) -> AccessPath:
    """The path made of ``records`` (see the module doc for where each step goes)."""
    judge = Judge(lambda owner: records.grants.get(owner, ()), classifier)
    builder = _Builder(records, judge)
    nodes, edges = builder.build()
    return AccessPath(
        identity=records.identity_id,
        nodes=tuple(nodes),
        edges=tuple(edges),
        since=since,
        until=until,
        task=task,
        truncated=records.truncated,
    )


class _Builder:
    def __init__(self, records: PathRecords, judge: Judge) -> None:
        self.records = records
        self.judge = judge
        identity = records.identity_id
        details = ", ".join(
            x
            for x in (
                records.identity_kind,
                f"class {records.workload_class}" if records.workload_class else None,
            )
            if x
        )
        self.root = PathNode(
            f"identity:{identity}",
            NodeKind.IDENTITY,
            f"{identity} ({details})" if details else identity,
            None,
            attributes={"identity": identity, "identity_kind": records.identity_kind},
        )
        self.draft = _Draft(self.root)
        self.tasks = {t.id: t for t in records.tasks}
        self.placed: dict[str, PathNode] = {}  # node id -> node, for parents and edges
        self.calls: dict[tuple[str | None, str], str] = {}  # (task, call id) -> node id
        self.resources: dict[str, tuple[datetime, Mark | None, str | None, int]] = {}
        self.resource_edges: list[PathEdge] = []

    def build(self) -> tuple[list[PathNode], list[PathEdge]]:
        for task in self.records.tasks:
            self._task(task)
        tokens = {t.jti: t for t in self.records.tokens}
        for token in self.records.tokens:
            self._token(token, tokens)
        decisions = {d.decision_id: d for d in self.records.decisions}
        for decision in self.records.decisions:
            self._decision(decision)
        for event in self.records.events:
            self._event(event, decisions)
        self._resources()
        nodes = self.draft.ordered()
        edges = [PathEdge(n.parent, n.id, self._relation(n)) for n in nodes if n.parent is not None]
        return nodes, edges + self.draft.edges + self.resource_edges

    def _relation(self, node: PathNode) -> Relation:
        if node.kind is NodeKind.TOKEN and node.parent and node.parent.startswith("token:"):
            return Relation.DELEGATED
        if node.kind is NodeKind.TASK and node.parent == self.root.id:
            return Relation.OPENED
        return _TREE_RELATION.get(node.kind, Relation.REACHED)

    def _place(self, node: PathNode, order: tuple[Any, ...]) -> None:
        self.placed[node.id] = node
        if node.kind is NodeKind.RESOURCE:
            self.draft.add(node, (1, *order))
        else:
            self.draft.add(node, (0, *order))

    # --- structure ---------------------------------------------------------------------

    def _task(self, task: TaskRecord) -> None:
        proof_id = self.records.proofs.get(task.id)
        proof = PathNode(
            f"proof:{task.id}",
            NodeKind.PROOF,
            f"proof {task.opened_by}" + (f" ({proof_id})" if proof_id else ""),
            self.root.id,
            task.opened_at,
            attributes={"workload": task.opened_by, "proof_id": proof_id, "task": task.id},
        )
        self._place(proof, (task.opened_at, 0, task.id))
        mark, why = self.judge.task(task)
        node = PathNode(
            f"task:{task.id}",
            NodeKind.TASK,
            f"task {task.id}: {task.purpose}",
            proof.id,
            task.opened_at,
            mark,
            why,
            attributes={
                "task": task.id,
                "identity": task.identity_id,
                "purpose": task.purpose,
                "intent": task.intent.to_json(),
                "status": task.status,
                "expires_at": task.expires_at.isoformat(),
                "ended_at": task.ended_at.isoformat() if task.ended_at else None,
            },
        )
        self._place(node, (task.opened_at, 0, task.id))

    def _unrecorded_task(self, task_id: str, at: datetime) -> str:
        """A task named by events that the store has no row for: shown, not judged."""
        node_id = f"task:{task_id}"
        if node_id not in self.placed:
            node = PathNode(
                node_id,
                NodeKind.TASK,
                f"task {task_id} (not recorded by tether)",
                self.root.id,
                at,
                attributes={"task": task_id, "recorded": False},
            )
            self._place(node, (at, 0, task_id))
        return node_id

    def _token(self, token: IssuedToken, tokens: dict[str, IssuedToken]) -> None:
        task = self.tasks[token.task_id]
        parent = f"token:{token.parent_jti}" if token.parent_jti in tokens else f"task:{task.id}"
        act = _act_chain(token, tokens)
        scope = token.scope.split()
        mark, why = self.judge.token(task, scope)
        label = f"token {token.jti[:12]} scope {token.scope}"
        if token.actor_id:
            label += f", delegated to {token.actor_id} (depth {token.depth})"
        node = PathNode(
            f"token:{token.jti}",
            NodeKind.TOKEN,
            label,
            parent,
            token.issued_at,
            mark,
            why,
            attributes={
                "jti": token.jti,
                "task": token.task_id,
                "subject": token.identity_id,
                "actor": token.actor_id,
                "act": act,
                "depth": token.depth,
                "scope": scope,
                "expires_at": token.expires_at.isoformat(),
                "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
            },
        )
        self._place(node, (token.issued_at, 1, token.jti))

    # --- steps -------------------------------------------------------------------------

    def _container(self, task_id: str | None, token_id: str | None, at: datetime) -> str:
        if token_id and f"token:{token_id}" in self.placed:
            return f"token:{token_id}"
        if task_id:
            return (
                f"task:{task_id}" if task_id in self.tasks else self._unrecorded_task(task_id, at)
            )
        return self.root.id

    def _decision(self, decision: DecisionRow) -> None:
        task = self.tasks.get(decision.task_id) if decision.task_id else None
        verdict: Verdict
        if OUTSIDE_INTENT in decision.reasons:
            why = decision.errors[0] if decision.errors else "outside the task's intent"
            verdict = (Mark.OUTSIDE, why)
        else:
            data_class = self.judge.data_class(decision.resource, None)
            verdict = self.judge.step(
                decision.subject_id, task, decision.action, decision.resource, data_class
            )
        node = PathNode(
            f"decision:{decision.decision_id}",
            NodeKind.DECISION,
            f"decision {decision.action} {decision.resource} → {decision.outcome}",
            self._container(decision.task_id, decision.token_jti, decision.at),
            decision.at,
            *verdict,
            attributes={
                "decision_id": decision.decision_id,
                "action": decision.action,
                "resource": str(decision.resource),
                "outcome": decision.outcome,
                "reasons": list(decision.reasons),
                "task": decision.task_id,
                "token": decision.token_jti,
            },
        )
        self._place(node, (decision.at, 2, decision.seq))
        self._reach(node, str(decision.resource), decision.at, verdict[0])

    def _event(self, event: EventRow, decisions: dict[str, DecisionRow]) -> None:
        node_id = f"call:{event.seq}"
        parent = None
        if event.parent_call_id:
            parent = self.calls.get((event.task_id, event.parent_call_id)) or self.calls.get(
                (None, event.parent_call_id)
            )
        if parent is None:
            parent = self._container(event.task_id, event.token_id, event.at)
        if event.call_id:
            self.calls.setdefault((event.task_id, event.call_id), node_id)
            self.calls.setdefault((None, event.call_id), node_id)
        task = self.tasks.get(event.task_id) if event.task_id else None
        actor = event.identity_id or self.records.identity_id
        ref = self.judge.resource(event.resource, event.resource_type)
        data_class = self.judge.data_class(ref, event.data_class)
        verdict = self.judge.step(
            task.identity_id if task else actor, task, event.action, ref, data_class
        )
        name = event.tool_name or event.action
        label = f"call {name}" if event.tool_name else f"{event.source} {name}"
        if ref is not None:
            label += f" {ref}"
        label += f" → {event.outcome}"
        if actor != self.records.identity_id:
            label += f" (by {actor})"
        node = PathNode(
            node_id,
            NodeKind.CALL,
            label,
            parent,
            event.at,
            *verdict,
            attributes={
                "seq": event.seq,
                "source": event.source,
                "action": event.action,
                "tool_name": event.tool_name,
                "call_id": event.call_id,
                "parent_call_id": event.parent_call_id,
                "identity": actor,
                "task": event.task_id,
                "token": event.token_id,
                "resource": str(ref) if ref else None,
                "data_class": data_class,
                "outcome": event.outcome,
                "decision_id": event.decision_id,
            },
        )
        self._place(node, (event.at, 3, event.seq))
        if event.decision_id and event.decision_id in decisions:
            self.draft.edges.append(
                PathEdge(f"decision:{event.decision_id}", node_id, Relation.AUTHORIZED)
            )
        if ref is not None:
            self._reach(node, str(ref), event.at, verdict[0])

    def _reach(self, step: PathNode, resource: str, at: datetime, mark: Mark | None) -> None:
        node_id = f"resource:{resource}"
        first, worst, _, count = self.resources.get(node_id, (at, None, resource, 0))
        if worst is None or (mark is not None and _SEVERITY[mark] > _SEVERITY[worst]):
            worst = mark
        self.resources[node_id] = (min(first, at), worst, resource, count + 1)
        self.resource_edges.append(PathEdge(step.id, node_id, Relation.REACHED))

    def _resources(self) -> None:
        for node_id, (first, worst, resource, count) in self.resources.items():
            node = PathNode(
                node_id,
                NodeKind.RESOURCE,
                f"resource {resource}",
                self.root.id,
                first,
                worst,
                "reached by a step outside" if worst is Mark.OUTSIDE else None,
                attributes={"resource": resource, "steps": count},
            )
            self._place(node, (first, 0, resource))


def _act_chain(token: IssuedToken, tokens: dict[str, IssuedToken]) -> list[str]:
    """The actors of a delegated token, current first, as its ``act`` claim nests them."""
    chain = [token.actor_id] if token.actor_id else []
    for jti in reversed(token.chain):
        ancestor = tokens.get(jti)
        if ancestor is not None and ancestor.actor_id:
            chain.append(ancestor.actor_id)
    return chain
