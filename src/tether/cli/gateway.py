"""``tether gateway mcp``: the MCP gateway, governing every tool call of an agent.

``--db URL`` decides through a tether in this process (the store's estate, tasks and
revocations; decisions recorded and seen by live drift here). ``--tether URL`` (a
remote tether over ``tether.sdk``) is a later step.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import DbOption, settings_for
from tether.cli.output import EXIT_BAD_INPUT, console, errors_to_exit, fail

gateway_app = typer.Typer(help="Gateways that put tether in an agent's path.", no_args_is_help=True)


def _listen(value: str) -> tuple[str, int]:
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(
            f"--listen must look like HOST:PORT (e.g. 127.0.0.1:8765), got `{value}`",
            EXIT_BAD_INPUT,
        )
    return host.strip("[]"), int(port)


@gateway_app.command("mcp")
def mcp(
    listen: Annotated[str, typer.Option(help="HOST:PORT to serve MCP (streamable HTTP) on")],
    upstream: Annotated[
        str | None, typer.Option(help="the governed MCP server's streamable HTTP URL")
    ] = None,
    upstream_cmd: Annotated[
        str | None,
        typer.Option("--upstream-cmd", help="the governed MCP server as a command, over stdio"),
    ] = None,
    db: DbOption = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="how agents reach the gateway (default: http://HOST:PORT)"),
    ] = None,
    max_body: Annotated[
        int, typer.Option(help="largest request body accepted, in bytes")
    ] = 1_000_000,
) -> None:
    """Serve MCP at http://HOST:PORT/mcp in front of an upstream MCP server: each
    tools/call, resources/read and prompts/get is one tether decision made with the
    agent's task token (`Authorization: Bearer`)."""
    import uvicorn

    from tether.api.server import ConnectionLimits, http_protocol
    from tether.gateway import LocalDecider
    from tether.gateway._proxy import create_gateway_app
    from tether.gateway._upstream import UpstreamSpec
    from tether.services import Tether

    host, port = _listen(listen)
    with errors_to_exit():
        spec = UpstreamSpec.parse(upstream, upstream_cmd)
        settings = settings_for(db, background_work="thread")
        tether = Tether(settings)
    tether.start_background()
    base = public_url or f"http://{host}:{port}"
    app = create_gateway_app(
        LocalDecider(tether),
        spec,
        public_url=base,
        issuer=settings.public_url,
        max_body=max_body,
        host=host,
    )
    console.print(
        f"tether gateway listening on [bold]{escape(base)}/mcp[/] for {escape(str(spec))}  "
        f"(store {tether.engine.url.render_as_string(hide_password=True)})",
        highlight=False,
    )
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            # The server's connection caps, header/body timeouts and header limit.
            http=http_protocol(settings.max_header_bytes, ConnectionLimits.of(settings)),
            timeout_keep_alive=settings.keep_alive_s,
            log_level="warning",
            lifespan="on",
        )
    finally:
        tether.close()
