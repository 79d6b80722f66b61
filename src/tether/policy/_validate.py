"""Cedar schema validation of policies, with problems located at file and line."""

from __future__ import annotations

import json
from collections.abc import Sequence

import cedarpy

from tether.policy._source import PolicySpec, SourceProblem


def validate_against_schema(
    policies: Sequence[PolicySpec], schema_text: str, *, schema_file: str
) -> list[SourceProblem]:
    """Validate every policy against the schema; one problem per validation error."""
    try:
        schema = cedarpy.Schema.from_str(schema_text)
    except ValueError as exc:
        return [SourceProblem(schema_file, None, f"invalid Cedar schema: {exc}")]
    problems: list[SourceProblem] = []
    for spec in policies:
        est = {"staticPolicies": {"p": spec.est}, "templates": {}, "templateLinks": []}
        text = str(cedarpy.PolicySet.from_json_str(json.dumps(est)))
        result = cedarpy.validate_policies(text, schema)
        for error in result.errors:
            message = error.error.replace("policy `policy0`", f"policy `{spec.id}`")
            message = message.replace("policy `p`", f"policy `{spec.id}`")
            problems.append(SourceProblem(spec.file, spec.line, f"schema validation: {message}"))
    return problems
