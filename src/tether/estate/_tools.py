"""Reader of the estate section ``tools``: how an agent tool's arguments map to a decision.

A PEP in front of agent tools (``tether gateway mcp``, ``@guarded``) decides each call
with action = the tool name. The section says, per tool, which argument names the
resource (and its entity type), which arguments are destinations (recipients, URLs,
IBANs: where the call sends something, each with a type) and the data class of the
result::

    tools:
      send_email:
        resource: {argument: to, type: email}
        destinations: {to: email, cc: email}
        data_class: internal

Tools the section does not name are decided on the tool name alone.
"""

from __future__ import annotations

import re

from tether.estate._fields import Fields, expect_map
from tether.estate._model import Where
from tether.estate._patterns import type_name_problem
from tether.estate._sections import MAX_NAME, LoadContext
from tether.estate._yaml import Node
from tether.estate.compiled import ToolMapping

# MCP tool names (SEP-986): 1 to 128 of letters, digits, `_`, `-`, `.` and `/`.
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,128}$")
_ARGUMENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.-]{0,127}$")


def read_tools(node: Node, ctx: LoadContext) -> None:
    if not expect_map(node, ctx.problems, "`tools`"):
        return
    for name, body in node.items():
        at = Where(node.file, node.key_line(name))
        if not _TOOL_NAME.match(name):
            ctx.problems.add(
                at, f"tool name `{name}` may only hold letters, digits, `_-./` (1 to 128)"
            )
            continue
        if not ctx.claim("tool", name, at):
            continue
        if body.value is None:  # `tool_name:` alone: decided on its name, declared as known
            ctx.tools[name] = ToolMapping(name)
            continue
        if not expect_map(body, ctx.problems, f"tool `{name}`"):
            continue
        fields = Fields(
            body,
            ctx.problems,
            what=f"tool `{name}`",
            optional=["resource", "destinations", "data_class", "description"],
        )
        argument, resource_type = _resource(fields, name, ctx)
        destinations = _destinations(fields, name, ctx)
        data_class = (
            ctx.reference(fields, "data_class", "data class", MAX_NAME)
            if fields.has("data_class")
            else None
        )
        fields.string("description")
        if fields.ok:
            ctx.tools[name] = ToolMapping(name, argument, resource_type, destinations, data_class)


def _resource(fields: Fields, tool: str, ctx: LoadContext) -> tuple[str | None, str | None]:
    node = fields.get("resource")
    if node is None:
        return None, None
    what = f"`resource` of tool `{tool}`"
    if not node.is_map:
        fields.fail("resource", f"{what} must be a mapping like `{{argument: to, type: email}}`")
        return None, None
    inner = Fields(node, ctx.problems, what=what, required=["argument", "type"])
    argument = _argument_name(inner, "argument")
    resource_type = inner.string("type", max_length=MAX_NAME)
    if resource_type is not None and (problem := type_name_problem(resource_type)):
        inner.fail("type", problem)
    if not inner.ok:
        fields.ok = False
        return None, None
    return argument, resource_type


def _destinations(fields: Fields, tool: str, ctx: LoadContext) -> dict[str, str]:
    node = fields.get("destinations")
    if node is None or node.value is None:
        return {}
    what = f"`destinations` of tool `{tool}`"
    if not node.is_map:
        fields.fail("destinations", f"{what} must map argument names to types (`{{to: email}}`)")
        return {}
    found: dict[str, str] = {}
    for argument, value in node.items():
        line = node.key_line(argument)
        if not _ARGUMENT.match(argument):
            ctx.problems.add(node, f"{what}: `{argument}` is not an argument name", line)
            fields.ok = False
        elif not isinstance(value.value, str) or value.is_map or value.is_seq:
            ctx.problems.add(value, f"{what}: the type of `{argument}` must be a string")
            fields.ok = False
        elif problem := type_name_problem(value.value):
            ctx.problems.add(value, f"{what}: {problem}")
            fields.ok = False
        else:
            found[argument] = value.value
    return found


def _argument_name(fields: Fields, key: str) -> str | None:
    name = fields.string(key, max_length=128)
    if name is not None and not _ARGUMENT.match(name):
        fields.fail(key, f"`{name}` is not an argument name (letters, digits, `_$.-`)")
        return None
    return name
