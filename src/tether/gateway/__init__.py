"""``tether gateway mcp``: an MCP proxy that puts tether in the path of every tool call.

The agent presents its task token as ``Authorization: Bearer``; each ``tools/call``,
``resources/read`` and ``prompts/get`` is one recorded tether decision, asked through a
:class:`GatewayDecider` (:class:`LocalDecider` in process); ``tools/list`` shows only
what the identity may call; obligations of a ``constrain`` are applied to the result.
"""

from tether.gateway._calls import (
    ARGUMENT_MISSING,
    ArgumentProblem,
    GatewayDecision,
    ToolCall,
    decision_body,
)
from tether.gateway._decider import Bearer, GatewayDecider
from tether.gateway._local import LocalDecider, permitted_actions

__all__ = [
    "ARGUMENT_MISSING",
    "ArgumentProblem",
    "Bearer",
    "GatewayDecider",
    "GatewayDecision",
    "LocalDecider",
    "ToolCall",
    "decision_body",
    "permitted_actions",
]
