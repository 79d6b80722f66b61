"""A small real MCP server (``mcp`` SDK) the gateway tests govern; it logs every call.

Run: ``python mcp_upstream.py PORT LOG`` (streamable HTTP on 127.0.0.1:PORT/mcp) or
``python mcp_upstream.py stdio LOG``. Each tool call appends ``<tool> <arguments JSON>``
to LOG *before* answering, so a test can prove which calls reached it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

LOG = Path(sys.argv[2])
server = MCPServer("invoices")


def _logged(tool: str, **arguments: Any) -> None:
    with LOG.open("a") as log:
        log.write(f"{tool} {json.dumps(arguments, sort_keys=True)}\n")


@server.tool()
def read_invoice(invoice_id: str) -> dict[str, Any]:
    """One invoice with its lines."""
    _logged("read_invoice", invoice_id=invoice_id)
    return {"id": invoice_id, "amount": 120, "iban": "DE00123", "lines": [1, 2, 3]}


@server.tool()
def list_customers(count: int) -> list[dict[str, Any]]:
    """Customers, with their tax ids."""
    _logged("list_customers", count=count)
    return [{"name": f"customer-{i}", "ssn": f"000-{i:04d}"} for i in range(count)]


@server.tool()
def send_email(to: str, body: str) -> str:
    """Send one email."""
    _logged("send_email", to=to, body=body)
    return f"sent to {to}"


@server.tool()
def pay_invoice(invoice_id: str, iban: str) -> str:
    """Pay an invoice to an account."""
    _logged("pay_invoice", invoice_id=invoice_id, iban=iban)
    return f"paid {invoice_id}"


@server.resource("invoice://{invoice_id}")
def invoice_document(invoice_id: str) -> str:
    """An invoice as a document."""
    _logged("invoice_document", invoice_id=invoice_id)
    return f"invoice {invoice_id}"


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run(transport="stdio")
    else:
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
