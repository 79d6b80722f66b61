"""``tether check``: one decision from the command line (recorded like any other)."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import DbOption, JsonOption, open_tether
from tether.cli.output import (
    EXIT_ACTION_NEEDED,
    EXIT_BAD_INPUT,
    EXIT_OK,
    console,
    emit_json,
    errors_to_exit,
    fail,
)
from tether.policy import DecisionRequest, EntityRef

# `type:id`, where a namespaced type keeps its `::` (`Acme::User:alice`).
_REF = re.compile(r"((?:[^:]|::)+):(.+)", re.DOTALL)


def _ref(value: str, what: str, as_json: bool) -> EntityRef:
    match = _REF.fullmatch(value)
    if match is None:
        fail(f"--{what} must look like `type:id`, got `{value}`", EXIT_BAD_INPUT, as_json=as_json)
    return EntityRef(match[1], match[2])


def check(
    subject: Annotated[str, typer.Option(help="subject as type:id, e.g. agent:billing-bot")],
    action: Annotated[str, typer.Option(help="action name")],
    resource: Annotated[str, typer.Option(help="resource as type:id, e.g. invoice:INV-1")],
    context: Annotated[str | None, typer.Option(help="context as a JSON object")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for one decision. Exit 0 on allow/constrain, 1 on deny/approval_required."""
    parsed_context: dict[str, object] = {}
    if context:
        try:
            parsed_context = json.loads(context)
        except json.JSONDecodeError as exc:
            fail(f"--context is not valid JSON: {exc}", EXIT_BAD_INPUT, as_json=as_json)
        if not isinstance(parsed_context, dict):
            fail("--context must be a JSON object", EXIT_BAD_INPUT, as_json=as_json)
    request = DecisionRequest(
        _ref(subject, "subject", as_json),
        action,
        _ref(resource, "resource", as_json),
        parsed_context,
    )
    with errors_to_exit(as_json), open_tether(db) as tether:
        recorded = tether.evaluate(request, caller="cli")
    decision = recorded.decision
    if as_json:
        emit_json(
            {
                "decision": decision.permits,
                "decision_id": recorded.decision_id,
                "outcome": decision.outcome.value,
                "reasons": list(decision.reasons),
                "obligations": dict(decision.obligations) if decision.permits else {},
                "errors": list(decision.errors),
            }
        )
    else:
        colour = "green" if decision.permits else "red"
        console.print(f"[bold {colour}]{decision.outcome.value}[/]  ({recorded.decision_id})")
        console.print(f"reasons: {', '.join(decision.reasons)}", highlight=False, markup=False)
        for key, value in (decision.obligations if decision.permits else {}).items():
            console.print(f"obligation: {key}={value}", highlight=False, markup=False)
        for error in decision.errors:
            console.print(f"[red]error:[/] {escape(error)}", highlight=False)
    raise SystemExit(EXIT_OK if decision.permits else EXIT_ACTION_NEEDED)
