"""``tool_chain``: how an agent strings its tools together within one task.

Three things an agent chaining tools can show (DESIGN "Drift: benign vs dangerous"):

- **chain depth**: a call made from a call made from a call (``parent_call_id``)
  deeper than :data:`MAX_CHAIN_DEPTH`;
- **unseen transitions**: ``previous tool -> this tool`` never observed in the
  identity's baseline (only judged when a baseline has been learned);
- **sensitive-source -> external-sink flows**: earlier in the task the identity read
  something sensitive (a :attr:`ToolRole.SOURCE` tool, or data of a sensitive class),
  and now a sink sends data or value out to a target that is *new*: one the task's
  intent does not declare or, without declared targets, one the baseline never saw.
  Read a secret, then pay a new recipient: the shape of an exfiltration or a hijacked
  payment, whatever identifiers the attacker used. When the task's results are known
  (:mod:`tether.drift.provenance`), a target the user named or a covered call returned
  as a record field is not new, and the others weigh as their origin says.
"""

from __future__ import annotations

from collections.abc import Callable

from tether.drift.catalog import normalise_target, target_values
from tether.drift.detectors.out_of_intent import (
    destinations,
    intended_targets,
    leaves_the_organisation,
)
from tether.drift.model import DetectionContext, Observation, Signal, ToolRole

NAME = "tool_chain"

#: Deepest parent -> child chain that is ordinary for an agent.
MAX_CHAIN_DEPTH = 3
#: Sensitivity level (of the estate's scale) from which data read counts as sensitive.
SENSITIVE_LEVEL = 3
FLOW_DEVIATION = 1.0
#: A flow to a target that nothing (no intent, no baseline) lets us call new or known.
UNJUDGED_FLOW_DEVIATION = 0.4
TRANSITION_DEVIATION = 0.3


def _tool(obs: Observation) -> str:
    return obs.tool_name or obs.action


def chain_depth(obs: Observation, history: list[Observation]) -> int:
    """How many ancestors ``obs`` has through ``parent_call_id`` (0: a top-level call)."""
    if not obs.parent_call_id:
        return 0
    parents = {h.call_id: h.parent_call_id for h in history if h.call_id}
    depth, seen = 0, set()
    parent: str | None = obs.parent_call_id
    while parent and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = parents.get(parent)
    return depth


def _sensitive_source(obs: Observation, ctx: DetectionContext) -> bool:
    return (
        ctx.catalog.info(_tool(obs)).role is ToolRole.SOURCE or obs.sensitivity >= SENSITIVE_LEVEL
    )


def _as_resources(obs: Observation, value: str) -> set[str]:
    """How a target value may appear as a learned resource: bare, typed, or as ``obs.resource``."""
    names = {value, normalise_target(value)}
    if obs.resource_type:
        names |= {f"{obs.resource_type}:{n}" for n in tuple(names)}
    if obs.resource and normalise_target(value) in obs.resource.lower():
        names.add(obs.resource)
    return names


def _flow(
    obs: Observation, ctx: DetectionContext, history: Callable[[], list[Observation]]
) -> Signal | None:
    info = ctx.catalog.info(_tool(obs))
    if info.role is not ToolRole.SINK:
        return None
    targets = target_values(info, obs.arguments)
    if not targets:
        return None
    sources = [h for h in history() if _sensitive_source(h, ctx)]
    if not sources:
        return None
    intended = intended_targets(ctx.task, ctx.catalog) if ctx.task is not None else None
    provenance: list[dict[str, object]] = []
    external = False
    if intended is not None and (intended or ctx.record is not None):
        traced = [p for _, p in destinations(obs, ctx, intended)]
        untrusted = [p for p in traced if p.weight > 0]
        new = [p.value for p in untrusted]
        deviation = FLOW_DEVIATION * max((p.weight for p in untrusted), default=0.0)
        provenance = [p.to_json() for p in traced]
        external = leaves_the_organisation(untrusted)
    elif ctx.baseline is not None and ctx.baseline.observations > 0:
        baseline = ctx.baseline
        new = [
            v
            for _, v in targets
            if not any(baseline.seen("resource", r) for r in _as_resources(obs, v))
        ]
        deviation = FLOW_DEVIATION
    else:
        new = [v for _, v in targets]
        deviation = UNJUDGED_FLOW_DEVIATION
    if not new:
        return None
    source = sources[-1]
    top = max(ctx.data_classes.values(), default=0) or 4
    shown = ", ".join(f"`{v}`" for v in new[:3])
    return Signal(
        detector=NAME,
        deviation=deviation,
        reason=(
            f"sensitive read `{_tool(source)}` followed by sink `{_tool(obs)}` "
            f"to new target {shown}"
        ),
        evidence=(obs.ref, source.ref),
        details={
            "flow": [_tool(source), _tool(obs)],
            "targets": new,
            "sink": True,
            "sensitivity": 1.0 if external else min(1.0, max(0.5, source.sensitivity / top)),
            **({"provenance": provenance} if provenance else {}),
            **({"external": True} if external else {}),
        },
    )


def _earlier(obs: Observation, ctx: DetectionContext) -> list[Observation]:
    """What the identity did before ``obs`` (in its task, when it has one)."""
    history = [h for h in ctx.history if h.ref != obs.ref]
    if obs.task_id is not None:
        history = [h for h in history if h.task_id == obs.task_id]
    return history


def detect(obs: Observation, ctx: DetectionContext) -> list[Signal]:
    # The history is filtered only when a check needs it: most calls are no sink, have
    # no parent call and, while learning, no baseline (detection runs on every event).
    earlier: list[list[Observation]] = []

    def history() -> list[Observation]:
        if not earlier:
            earlier.append(_earlier(obs, ctx))
        return earlier[0]

    signals: list[Signal] = []
    flow = _flow(obs, ctx, history)
    if flow is not None:
        signals.append(flow)
    depth = chain_depth(obs, history()) if obs.parent_call_id else 0
    if depth > MAX_CHAIN_DEPTH:
        signals.append(
            Signal(
                detector=NAME,
                deviation=min(1.0, 0.2 * (depth - MAX_CHAIN_DEPTH) + 0.3),
                reason=f"tool chain depth {depth} exceeds {MAX_CHAIN_DEPTH}",
                evidence=(obs.ref,),
                details={"depth": depth},
            )
        )
    if ctx.baseline is not None and ctx.baseline.observations > 0 and history():
        last = history()[-1]
        transition = f"{_tool(last)}->{_tool(obs)}"
        if not ctx.baseline.seen("transition", transition):
            signals.append(
                Signal(
                    detector=NAME,
                    deviation=TRANSITION_DEVIATION,
                    reason=f"transition `{transition}` never seen in the baseline",
                    evidence=(obs.ref, last.ref),
                    details={"transition": transition},
                )
            )
    return signals
