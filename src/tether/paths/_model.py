"""The access path model: nodes (proof, task, token, decision, call, resource) and edges.

A path is a small directed graph whose *tree* edges give the reading order people see:
identity → workload proof → task → token → delegated token, and under each token its
decisions and tool calls in time order, a tool call's own calls under it (``call_id`` /
``parent_call_id``). Other edges link what the tree cannot show twice: the decision that
authorized a call, and every resource a step reached. Every access step carries a
:class:`Mark`; ``outside`` steps say why.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Mark(StrEnum):
    """Where a step stands against what the identity was approved and declared to do.

    ``within_intent``: inside the task's declared intent (and the standing entitlement);
    ``within_entitlement``: no task applies, inside the standing entitlement;
    ``outside``: outside the standing entitlement, or outside the task's intent.
    """

    WITHIN_INTENT = "within_intent"
    WITHIN_ENTITLEMENT = "within_entitlement"
    OUTSIDE = "outside"


class NodeKind(StrEnum):
    IDENTITY = "identity"
    PROOF = "proof"
    TASK = "task"
    TOKEN = "token"  # noqa: S105 (a node kind, not a secret)
    DECISION = "decision"
    CALL = "call"  # an observed event: a tool call or any other access
    RESOURCE = "resource"


class Relation(StrEnum):
    PROVED = "proved"  # identity → proof
    OPENED = "opened"  # proof → task
    ISSUED = "issued"  # task → token
    DELEGATED = "delegated"  # parent token → child token (act)
    DECIDED = "decided"  # token/task/identity → decision
    CALLED = "called"  # token/task/identity → call; parent call → child call
    AUTHORIZED = "authorized"  # decision → the call it authorized (decision_id)
    REACHED = "reached"  # decision or call → resource


@dataclass(frozen=True, slots=True)
class PathNode:
    """One step of a path; ``parent`` is its place in the tree (``None`` for the root)."""

    id: str
    kind: NodeKind
    label: str
    parent: str | None
    at: datetime | None = None
    mark: Mark | None = None
    why: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, hash=False)

    @property
    def outside(self) -> bool:
        return self.mark is Mark.OUTSIDE

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": str(self.kind),
            "label": self.label,
            "parent": self.parent,
            "at": self.at.isoformat() if self.at else None,
            "mark": str(self.mark) if self.mark else None,
            "why": self.why,
            **{k: v for k, v in self.attributes.items() if k not in _RESERVED},
        }


_RESERVED = frozenset({"id", "kind", "label", "parent", "at", "mark", "why"})


@dataclass(frozen=True, slots=True)
class PathEdge:
    source: str
    target: str
    relation: Relation

    def to_json(self) -> dict[str, str]:
        return {"from": self.source, "to": self.target, "relation": str(self.relation)}


@dataclass(frozen=True)
class AccessPath:
    """The observed access path of one identity, in tree pre-order (children by time)."""

    identity: str
    nodes: tuple[PathNode, ...]
    edges: tuple[PathEdge, ...]
    since: datetime | None = None
    until: datetime | None = None
    task: str | None = None
    truncated: bool = False
    _children: Mapping[str | None, tuple[PathNode, ...]] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        children: dict[str | None, list[PathNode]] = {}
        for node in self.nodes:
            children.setdefault(node.parent, []).append(node)
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})

    @property
    def root(self) -> PathNode:
        return self.nodes[0]

    def children(self, node_id: str | None) -> tuple[PathNode, ...]:
        """The tree children of ``node_id`` in reading order."""
        return self._children.get(node_id, ())

    def of_kind(self, kind: NodeKind) -> list[PathNode]:
        return [n for n in self.nodes if n.kind is kind]

    @property
    def outside(self) -> list[PathNode]:
        """Every step marked ``outside``, in reading order."""
        return [n for n in self.nodes if n.outside]

    def walk(self) -> Iterator[tuple[int, PathNode]]:
        """``(depth, node)`` in tree pre-order."""
        stack = [(0, self.root)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, c) for c in reversed(self.children(node.id)))

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {str(m): 0 for m in Mark}
        for node in self.nodes:
            if node.mark is not None:
                counts[str(node.mark)] += 1
        return {
            "identity": self.identity,
            "task": self.task,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "truncated": self.truncated,
            "marks": counts,
            "outside": [n.id for n in self.outside],
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
        }


def recorded_link(context: Any) -> tuple[str | None, str | None]:
    """The task id and token ``jti`` a decision row recorded under ``context.tether``."""
    tether = context.get("tether") if isinstance(context, dict) else None
    if not isinstance(tether, dict):
        return None, None
    task_id, jti = tether.get("task_id"), tether.get("token_jti")
    return (
        task_id if isinstance(task_id, str) else None,
        jti if isinstance(jti, str) else None,
    )
