"""Access paths of an agent task: delegation, tool-call order, and the out-of-intent mark.

billing-bot opens a task (read invoices, email ``*@example.org``), exchanges its SVID for a
task token and delegates a narrower token to helper-bot, all through ``Tether.tasks``.
A PEP decides with both tokens (one request outside the intent), and the agents' tool
calls, with parent/child call ids, are ingested from a JSON lines file through the event
store. On both backends.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from tether.api.authzen import evaluate_one
from tether.config import load_settings
from tether.errors import NotFound
from tether.estate import apply_estate
from tether.paths import (
    AccessPath,
    Mark,
    NodeKind,
    PathNode,
    Relation,
    build_path,
    to_dot,
    to_mermaid,
)
from tether.services import Tether
from tether.telemetry.ingest import iter_file
from tether.telemetry.model import Source
from tether.telemetry.store import EventStore
from token_support import HELPER, WorkloadKey, delegate, issue, open_task, write_estate

BILLING_SVID = "spiffe://example.org/agents/billing-bot"
MAPPING = {
    "at": "at",
    "principal": "agent",
    "action": "action",
    "resource": "resource",
    "tool_name": "tool",
    "call_id": "call",
    "parent_call_id": "parent",
    "task_id": "task",
    "token_id": "token",
    "decision_id": "decision",
    "outcome": "outcome",
}


@pytest.fixture(scope="module")
def workload_key() -> WorkloadKey:
    return WorkloadKey.generate("wk-1")


@pytest.fixture
def tether(store: Engine, tmp_path: Path, workload_key: WorkloadKey) -> Iterator[Tether]:
    settings = load_settings(
        {},
        database_url=str(store.url),
        master_key_file=str(tmp_path / "master.key"),
        issuer="https://tether.test",
    )
    made = Tether(settings, engine=store)
    apply_estate(made.engine, write_estate(tmp_path / "estate", workload_key))
    made.reload()
    yield made
    made.close()


def decide(tether: Tether, token: str, action: str, resource: str) -> str:
    """A PEP's decision with a task token; the decision id."""
    kind, _, name = resource.partition(":")
    body = {
        "subject": {"properties": {"token": token}},
        "action": {"name": action},
        "resource": {"type": kind, "id": name},
    }
    answer: dict[str, Any] = orjson.loads(evaluate_one(tether, body, None, "pep-1"))
    return str(answer["context"]["decision_id"])


@dataclass(frozen=True)
class Scenario:
    task_id: str
    root_jti: str
    child_jti: str
    allowed: str  # decision id: read_invoice within intent (root token)
    delegated: str  # decision id: read_invoice with the delegated token
    refused: str  # decision id: send_email outside the intent
    start: datetime


def calls(scenario: Scenario, start: datetime) -> list[dict[str, Any]]:
    """Tool calls of the task (shuffled: the path orders them), plus untasked events."""
    t = scenario

    def at(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    helper = "spiffe://example.org/agents/helper-bot"
    return [
        # c4: billing-bot emails outside the intent, under c1, after c2.
        {"at": at(40), "agent": BILLING_SVID, "action": "send_email",
         "resource": "email:cfo@evil.example", "tool": "mailer", "call": "c4", "parent": "c1",
         "task": t.task_id, "token": t.root_jti},
        # c2: helper-bot, with the delegated token, reads another invoice under c1.
        {"at": at(20), "agent": helper, "action": "read_invoice", "resource": "invoice:INV-2",
         "tool": "fetch_invoice", "call": "c2", "parent": "c1", "task": t.task_id,
         "token": t.child_jti, "decision": t.delegated},
        # c1: billing-bot's first tool call, with the root token.
        {"at": at(10), "agent": BILLING_SVID, "action": "read_invoice", "resource": "invoice:INV-1",
         "tool": "fetch_invoice", "call": "c1", "parent": "step-0", "task": t.task_id,
         "token": t.root_jti, "decision": t.allowed},
        # c3: helper-bot's tool ran a tool of its own.
        {"at": at(30), "agent": helper, "action": "read_invoice", "resource": "invoice:INV-3",
         "tool": "ocr", "call": "c3", "parent": "c2", "task": t.task_id, "token": t.child_jti},
        # Outside any task: once within the standing entitlement, once outside it.
        {"at": at(50), "agent": BILLING_SVID, "action": "pay_invoice",
         "resource": "payments:P-7"},
        {"at": at(60), "agent": BILLING_SVID, "action": "delete_invoice",
         "resource": "invoice:INV-1", "outcome": "denied"},
    ]  # fmt: skip


@pytest.fixture
def scenario(tether: Tether, workload_key: WorkloadKey, tmp_path: Path) -> Scenario:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    authority = tether.tasks
    task = open_task(authority, workload_key)
    root = issue(authority, workload_key, task.id)
    allowed = decide(tether, root.token, "read_invoice", "invoice:INV-1")
    # A token's `iat` is whole seconds: delegate in the next second, after that decision.
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)
    child = delegate(authority, workload_key, root.token, HELPER, scope="read_invoice")
    delegated = decide(tether, child.token, "read_invoice", "invoice:INV-2")
    refused = decide(tether, root.token, "send_email", "email:cfo@evil.example")
    tether.decision_log.flush()
    made = Scenario(task.id, root.claims.jti, child.claims.jti, allowed, delegated, refused, start)
    lines = tmp_path / "calls.jsonl"
    # Tool calls happen after the decisions that allowed them.
    later = datetime.now(UTC) + timedelta(seconds=1)
    lines.write_text("".join(json.dumps(c) + "\n" for c in calls(made, later)))
    summary = EventStore(tether.engine, tether.keys).ingest(
        iter_file(lines, Source.JSONL, mapping=MAPPING)
    )
    assert (summary.ingested, summary.errors) == (6, 0)
    return made


def node(path: AccessPath, node_id: str) -> PathNode:
    found = [n for n in path.nodes if n.id == node_id]
    assert len(found) == 1, node_id
    return found[0]


def call(path: AccessPath, call_id: str) -> PathNode:
    found = [n for n in path.of_kind(NodeKind.CALL) if n.attributes["call_id"] == call_id]
    assert len(found) == 1, call_id
    return found[0]


def test_delegation_chain_proof_task_tokens(tether: Tether, scenario: Scenario) -> None:
    path = build_path(tether.engine, "billing-bot", classifier=tether.snapshot.classifier)
    task = node(path, f"task:{scenario.task_id}")
    proof = node(path, str(task.parent))
    assert proof.kind is NodeKind.PROOF
    assert proof.parent == path.root.id
    assert proof.attributes["workload"] == BILLING_SVID
    root = node(path, f"token:{scenario.root_jti}")
    child = node(path, f"token:{scenario.child_jti}")
    assert root.parent == task.id
    assert child.parent == root.id
    assert child.attributes["act"] == ["helper-bot"]
    assert child.attributes["depth"] == 1
    assert child.attributes["scope"] == ["read_invoice"]
    relations = {(e.source, e.target): e.relation for e in path.edges}
    assert relations[(task.id, root.id)] is Relation.ISSUED
    assert relations[(root.id, child.id)] is Relation.DELEGATED
    assert task.mark is Mark.WITHIN_ENTITLEMENT
    assert child.mark is Mark.WITHIN_INTENT
    # Reading order: the delegation comes after the root token, before what used it.
    order = [n.id for n in path.nodes]
    assert order.index(proof.id) < order.index(task.id) < order.index(root.id)
    assert order.index(root.id) < order.index(child.id)


def test_decisions_sit_under_their_tokens_and_the_outside_one_is_marked(
    tether: Tether, scenario: Scenario
) -> None:
    path = build_path(tether.engine, "billing-bot", classifier=tether.snapshot.classifier)
    allowed = node(path, f"decision:{scenario.allowed}")
    delegated = node(path, f"decision:{scenario.delegated}")
    refused = node(path, f"decision:{scenario.refused}")
    assert allowed.parent == f"token:{scenario.root_jti}"
    assert delegated.parent == f"token:{scenario.child_jti}"
    assert refused.parent == f"token:{scenario.root_jti}"
    assert (allowed.mark, delegated.mark) == (Mark.WITHIN_INTENT, Mark.WITHIN_INTENT)
    assert refused.mark is Mark.OUTSIDE
    assert refused.attributes["outcome"] == "deny"
    assert "not in the task's intent" in str(refused.why)
    under_root = [n.id for n in path.children(f"token:{scenario.root_jti}")]
    # Time order under the root token: first decision, the delegation, the refused one.
    assert under_root.index(allowed.id) < under_root.index(f"token:{scenario.child_jti}")
    assert under_root.index(f"token:{scenario.child_jti}") < under_root.index(refused.id)


def test_tool_calls_nest_parent_to_child_in_time_order(tether: Tether, scenario: Scenario) -> None:
    path = build_path(tether.engine, "billing-bot", classifier=tether.snapshot.classifier)
    c1, c2, c3, c4 = (call(path, c) for c in ("c1", "c2", "c3", "c4"))
    assert c1.parent == f"token:{scenario.root_jti}"  # its parent span is no tool call
    assert (c2.parent, c3.parent, c4.parent) == (c1.id, c2.id, c1.id)
    assert [n.id for n in path.children(c1.id)] == [c2.id, c4.id]
    assert c2.attributes["identity"] == "helper-bot"  # the sub-agent's own call
    assert c2.attributes["token"] == scenario.child_jti
    assert [n.attributes.get("call_id") for _, n in path.walk() if n.kind is NodeKind.CALL][:4] == [
        "c1",
        "c2",
        "c3",
        "c4",
    ]
    assert (c1.mark, c2.mark, c3.mark) == (Mark.WITHIN_INTENT,) * 3
    assert c4.mark is Mark.OUTSIDE
    assert "standing entitlement of `billing-bot`" in str(c4.why)
    authorized = {(e.source, e.target) for e in path.edges if e.relation is Relation.AUTHORIZED}
    assert authorized == {
        (f"decision:{scenario.allowed}", c1.id),
        (f"decision:{scenario.delegated}", c2.id),
    }


def test_steps_outside_any_task_are_judged_on_the_entitlement(
    tether: Tether, scenario: Scenario
) -> None:
    path = build_path(tether.engine, "billing-bot", classifier=tether.snapshot.classifier)
    untasked = [n for n in path.children(path.root.id) if n.kind is NodeKind.CALL]
    assert [(n.attributes["action"], n.mark) for n in untasked] == [
        ("pay_invoice", Mark.WITHIN_ENTITLEMENT),
        ("delete_invoice", Mark.OUTSIDE),
    ]
    resources = {n.attributes["resource"]: n.mark for n in path.of_kind(NodeKind.RESOURCE)}
    assert resources["invoice:INV-2"] is Mark.WITHIN_INTENT
    assert resources["email:cfo@evil.example"] is Mark.OUTSIDE
    assert resources["invoice:INV-1"] is Mark.OUTSIDE  # delete_invoice reached it
    document = path.to_json()
    assert document["marks"]["outside"] == len(path.outside) == 5
    assert json.loads(json.dumps(document)) == document


def test_filters_by_task_and_window_and_from_the_sub_agent(
    tether: Tether, scenario: Scenario
) -> None:
    only_task = build_path(tether.engine, "billing-bot", task=scenario.task_id)
    assert not [n for n in only_task.children(only_task.root.id) if n.kind is NodeKind.CALL]
    assert len(only_task.of_kind(NodeKind.CALL)) == 4
    assert len(only_task.of_kind(NodeKind.DECISION)) == 3
    helper = build_path(tether.engine, "helper-bot")
    assert [n.id for n in helper.of_kind(NodeKind.TASK)] == [f"task:{scenario.task_id}"]
    assert len(helper.of_kind(NodeKind.TOKEN)) == 2
    empty = build_path(tether.engine, "billing-bot", until=scenario.start - timedelta(days=1))
    assert [n.kind for n in empty.nodes] == [NodeKind.IDENTITY]
    with pytest.raises(NotFound) as unknown:
        build_path(tether.engine, "nobody")
    assert unknown.value.code == "identity_not_found"
    with pytest.raises(NotFound) as other:
        build_path(tether.engine, "etl", task=scenario.task_id)
    assert other.value.code == "task_not_found"
    cut = build_path(tether.engine, "billing-bot", limit=2)
    assert cut.truncated
    assert len(cut.of_kind(NodeKind.CALL)) <= 2


# --- pictures --------------------------------------------------------------------------------

_DOT_TOKEN = re.compile(r'\s*(?:(->)|([{}\[\];,=])|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.]+))')


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """A strict reader of the DOT subset tether writes: nodes with attributes and edges."""
    tokens: list[str] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _DOT_TOKEN.match(stripped, position)
        assert match is not None, f"bad DOT at {stripped[position : position + 40]!r}"
        tokens.append(next(g for g in match.groups() if g is not None))
        position = match.end()
    assert tokens[:3] == ["digraph", "access_path", "{"]
    assert tokens[-1] == "}"
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    body, index = tokens[3:-1], 0

    def attributes() -> dict[str, str]:
        nonlocal index
        found: dict[str, str] = {}
        if index < len(body) and body[index] == "[":
            index += 1
            while body[index] != "]":
                key, eq, value = body[index : index + 3]
                assert eq == "=", (key, eq, value)
                found[key] = value
                index += 3
                if body[index] == ",":
                    index += 1
            index += 1
        return found

    while index < len(body):
        first = body[index]
        index += 1
        if body[index] == "=":  # graph attribute: rankdir=TB;
            index += 2
        elif body[index] == "->":
            target = body[index + 1]
            index += 2
            edges.append((first, target, attributes()))
        else:
            found = attributes()
            if first not in ("node", "edge"):
                nodes[first] = found
        assert body[index] == ";", body[index - 3 : index + 1]
        index += 1
    return nodes, edges


def test_dot_is_well_formed_and_outside_steps_are_red(tether: Tether, scenario: Scenario) -> None:
    path = build_path(tether.engine, "billing-bot", classifier=tether.snapshot.classifier)
    nodes, edges = parse_dot(to_dot(path))
    assert len(nodes) == len(path.nodes)
    assert len(edges) == len(path.edges)
    assert all(a in nodes and b in nodes for a, b, _ in edges)
    red = {name for name, attrs in nodes.items() if attrs.get("color") == "red"}
    assert len(red) == len(path.outside)
    labels = {name: attrs["label"] for name, attrs in nodes.items()}
    assert any("cfo@evil.example" in labels[name] for name in red)


def test_mermaid_is_a_flowchart_of_every_node_and_edge(tether: Tether, scenario: Scenario) -> None:
    path = build_path(tether.engine, "billing-bot", classifier=tether.snapshot.classifier)
    lines = to_mermaid(path).splitlines()
    assert lines[0] == "flowchart TD"
    defined = set()
    shapes = r'\(\["|\[/"|\[\["|\{\{"|\{"|\["|\[\("'
    ends = r'"\]\)|"/\]|"\]\]|"\}\}|"\}|"\]|"\)\]'
    node_line = re.compile(rf'^  (n\d+)({shapes})([^"]*)({ends})$')
    edge_line = re.compile(r"^  (n\d+) (-->|-\.->)\|([a-z]+)\| (n\d+)$")
    class_line = re.compile(
        r"^  class (n\d+(?:,n\d+)*) (within_intent|within_entitlement|outside)$"
    )
    edges = 0
    outside: list[str] = []
    for line in lines[1:]:
        if match := node_line.match(line):
            defined.add(match.group(1))
        elif match := edge_line.match(line):
            assert match.group(1) in defined
            assert match.group(4) in defined
            edges += 1
        elif match := class_line.match(line):
            members = match.group(1).split(",")
            assert set(members) <= defined
            if match.group(2) == "outside":
                outside = members
        else:
            assert line.startswith("  classDef "), line
    assert len(defined) == len(path.nodes)
    assert edges == len(path.edges)
    assert len(outside) == len(path.outside)
    assert any("classDef outside" in line and "stroke:#c62828" in line for line in lines)


def test_labels_cannot_break_out_of_the_picture() -> None:
    hostile = PathNode(
        "call:1", NodeKind.CALL, 'x"] --> n9["}; evil [label="a\\', "identity:a", mark=Mark.OUTSIDE
    )
    path = AccessPath(
        "a",
        (PathNode("identity:a", NodeKind.IDENTITY, "a", None), hostile),
        (),
    )
    nodes, _ = parse_dot(to_dot(path))
    assert set(nodes) == {"n0", "n1"}
    assert nodes["n1"]["label"].startswith('x\\"]')
    text = to_mermaid(path)
    assert '"] --> n9' not in text
    assert "#34;" in text
