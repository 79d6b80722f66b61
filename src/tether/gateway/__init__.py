"""``tether gateway mcp``: an MCP proxy that puts tether in the path of every tool call.

The agent presents its task token as ``Authorization: Bearer``; each ``tools/call``,
``resources/read`` and ``prompts/get`` is one recorded tether decision, asked through a
:class:`GatewayDecider` (:class:`LocalDecider` in process, :class:`RemoteDecider`
over HTTP); ``tools/list`` shows only
what the identity may call; obligations of a ``constrain`` are applied to the result.
"""

from tether.gateway._calls import (
    ARGUMENT_MISSING,
    TOOL_CALL,
    TOOL_TYPE,
    ArgumentProblem,
    GatewayDecision,
    ToolCall,
    decision_body,
)
from tether.gateway._decider import Bearer, DeciderUnavailable, GatewayDecider
from tether.gateway._local import LocalDecider
from tether.gateway._remote import RemoteDecider

__all__ = [
    "ARGUMENT_MISSING",
    "TOOL_CALL",
    "TOOL_TYPE",
    "ArgumentProblem",
    "Bearer",
    "DeciderUnavailable",
    "GatewayDecider",
    "GatewayDecision",
    "LocalDecider",
    "RemoteDecider",
    "ToolCall",
    "decision_body",
]
