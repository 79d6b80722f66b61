"""tether's decision core: Cedar policy evaluation with tether outcomes. Pure, no I/O.

Nothing in this package imports another tether subpackage; it is the innermost layer.
"""

from tether.policy._engine import (
    NO_PERMIT,
    RESERVED_CONTEXT_KEYS,
    EntityRecord,
    PolicyEngine,
    build_context,
    scope_action_names,
    to_cedar_value,
)
from tether.policy._model import Decision, DecisionRequest, EntityRef, Outcome
from tether.policy._obligations import merge_obligations, parse_obligations
from tether.policy._source import PolicySpec, SourceProblem, parse_policy_file, split_statements
from tether.policy._validate import validate_against_schema
from tether.policy.errors import PolicyInvalid

__all__ = [
    "NO_PERMIT",
    "RESERVED_CONTEXT_KEYS",
    "Decision",
    "DecisionRequest",
    "EntityRecord",
    "EntityRef",
    "Outcome",
    "PolicyEngine",
    "PolicyInvalid",
    "PolicySpec",
    "SourceProblem",
    "build_context",
    "merge_obligations",
    "parse_obligations",
    "parse_policy_file",
    "scope_action_names",
    "split_statements",
    "to_cedar_value",
    "validate_against_schema",
]
