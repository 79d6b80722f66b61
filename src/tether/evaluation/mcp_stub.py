"""A stub MCP server (``mcp`` SDK, stdio) that answers recorded tool calls with their results.

``python -m tether.evaluation.mcp_stub SCRIPT`` serves the tools the script lists
(AgentDojo's ``<suite>_tools.json``: each suite's tool names) and answers each
``tools/call`` with the result the recorded run got. The script is JSON::

    {"tools": {"banking": ["send_money", ...], ...},
     "calls": [{"suite": "banking", "tool": "send_money", "arguments": {...},
                "result": "<the trace's tool message>"}, ...]}

Calls are answered in the script's order: a call is matched with the first call at or
after the last one answered that has its tool and arguments (calls tether refused never
reach the stub and are passed over). A call that matches nothing is an error result
naming it, so a replay cannot drift from its recording unseen.

An answer is what a tool server gives: the recorded text as one text block and, when
that text is a JSON or YAML document of records (how AgentDojo's tools answer: YAML
dumps of their return values), those records as ``structuredContent`` (a list wrapped
as ``{"result": [...]}``, as the SDK wraps one), with what JSON cannot say (dates)
dropped, as the offline replay's reading of the text drops it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from tether.drift.provenance import structured_text

#: How a tool of the stub takes its arguments: any JSON object (the recording decides).
ANY_OBJECT: Mapping[str, Any] = {"type": "object", "additionalProperties": True}


def _json_only(value: Any) -> Any:
    """``value`` with what JSON cannot hold (dates, sets...) as ``None``; keys as text."""
    if isinstance(value, Mapping):
        return {str(k): _json_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_only(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return None


def answer_of(result: str) -> types.CallToolResult:
    """The tool answer of a recorded result (see the module docstring)."""
    parsed = structured_text(result)
    structured: dict[str, Any] | None = None
    if isinstance(parsed, Mapping):
        structured = _json_only(parsed)
    elif isinstance(parsed, list):
        structured = {"result": _json_only(parsed)}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result)], structured_content=structured
    )


class Script:
    """The recorded calls, answered in order."""

    def __init__(self, tools: Mapping[str, Sequence[str]], calls: Sequence[Mapping[str, Any]]):
        self.tools = sorted({name for names in tools.values() for name in names})
        self.calls = list(calls)
        self.next = 0

    @classmethod
    def load(cls, path: Path) -> Script:
        document = json.loads(path.read_text(encoding="utf-8"))
        return cls(document["tools"], document["calls"])

    def answer(self, tool: str, arguments: Mapping[str, Any]) -> types.CallToolResult:
        for index in range(self.next, len(self.calls)):
            call = self.calls[index]
            if call["tool"] == tool and call["arguments"] == dict(arguments):
                self.next = index + 1
                return answer_of(str(call["result"]))
        shown = json.dumps(dict(arguments), sort_keys=True)[:200]
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=f"no recorded call {tool} {shown}")],
            is_error=True,
        )


def server(script: Script) -> Server[Any]:
    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[types.Tool(name=name, input_schema=dict(ANY_OBJECT)) for name in script.tools]
        )

    async def call_tool(
        _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return script.answer(params.name, params.arguments or {})

    return Server("agentdojo-stub", on_list_tools=list_tools, on_call_tool=call_tool)


async def _serve(script: Script) -> None:
    stub = server(script)
    async with stdio_server() as (read, write):
        await stub.run(read, write, stub.create_initialization_options())


if __name__ == "__main__":
    anyio.run(_serve, Script.load(Path(sys.argv[1])))
