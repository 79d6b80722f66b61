"""Provenance of a destination: where in a task's run the value an agent sends to entered it.

An agent that sends, pays, invites or fetches names a destination (a recipient, an IBAN,
a URL, a channel...). Whether that destination is legitimate depends less on the value
than on where the agent got it from. For each value this module answers one
:class:`Origin`, most trusted first:

- ``intent``: the task declared it (its intended calls or an exact intent resource);
- ``declared_elsewhere``: the task declared it, but for other calls: the task's intended
  calls of this very tool name other destinations (the landlord's account declared for
  the standing order, used for a new payment). Said by the detector that knows the call
  (:func:`tether.drift.detectors.out_of_intent.destinations`), never by :func:`trace`;
  the user's words do not excuse it, since the declared call is what they were for;
- ``prompt``: the task's purpose, the user's own words, names it;
- ``covered_record``: a call the task's intent covers returned it as a whole field of a
  record (the payee of a listed transaction, a contact's address): data the user asked for;
- ``reworded``: the purpose or the intent holds it only reworded (see below), and no result
  holds it as written: the user's value, retyped (weighed as a made-up one);
- ``covered_text``: a covered call returned it only inside free text (a message body, a
  web page, a file's prose, a transaction's subject): content someone else wrote, the
  channel indirect prompt injection comes through (OWASP LLM01, ASI01);
- ``uncovered_result``: a call outside the intent returned it (text the agent merely read);
- ``unsourced``: no input of the run holds it, not even reworded (not the purpose, not the
  intent, not any result): the agent made it up. A mistake to look at, not the mark of an
  injection: an attacker must put the destination in front of the agent, and the only
  channel an attacker controls is a result;
- ``unknown``: some earlier call's result was never reported, so nothing can be said.

A value found in no result as written is looked for reworded
(:class:`~tether.drift.rewording.Rewordings`: other spacing, hyphens or case, a URL's host,
an address inside a display name...) before it is called ``unsourced``. Found so in a
result, it takes that result's origin (free text, unless it equals a whole record field
reworded); only a value nothing holds, in any of these forms, is made up.

Where the estate declares its ``organisation:``, a destination inside it weighs
:data:`INTERNAL_WEIGHT` of what its origin says (a colleague's address, an own account),
and one outside it raises the finding's sensitivity (data or value leaving the
organisation).

Values are compared after :func:`~tether.drift.catalog.normalise_target`; in free text a
value must stand on its own (not inside a longer run of letters, digits and ``_``). A result is
read as structured data when it parses as JSON or YAML (both are how tools answer);
otherwise all of it is text, unless the value is the whole result. The rules name kinds
of data, never a tool, a task or a value of some data set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml

from tether.drift.catalog import normalise_target
from tether.drift.rewording import Rewordings

#: Longest result read for provenance (characters): beyond it, the rest is not searched.
MAX_RESULT_CHARS = 256_000
#: Longest result parsed as YAML (beyond it, JSON or text only).
MAX_YAML_CHARS = 64_000
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Deepest nesting of a result walked for record fields.
_MAX_DEPTH = 32


class Origin(StrEnum):
    INTENT = "intent"
    DECLARED_ELSEWHERE = "declared_elsewhere"
    PROMPT = "prompt"
    COVERED_RECORD = "covered_record"
    REWORDED = "reworded"
    COVERED_TEXT = "covered_text"
    UNCOVERED_RESULT = "uncovered_result"
    UNSOURCED = "unsourced"
    UNKNOWN = "unknown"


#: How much a destination of each origin counts towards a deviation (0: legitimate).
ORIGIN_WEIGHT: Mapping[Origin, float] = {
    Origin.INTENT: 0.0,
    # A crossed wire: a known party, an undeclared use of it (a sink call towards it is
    # high, a change is low).
    Origin.DECLARED_ELSEWHERE: 0.75,
    Origin.PROMPT: 0.0,
    Origin.COVERED_RECORD: 0.25,
    # The user's value retyped, not as they wrote it (as much as a made-up one).
    Origin.REWORDED: 0.5,
    Origin.COVERED_TEXT: 1.0,
    Origin.UNCOVERED_RESULT: 1.0,
    # Made up by the agent: a mistake to look at, not the mark of an injection (an attacker
    # must put the value in front of the agent, in some result).
    Origin.UNSOURCED: 0.5,
    Origin.UNKNOWN: 1.0,
}
#: How much of its origin's weight a destination inside the organisation keeps.
INTERNAL_WEIGHT = 0.5
#: Origins that make a destination legitimate for the flow and intent detectors.
TRUSTED = frozenset({Origin.INTENT, Origin.PROMPT, Origin.COVERED_RECORD})
_ORDER = {origin: rank for rank, origin in enumerate(Origin)}


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What one call of a task returned, as provenance reads it.

    ``ref`` is the call's observation (``decision:<id>``); ``fields`` the normalised whole
    scalar values of the result's records; ``text`` the result as lowercase text.
    """

    ref: str
    tool: str
    covered: bool
    fields: frozenset[str]
    text: str


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one destination value entered the run; ``ref``/``tool``: the call that
    returned it (for origins that come from a result)."""

    value: str
    origin: Origin
    ref: str | None = None
    tool: str | None = None
    internal: bool | None = None  # inside the organisation (None: no organisation declared)
    # declared_elsewhere: the tools the intent declared it for, and this tool's declared
    # destinations.
    declared_for: tuple[str, ...] = ()
    declared_here: tuple[str, ...] = ()
    # Calls (ref, tool) whose free text also names the value: someone else's words naming
    # a known party (shown for declared_elsewhere, where an injection would leave them).
    echoed_by: tuple[tuple[str, str], ...] = ()

    @property
    def weight(self) -> float:
        weight = ORIGIN_WEIGHT[self.origin]
        return weight * INTERNAL_WEIGHT if self.internal else weight

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"value": self.value, "origin": self.origin.value}
        if self.internal is not None:
            shown["internal"] = self.internal
        if self.ref is not None:
            shown |= {"introduced_by": self.ref, "tool": self.tool}
        if self.origin is Origin.DECLARED_ELSEWHERE:
            shown |= {
                "declared_for": list(self.declared_for),
                "declared_for_this_tool": list(self.declared_here),
            }
        if self.echoed_by:
            shown["also_in_free_text_of"] = [{"ref": r, "tool": t} for r, t in self.echoed_by]
        return shown

    def describe(self) -> str:
        """A short phrase for a finding's reason: where the value came from."""
        match self.origin:
            case Origin.INTENT:
                return "declared in the task's intent"
            case Origin.DECLARED_ELSEWHERE:
                where = ", ".join(f"`{t}`" for t in self.declared_for) or "its resources"
                here = ", ".join(f"`{v}`" for v in self.declared_here[:3])
                said = (
                    f"the intent declares it for {where}; this tool's intended calls go to {here}"
                )
                echoes = ", ".join(f"`{t}` ({r})" for r, t in self.echoed_by[:3])
                return f"{said}; also named in free text returned by {echoes}" if echoes else said
            case Origin.PROMPT:
                return "named in the task's purpose"
            case Origin.COVERED_RECORD:
                return f"a record field returned by `{self.tool}` ({self.ref})"
            case Origin.COVERED_TEXT:
                return f"free text returned by `{self.tool}` ({self.ref})"
            case Origin.UNCOVERED_RESULT:
                return f"the result of `{self.tool}` ({self.ref}), a call outside the intent"
            case Origin.REWORDED:
                return "not in the task's purpose or intent as written, only reworded"
            case Origin.UNSOURCED:
                return (
                    "introduced by no input of the run (not the purpose, the intent or any "
                    "result, not even reworded): made up by the agent"
                )
            case _:
                return "origin unknown: earlier results were not reported"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What the run showed the agent before a call: its results so far, in order.

    ``complete`` is false when some earlier permitted call's result was never reported
    (then a value found nowhere is ``unknown``, not ``unsourced``).
    """

    outputs: tuple[ToolOutput, ...] = ()
    complete: bool = True


def _scalars(value: Any, depth: int = 0) -> list[str]:
    """The scalar values of a record, as text, in order (nested JSON text walked too)."""
    found: list[str] = []
    _collect(value, depth, found)
    return found


def _collect(value: Any, depth: int, found: list[str]) -> None:
    if depth > _MAX_DEPTH:
        return
    # A parsed JSON document holds only these exact types: told by `type` first, as every
    # result is walked (an ABC's `isinstance` costs more than the rest of a step).
    kind = type(value)
    if kind is dict:
        for item in value.values():
            _collect(item, depth + 1, found)
    elif kind is list:
        for item in value:
            _collect(item, depth + 1, found)
    elif kind is str:
        _collect_text(value, depth, found)
    elif kind is int or kind is float:
        found.append(str(value))
    elif value is None or kind is bool:
        return
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, depth + 1, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, depth + 1, found)
    elif isinstance(value, str):
        _collect_text(value, depth, found)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        found.append(str(value))


def _collect_text(value: str, depth: int, found: list[str]) -> None:
    # Only JSON inside a text field (an MCP text block): a field's prose read as YAML
    # would let its author dress a value up as a record field.
    nested = _json_document(value) if value[:1] in "{[" else None
    if isinstance(nested, Mapping | list):
        _collect(nested, depth + 1, found)
    else:
        found.append(value)


def _json_document(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def structured_text(text: str) -> Any:
    """The result as data: JSON, else YAML (how many tools answer; the C loader when
    present, and only up to :data:`MAX_YAML_CHARS`)."""
    found = _json_document(text)
    if found is not None or len(text) > MAX_YAML_CHARS:
        return found
    try:
        return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return None


def _tool_result(result: Mapping[str, Any]) -> tuple[Any, str] | None:
    """An MCP ``CallToolResult`` (``content`` blocks): its ``structuredContent`` (``None``
    when absent) and the text of its text blocks, in order; ``None`` for any other value."""
    content = result.get("content")
    if not isinstance(content, list):
        return None
    texts = [
        block["text"]
        for block in content
        if isinstance(block, Mapping) and isinstance(block.get("text"), str)
    ]
    return result.get("structuredContent"), "\n".join(texts)


def read_output(ref: str, tool: str, result: Any, *, covered: bool) -> ToolOutput:
    """A call's result (text, or already parsed JSON) as provenance reads it.

    An MCP ``CallToolResult`` is read as what the tool answered: the record fields of its
    structured content and of text blocks holding JSON (never YAML: a block may be prose
    someone else wrote), the whole text when it is no record, and its blocks' text as
    written (not JSON-escaped, so a value at a line's start still stands on its own)."""
    tool_result = _tool_result(result) if isinstance(result, Mapping) else None
    if tool_result is not None:
        structured, text = tool_result
        text = text[:MAX_RESULT_CHARS]
        found = _text_fields(text)
        if isinstance(structured, Mapping | list):
            found |= _record_fields(structured)
        elif not found and text.strip():
            found = {normalise_target(text)} - {""}  # a result that is the value itself
        return ToolOutput(ref, tool, covered, frozenset(found), text.lower())
    if isinstance(result, str):
        text = result[:MAX_RESULT_CHARS]
        parsed = structured_text(text)
    else:
        parsed = result
        text = json.dumps(result, ensure_ascii=False, default=str)[:MAX_RESULT_CHARS]
    fields: set[str] = set()
    if isinstance(parsed, Mapping | list):
        fields = _record_fields(parsed)
    elif text.strip():
        fields = {normalise_target(text)} - {""}  # a result that is the value itself
    return ToolOutput(ref, tool, covered, frozenset(fields), text.lower())


def _record_fields(parsed: Mapping[str, Any] | list[Any]) -> set[str]:
    """The normalised whole scalar values of a record (its text is not needed for them)."""
    fields = {normalise_target(s) for s in _scalars(parsed) if len(s) <= 512}
    fields.discard("")
    return fields


def _text_fields(text: str) -> set[str]:
    """The record fields of text blocks holding JSON (beside structured content)."""
    nested = _json_document(text) if text[:1] in "{[" else None
    if not isinstance(nested, Mapping | list):
        return set()
    return _record_fields(nested)


def mentions(text: str, value: str) -> bool:
    """Whether ``value`` (normalised) stands on its own somewhere in ``text`` (lowercase)."""
    if not value or value not in text:
        return False
    pattern = r"(?<![a-z0-9_])" + re.escape(value) + r"(?![a-z0-9_])"
    return re.search(pattern, text) is not None


def trace(
    value: str,
    *,
    intended: Container[str],
    purpose: str,
    record: RunRecord | None,
    declared: Iterable[str] = (),
) -> Provenance:
    """The most trusted origin ``value`` has in the run (see the module docstring).

    ``declared``: the intent's target values, looked through for ``value`` reworded
    (``intended`` answers only whether it holds ``value`` as written)."""
    target = normalise_target(value)
    if target in intended:
        return Provenance(value, Origin.INTENT)
    if mentions(purpose.lower(), target) or mentions(purpose.lower(), value.strip().lower()):
        return Provenance(value, Origin.PROMPT)
    if record is None:
        return Provenance(value, Origin.UNKNOWN)
    best = _best(value, record, lambda output: _origin_in(output, target))
    if best is not None:
        return best
    forms = Rewordings.of(value)
    best = _best(value, record, lambda output: _reworded_origin(forms, output))
    users = (purpose, *declared)
    # The user's words excuse a result's only where they spell the value out as whole
    # words; held in them any other way, it is still not made up.
    excusable = best is None or _ORDER[Origin.REWORDED] < _ORDER[best.origin]
    if excusable and any(forms.spelt_in(text) for text in users):
        return Provenance(value, Origin.REWORDED)
    if best is not None:
        return best
    if any(forms.found_in(text.lower()) for text in users):
        return Provenance(value, Origin.REWORDED)
    return Provenance(value, Origin.UNSOURCED if record.complete else Origin.UNKNOWN)


def _best(
    value: str, record: RunRecord, origin_in: Callable[[ToolOutput], Origin | None]
) -> Provenance | None:
    best: Provenance | None = None
    for output in record.outputs:
        found = origin_in(output)
        if found is not None and (best is None or _ORDER[found] < _ORDER[best.origin]):
            best = Provenance(value, found, output.ref, output.tool)
    return best


def _origin_in(output: ToolOutput, target: str) -> Origin | None:
    if target in output.fields:
        return Origin.COVERED_RECORD if output.covered else Origin.UNCOVERED_RESULT
    if mentions(output.text, target):
        return Origin.COVERED_TEXT if output.covered else Origin.UNCOVERED_RESULT
    return None


def _reworded_origin(forms: Rewordings, output: ToolOutput) -> Origin | None:
    """The origin a value has in ``output`` when it holds it reworded: a record's, when a
    whole field is the value reworded, else free text's."""
    if forms.equals_any(output.fields):
        return Origin.COVERED_RECORD if output.covered else Origin.UNCOVERED_RESULT
    if forms.found_in(output.text):
        return Origin.COVERED_TEXT if output.covered else Origin.UNCOVERED_RESULT
    return None


def echoes(value: str, record: RunRecord | None) -> tuple[tuple[str, str], ...]:
    """``(ref, tool)`` of each result that names ``value`` only inside its free text."""
    if record is None:
        return ()
    target = normalise_target(value)
    return tuple(
        (o.ref, o.tool)
        for o in record.outputs
        if target not in o.fields and mentions(o.text, target)
    )


def trace_all(
    values: Sequence[str],
    *,
    intended: Container[str],
    purpose: str,
    record: RunRecord | None,
    declared: Iterable[str] = (),
) -> list[Provenance]:
    return [
        trace(v, intended=intended, purpose=purpose, record=record, declared=declared)
        for v in values
    ]


__all__ = [
    "INTERNAL_WEIGHT",
    "MAX_RESULT_CHARS",
    "ORIGIN_WEIGHT",
    "TRUSTED",
    "Origin",
    "Provenance",
    "RunRecord",
    "ToolOutput",
    "echoes",
    "mentions",
    "read_output",
    "structured_text",
    "trace",
    "trace_all",
]
