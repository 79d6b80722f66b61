"""``out_of_intent``: a call that goes beyond what its task declared it would do.

A task declares its intent when it opens (DESIGN "JIT task credentials"): the actions
(tools) it will use, the resources it will touch and, where the caller knows them, the
calls it will make with the argument values that matter (:class:`IntendedCall`: the
recipient of a payment, the address of an e-mail, the URL to fetch). A call deviates:

- when its tool is not among the intended actions;
- when its resource lies outside the intended resource patterns;
- when it names a target (see :data:`tether.drift.catalog.TARGET_ARGUMENTS`) whose value
  differs from every target value the intent declared.

How much it deviates depends on what the tool does (:class:`ToolRole`): an extra
read-only call deviates little, a sink (data or value leaving the identity's control)
towards a target nobody intended deviates fully. Values are compared after
:func:`~tether.drift.catalog.normalise_target` (case, URL scheme, ``www.``).
"""

from __future__ import annotations

from collections.abc import Mapping

from tether.drift.catalog import normalise_target, target_values
from tether.drift.model import (
    DetectionContext,
    Observation,
    Signal,
    TaskView,
    ToolCatalog,
    ToolRole,
)
from tether.estate import parse_pattern

NAME = "out_of_intent"

#: Deviation of a tool the intent does not name, by what the tool does.
TOOL_DEVIATION: Mapping[ToolRole, float] = {
    ToolRole.READ: 0.2,
    ToolRole.SOURCE: 0.35,
    ToolRole.MUTATE: 0.5,
    ToolRole.SINK: 0.8,
}
#: Deviation of a target (or resource) the intent does not name, by what the tool does.
TARGET_DEVIATION: Mapping[ToolRole, float] = {
    ToolRole.READ: 0.2,
    ToolRole.SOURCE: 0.3,
    ToolRole.MUTATE: 0.6,
    ToolRole.SINK: 1.0,
}


def intended_targets(task: TaskView, catalog: ToolCatalog) -> frozenset[str]:
    """Every target value the task's intended calls declare, normalised."""
    return frozenset(
        normalise_target(value)
        for call in task.calls
        for _, value in target_values(catalog.info(call.tool), call.arguments)
    )


def resource_within(task: TaskView, action: str, resource: str | None) -> bool:
    """Whether ``resource`` lies within the task's resource patterns (``type:id`` text)."""
    if resource is None:
        return True
    if task.within_intent is not None:
        return task.within_intent(action, resource)
    rtype, sep, rid = resource.partition(":")
    rid = rid[1:] if rid.startswith(":") else rid  # both `type:id` and `type::id`
    for text in task.resources:
        pattern = parse_pattern(text)
        if isinstance(pattern, str):
            continue
        if pattern.type is None or (sep and pattern.matches(rtype, rid)):
            return True
    return False


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    task = ctx.task
    if task is None:
        return []
    tool = obs.tool_name or obs.action
    info = ctx.catalog.info(tool)
    role = info.role
    reasons: list[str] = []
    deviation = 0.0
    details: dict[str, object] = {"tool": tool, "role": role.value}

    if tool not in task.actions:
        deviation = TOOL_DEVIATION[role]
        reasons.append(f"{role.value} tool `{tool}` is not in the task's intent")

    intended = intended_targets(task, ctx.catalog)
    named = target_values(info, obs.arguments) if intended else []
    unintended = [(n, v) for n, v in named if normalise_target(v) not in intended]
    if unintended:
        deviation = max(deviation, TARGET_DEVIATION[role])
        shown = ", ".join(f"{name} `{value}`" for name, value in unintended[:3])
        reasons.append(f"{shown} is not a target the task declared")
        details["targets"] = [value for _, value in unintended]
    elif not named and tool in task.actions and not resource_within(task, tool, obs.resource):
        # Targets compared by value (above) say more than the resource pattern does.
        deviation = max(deviation, TARGET_DEVIATION[role])
        reasons.append(f"resource `{obs.resource}` is outside the task's intended resources")

    if not reasons:
        return []
    if role is ToolRole.SINK:
        details["sink"] = True
    return [
        Signal(
            detector=NAME,
            deviation=deviation,
            reason="; ".join(reasons),
            evidence=(obs.ref,),
            details=details,
        )
    ]
