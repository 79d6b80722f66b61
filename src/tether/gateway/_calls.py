"""One governed MCP call as a decision: the call, the AuthZEN request it becomes, the answer.

Every ``tools/call``, ``resources/read`` and ``prompts/get`` is one tether decision,
shaped as an AuthZEN evaluation (DESIGN.md, "Agents"):

* ``subject.properties.token``: the agent's task token (tether takes the subject from it);
* ``action``: the tool name (``resources/read`` and ``prompts/get`` for the other two);
* ``resource``: the argument the estate's ``tools:`` section names, typed as it says;
  an unmapped tool is decided on its name alone (``mcp_tool:<name>``), a resource read
  on its URI (``mcp_resource:<uri>``), a prompt on its name (``mcp_prompt:<name>``);
* ``context.mcp``: the method, the tool, its arguments, the destinations the mapping
  names (``["email:bob@example.org"]``) and the data class of the result;
  ``context.approval_id`` when the agent retries after an approval.

The body is built here once, so that the in-process decider and a remote one (over the
SDK, later) ask tether exactly the same question.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.estate.compiled import ToolMapping

TOOL_CALL = "tools/call"
RESOURCE_READ = "resources/read"
PROMPT_GET = "prompts/get"
#: Entity types of what a call is decided on when no mapping names a resource.
TOOL_TYPE, RESOURCE_TYPE, PROMPT_TYPE = "mcp_tool", "mcp_resource", "mcp_prompt"
#: The error code of a call whose arguments lack what the estate says decides it.
ARGUMENT_MISSING = "tool_argument_missing"


class ArgumentProblem(Exception):
    """A call that cannot be put to tether: an argument its mapping needs is absent or not
    an id (the call is refused without a decision and the upstream is never called)."""

    code = ARGUMENT_MISSING

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ToolCall:
    """One governed MCP request: its method, the tool (or resource URI, or prompt name)
    and its arguments."""

    method: str
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    approval_id: str | None = None

    @property
    def action(self) -> str:
        return self.name if self.method == TOOL_CALL else self.method


@dataclass(frozen=True)
class GatewayDecision:
    """tether's answer to one call, as the gateway enforces it."""

    permits: bool
    outcome: str
    reasons: tuple[str, ...]
    obligations: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None
    errors: tuple[str, ...] = ()
    decision_id: str | None = None
    approval: Mapping[str, Any] | None = None

    @classmethod
    def from_authzen(cls, answer: Mapping[str, Any]) -> GatewayDecision:
        """From an AuthZEN evaluation response (``{"decision", "context"}``)."""
        context = answer.get("context") or {}
        return cls(
            permits=bool(answer.get("decision")),
            outcome=str(context.get("outcome", "deny")),
            reasons=tuple(context.get("reasons", ())),
            obligations=dict(context.get("obligations") or {}),
            error_code=context.get("error_code"),
            errors=tuple(context.get("errors", ())),
            decision_id=context.get("decision_id"),
            approval=context.get("approval"),
        )

    @classmethod
    def refused(cls, code: str, message: str) -> GatewayDecision:
        """A refusal the gateway makes itself (no decision was recorded)."""
        return cls(False, "deny", (code,), error_code=code, errors=(message,))


def decision_body(token: str, call: ToolCall, mapping: ToolMapping | None) -> dict[str, Any]:
    """The AuthZEN evaluation request for ``call`` made with the task ``token``.

    Raises:
        ArgumentProblem: the mapping names a resource argument the call lacks.
    """
    mcp: dict[str, Any] = {"method": call.method, "arguments": dict(call.arguments)}
    if call.method == TOOL_CALL:
        mcp["tool"] = call.name
        resource = {"type": TOOL_TYPE, "id": call.name}
    elif call.method == RESOURCE_READ:
        resource = {"type": RESOURCE_TYPE, "id": call.name}
    else:
        resource = {"type": PROMPT_TYPE, "id": call.name}
    if mapping is not None:
        if mapping.resource_argument is not None and mapping.resource_type is not None:
            value = _identifier(call, mapping.resource_argument)
            resource = {"type": mapping.resource_type, "id": value}
        mcp["destinations"] = destinations(call, mapping)
        if mapping.data_class is not None:
            mcp["data_class"] = mapping.data_class
    context: dict[str, Any] = {"mcp": mcp}
    if call.approval_id is not None:
        context["approval_id"] = call.approval_id
    return {
        "subject": {"properties": {"token": token}},
        "action": {"name": call.action},
        "resource": resource,
        "context": context,
    }


def destinations(call: ToolCall, mapping: ToolMapping) -> list[str]:
    """Where the call sends something, as ``type:value`` (a list argument gives several)."""
    found: list[str] = []
    for argument, kind in mapping.destinations.items():
        value = call.arguments.get(argument)
        values = value if isinstance(value, list) else [value]
        found += [f"{kind}:{v}" for v in values if isinstance(v, str | int) and v != ""]
    return found


def _identifier(call: ToolCall, argument: str) -> str:
    value = call.arguments.get(argument)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        shown = "absent" if value is None else f"`{value!r}`"
        raise ArgumentProblem(
            f"tool `{call.name}` is decided on its argument `{argument}` (the resource), "
            f"which is {shown}; it must be a non-empty string or an integer"
        )
    return str(value)
