"""Cedar policy sources: split files into statements, give each a stable id and a location.

Cedar numbers policies by position (``policy0``, ``policy1``, ...) per parse, which is
useless in a reason a person reads. Every policy here gets a stable id instead: its
``@id`` annotation, else ``<file>#<n>``; and every policy keeps the file and line it
came from, so parse and validation errors name both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cedarpy

from tether.policy._model import Outcome
from tether.policy._obligations import parse_obligations
from tether.policy.errors import PolicyInvalid


@dataclass(frozen=True)
class SourceProblem:
    file: str
    line: int | None
    message: str


@dataclass(frozen=True)
class PolicySpec:
    """One parsed policy: its stable id, origin, effect and tether annotations."""

    id: str
    file: str
    line: int
    effect: str
    outcome: Outcome
    obligations: Mapping[str, str]
    est: Mapping[str, Any] = field(repr=False)


def split_statements(text: str) -> list[tuple[int, str]]:
    """Split Cedar text into ``(first_line, statement)`` pairs at top-level ``;``.

    Strings and ``//`` comments are skipped so a ``;`` inside them does not split.
    """
    statements: list[tuple[int, str]] = []
    start = 0
    i = 0
    line = 1
    start_line: int | None = None
    in_string = False
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
        elif ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch == '"':
            in_string = True
            start_line = start_line or line
        elif ch == ";":
            statements.append((start_line or line, text[start : i + 1]))
            start = i + 1
            start_line = None
        elif not ch.isspace() and start_line is None:
            start_line = line
        if ch == "\n":
            line += 1
        i += 1
    tail = text[start:]
    if tail.strip() and not _only_comments(tail):
        statements.append((start_line or line, tail))
    return statements


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("//") for ln in text.splitlines())


def parse_policy_file(name: str, text: str) -> tuple[list[PolicySpec], list[SourceProblem]]:
    """Parse one ``.cedar`` file into specs, or report each statement that fails."""
    specs: list[PolicySpec] = []
    problems: list[SourceProblem] = []
    for index, (line, statement) in enumerate(split_statements(text)):
        try:
            est = json.loads(cedarpy.policies_to_json_str(statement))
        except (ValueError, RuntimeError) as exc:
            problems.append(SourceProblem(name, line, f"cedar syntax error: {exc}"))
            continue
        policies = {**est.get("staticPolicies", {}), **est.get("templates", {})}
        if est.get("templates"):
            problems.append(SourceProblem(name, line, "policy templates are not supported"))
            continue
        for body in policies.values():
            try:
                specs.append(_spec_from_est(name, line, index, body))
            except PolicyInvalid as exc:
                problems.append(SourceProblem(name, line, exc.message))
    return specs, problems


def _spec_from_est(name: str, line: int, index: int, body: dict[str, Any]) -> PolicySpec:
    annotations: dict[str, str] = body.get("annotations") or {}
    policy_id = annotations.get("id") or f"{name}#{index + 1}"
    effect = body["effect"]
    raw_outcome = annotations.get("outcome")
    if raw_outcome is None:
        outcome = Outcome.ALLOW if effect == "permit" else Outcome.DENY
    else:
        try:
            outcome = Outcome(raw_outcome)
        except ValueError:
            allowed = ", ".join(o.value for o in Outcome)
            raise PolicyInvalid(
                f"policy `{policy_id}`: unknown @outcome `{raw_outcome}` "
                f"(expected one of {allowed})"
            ) from None
    if effect == "forbid" and outcome not in (Outcome.DENY, Outcome.APPROVAL_REQUIRED):
        raise PolicyInvalid(
            f"policy `{policy_id}`: a forbid policy can only have @outcome `deny` or "
            f"`approval_required`, not `{outcome}`"
        )
    if effect == "permit" and outcome is Outcome.DENY:
        raise PolicyInvalid(f"policy `{policy_id}`: a permit policy cannot have @outcome `deny`")
    obligations = parse_obligations(annotations.get("obligations", ""), policy=policy_id)
    if obligations and outcome is not Outcome.CONSTRAIN:
        raise PolicyInvalid(f'policy `{policy_id}`: @obligations need @outcome("constrain")')
    if outcome is Outcome.CONSTRAIN and not obligations:
        raise PolicyInvalid(f'policy `{policy_id}`: @outcome("constrain") needs @obligations')
    return PolicySpec(
        id=policy_id,
        file=name,
        line=line,
        effect=effect,
        outcome=outcome,
        obligations=obligations,
        est=body,
    )
