"""A small MCP server (official ``mcp`` SDK) for the gateway example: invoices, email,
payments. It knows nothing of tether; the gateway in front of it governs every call.

Run: ``python invoice_server.py PORT`` (streamable HTTP on 127.0.0.1:PORT/mcp). Each call
it receives is printed, so the demo shows which calls reached it.
"""

from __future__ import annotations

import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("invoices")


def _received(tool: str, **arguments: Any) -> None:
    print(f"invoice server: {tool} {arguments}", flush=True)


@server.tool()
def read_invoice(invoice_id: str) -> dict[str, Any]:
    """One invoice: amount, bank account, the customer's contact."""
    _received("read_invoice", invoice_id=invoice_id)
    return {
        "id": invoice_id,
        "amount": 120,
        "iban": "DE89370400440532013000",
        "contact": "ap@example.org",
    }


@server.tool()
def send_email(to: str, body: str) -> str:
    """Send one email."""
    _received("send_email", to=to)
    return f"sent to {to}"


@server.tool()
def pay_invoice(invoice_id: str, account: str) -> str:
    """Pay an invoice to an account."""
    _received("pay_invoice", invoice_id=invoice_id, account=account)
    return f"paid {invoice_id} to {account}"


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
