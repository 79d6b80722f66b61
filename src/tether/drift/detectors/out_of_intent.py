"""``out_of_intent``: a call that goes beyond what its task declared it would do.

A task declares its intent when it opens (DESIGN "JIT task credentials"): the actions
(tools) it will use, the resources it will touch and, where the caller knows them, the
calls it will make with the argument values that matter (:class:`IntendedCall`: the
recipient of a payment, the address of an e-mail, the URL to fetch). A call deviates:

- when its tool is not among the intended actions;
- when its resource lies outside the intended resource patterns;
- when it names a target (see :data:`tether.drift.catalog.TARGET_ARGUMENTS`) whose value
  differs from every target value the intent declared, weighed by the value's provenance
  (:mod:`tether.drift.provenance`): named in the task's purpose or returned as a record
  field by a call the intent covers counts little or nothing; found in free text, in what
  a call outside the intent returned, or nowhere counts as the origin says. The finding
  shows each value's origin and the call whose output introduced it.

How much it deviates depends on what the tool does (:class:`ToolRole`): an extra
read-only call deviates little, a sink (data or value leaving the identity's control)
towards a target nobody intended deviates fully. A sink tool the intent does not name
deviates like a change (``mutate``) when no attacker can have chosen where it sends: every
destination is declared, named in the purpose, or ``unsourced`` (introduced by no input of
the run, not even reworded: made up by the agent, whose mistake the destination's own
weight still shows). Values are compared after
:func:`~tether.drift.catalog.normalise_target` (case, URL scheme, ``www.``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from fnmatch import fnmatchcase

from tether.drift.catalog import normalise_target, target_values
from tether.drift.model import (
    DetectionContext,
    Observation,
    Signal,
    TaskView,
    ToolCatalog,
    ToolRole,
)
from tether.drift.provenance import TRUSTED, Origin, Provenance, echoes, trace
from tether.estate import parse_pattern

NAME = "out_of_intent"
_USERS_OWN = frozenset({Origin.INTENT, Origin.PROMPT})
#: Destinations no attacker chose: the user's own, or made up by the agent (no input of the
#: run holds them, and a result is the only channel an attacker controls).
_NOT_INJECTED = _USERS_OWN | {Origin.UNSOURCED}

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


class IntendedTargets:
    """The target values a task declared: its intended calls' targets, and the ids of its
    intent resources (exact, or a glob with a literal part such as ``*@example.org``);
    ``by_tool``: the targets of each tool whose every intended call names some."""

    __slots__ = ("_globs", "_values", "by_tool")

    def __init__(
        self,
        values: frozenset[str],
        globs: tuple[str, ...] = (),
        by_tool: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._values = values
        self._globs = globs
        self.by_tool: Mapping[str, tuple[str, ...]] = by_tool or {}

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        return value in self._values or any(fnmatchcase(value, g) for g in self._globs)

    def __bool__(self) -> bool:
        return bool(self._values or self._globs)

    @property
    def values(self) -> frozenset[str]:
        """The exact target values (normalised), globs aside."""
        return self._values


#: The targets of recently judged tasks: ``(id(task), id(catalog))`` -> the two and theirs.
_INTENDED: dict[tuple[int, int], tuple[TaskView, ToolCatalog, IntendedTargets]] = {}
_MAX_INTENDED = 256


def intended_targets(task: TaskView, catalog: ToolCatalog) -> IntendedTargets:
    """Every target value the task declares, normalised (see :class:`IntendedTargets`).

    Worked out once for a task view and a catalog (both fixed for their lifetime; the
    detectors ask for every call of the task, up to three times a call)."""
    key = (id(task), id(catalog))
    hit = _INTENDED.get(key)
    if hit is not None and hit[0] is task and hit[1] is catalog:
        return hit[2]
    found = _intended_targets(task, catalog)
    if len(_INTENDED) >= _MAX_INTENDED:
        _INTENDED.clear()
    _INTENDED[key] = (task, catalog, found)
    return found


def _intended_targets(task: TaskView, catalog: ToolCatalog) -> IntendedTargets:
    by_tool: dict[str, list[str]] = {}
    untargeted: set[str] = set()  # tools with an intended call that names no target
    for call in task.calls:
        named = [
            normalise_target(v) for _, v in target_values(catalog.info(call.tool), call.arguments)
        ]
        if named:
            by_tool.setdefault(call.tool, []).extend(named)
        else:
            untargeted.add(call.tool)
    values = {value for named in by_tool.values() for value in named}
    globs: list[str] = []
    for text in task.resources:
        pattern = parse_pattern(text)
        if isinstance(pattern, str) or pattern.type is None or not pattern.id_glob.strip("*"):
            continue
        glob = pattern.id_glob.lower()
        if "*" in glob:
            globs.append(glob)
        else:
            values.add(normalise_target(glob))
    declared = {t: tuple(dict.fromkeys(v)) for t, v in by_tool.items() if t not in untargeted}
    return IntendedTargets(frozenset(values), tuple(globs), declared)


def _crossed(seen: Provenance, tool: str, intended: IntendedTargets) -> Provenance:
    """``seen`` as ``declared_elsewhere`` when the intent declares it, but the intended
    calls of ``tool`` declare other targets (see the module docstring)."""
    here = intended.by_tool.get(tool)
    if seen.origin is not Origin.INTENT or here is None:
        return seen
    target = normalise_target(seen.value)
    if target in here:
        return seen
    others = tuple(t for t, values in intended.by_tool.items() if target in values)
    return replace(seen, origin=Origin.DECLARED_ELSEWHERE, declared_for=others, declared_here=here)


def destinations(
    obs: Observation, ctx: DetectionContext, intended: IntendedTargets | None = None
) -> list[tuple[str, Provenance]]:
    """``(argument, provenance)`` of each target value the call names."""
    task = ctx.task
    info = ctx.catalog.info(obs.tool_name or obs.action)
    if task is None:
        return []
    intended = intended if intended is not None else intended_targets(task, ctx.catalog)
    tool = obs.tool_name or obs.action
    found = []
    for name, value in target_values(info, obs.arguments):
        seen = trace(
            value,
            intended=intended,
            purpose=task.purpose,
            record=ctx.record,
            declared=intended.values,
        )
        seen = _crossed(seen, tool, intended)
        if seen.origin is Origin.DECLARED_ELSEWHERE:
            seen = replace(seen, echoed_by=echoes(value, ctx.record))
        if ctx.internal is not None:
            seen = replace(seen, internal=ctx.internal(value))
        found.append((name, seen))
    return found


def leaves_the_organisation(untrusted: list[Provenance]) -> bool:
    """Whether an untrusted destination lies outside a declared organisation."""
    return any(p.internal is False for p in untrusted)


def covered(obs: Observation, ctx: DetectionContext) -> bool:
    """Whether the task's intent covers the call ``obs``: an intended tool, on an intended
    resource, every target of trusted provenance; its result is then data the user asked for."""
    task = ctx.task
    if task is None:
        return False
    tool = obs.tool_name or obs.action
    if tool not in task.actions:
        return False
    named = destinations(obs, ctx)
    if named:
        return all(p.origin in TRUSTED for _, p in named)
    return resource_within(task, tool, obs.resource)


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

    intended = intended_targets(task, ctx.catalog)
    judged = intended or (ctx.record is not None and ctx.record.outputs)
    named = destinations(obs, ctx, intended) if judged else []
    if tool not in task.actions:
        deviation = TOOL_DEVIATION[role]
        if role is ToolRole.SINK and named and all(p.origin in _NOT_INJECTED for _, p in named):
            # Every destination is the user's own words or declared, or made up by the
            # agent: the tool is new, but no attacker chose where it sends; it weighs like a
            # change inside, not like egress (a made-up destination still counts as its
            # origin says, below: a mistake to look at).
            deviation = TOOL_DEVIATION[ToolRole.MUTATE]
        reasons.append(f"{role.value} tool `{tool}` is not in the task's intent")
    untrusted = [(n, p) for n, p in named if p.weight > 0]
    if untrusted:
        weight = max(p.weight for _, p in untrusted)
        deviation = max(deviation, TARGET_DEVIATION[role] * weight)
        reasons += [_unintended(n, p, tool) for n, p in untrusted[:3]]
        details["targets"] = [p.value for _, p in untrusted]
        if leaves_the_organisation([p for _, p in untrusted]):
            details["sensitivity"] = 1.0  # new and outside: it leaves the organisation
    if named:
        details["provenance"] = [p.to_json() for _, p in named]
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
            evidence=_evidence(obs, [p for _, p in untrusted]),
            details=details,
        )
    ]


def _unintended(argument: str, seen: Provenance, tool: str) -> str:
    """Why one target of a call deviates, and where its value came from."""
    if seen.origin is Origin.DECLARED_ELSEWHERE:
        what = f"is not a target the task declared for `{tool}`"
    else:
        what = "is not a target the task declared"
    return f"{argument} `{seen.value}` {what} ({seen.describe()})"


def _evidence(obs: Observation, untrusted: list[Provenance]) -> tuple[str, ...]:
    """The call itself, then the calls whose output introduced its untrusted targets."""
    refs = [obs.ref] + [p.ref for p in untrusted if p.ref is not None]
    refs += [ref for p in untrusted for ref, _ in p.echoed_by]
    return tuple(dict.fromkeys(refs))
