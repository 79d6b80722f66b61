"""Observed access paths (DESIGN "Telemetry and observed access paths").

The path of an identity is the chain *workload proof → task → tokens (delegation, the
``act`` chain) → decisions and tool calls in order (parent call → child call) →
resources*, reconstructed from the store, per identity, per task and per time window.
Each access step is marked ``within_intent``, ``within_entitlement`` or ``outside``::

    path = build_path(engine, "billing-bot", since=..., classifier=snapshot.classifier)
    path.outside                  # the steps someone must look at
    to_mermaid(path), to_dot(path), path.to_json()

:func:`identity_path` is the flat timeline (events and decisions merged in time order).
"""

from tether.paths._build import assemble, build_path
from tether.paths._judge import Judge, resource_ref
from tether.paths._load import PathRecords, load_records
from tether.paths._model import (
    AccessPath,
    Mark,
    NodeKind,
    PathEdge,
    PathNode,
    Relation,
)
from tether.paths._pictures import to_dot, to_mermaid
from tether.paths._query import DEFAULT_LIMIT, MAX_LIMIT, PathQuery, parse_time
from tether.paths._steps import PathStep, identity_path

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AccessPath",
    "Judge",
    "Mark",
    "NodeKind",
    "PathEdge",
    "PathNode",
    "PathQuery",
    "PathRecords",
    "PathStep",
    "Relation",
    "assemble",
    "build_path",
    "identity_path",
    "load_records",
    "parse_time",
    "resource_ref",
    "to_dot",
    "to_mermaid",
]
