"""``tether gateway mcp``: the MCP gateway, governing every tool call of an agent.

``--db URL`` decides through a tether in this process (the store's estate, tasks and
revocations; decisions recorded and seen by live drift in a worker process beside it, as
``tether serve`` does, or in threads with ``--background-work thread``). ``--tether URL --key KEY``
asks a running ``tether serve`` instead, as a PEP (:class:`~tether.gateway.RemoteDecider`):
the decisions are that server's, recorded and seen by its drift.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from tether.cli.common import DbOption, settings_for
from tether.cli.output import EXIT_BAD_INPUT, console, errors_to_exit, fail
from tether.numerals import decimal

if TYPE_CHECKING:
    from tether.gateway import GatewayDecider
    from tether.services import Tether

#: Exit code when the remote tether cannot be reached at start.
EXIT_UNAVAILABLE = 3

gateway_app = typer.Typer(help="Gateways that put tether in an agent's path.", no_args_is_help=True)


def _listen(value: str) -> tuple[str, int]:
    host, colon, port = value.rpartition(":")
    number = decimal(port, low=1, high=65535)
    if not colon or not host or number is None:
        fail(
            f"--listen must look like HOST:PORT (e.g. 127.0.0.1:8765), got `{value}`",
            EXIT_BAD_INPUT,
        )
    return host.strip("[]"), number


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
    tether_url: Annotated[
        str | None,
        typer.Option("--tether", help="a running tether's URL, asked over HTTP (not with --db)"),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="TETHER_PEP_KEY", help="the PEP API key for --tether (`tpk_…`)"),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="how agents reach the gateway (default: http://HOST:PORT)"),
    ] = None,
    max_body: Annotated[
        int, typer.Option(help="largest request body accepted, in bytes")
    ] = 1_000_000,
    background_work: Annotated[
        str | None,
        typer.Option(
            help=(
                "with --db: where decisions are committed and drift detection runs: "
                "`process` (a worker process beside the gateway) or `thread` (default: "
                "$TETHER_BACKGROUND_WORK, else process)"
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve MCP at http://HOST:PORT/mcp in front of an upstream MCP server: each
    tools/call, resources/read and prompts/get is one tether decision made with the
    agent's task token (`Authorization: Bearer`)."""
    import uvicorn

    from tether.api.server import ConnectionLimits, http_protocol
    from tether.gateway._proxy import create_gateway_app
    from tether.gateway._upstream import UpstreamSpec

    host, port = _listen(listen)
    if tether_url is not None and db is not None:
        fail("give --db (tether in this process) or --tether (a tether server), not both")
    with errors_to_exit():
        spec = UpstreamSpec.parse(upstream, upstream_cmd)
        # As `tether serve`: committing and signing each decision row and running drift
        # in a worker process keeps that CPU off the gateway's event loop (and its GIL).
        settings = settings_for(
            db,
            background_work=background_work
            or (None if os.environ.get("TETHER_BACKGROUND_WORK") else "process"),
        )
    local: Tether | None = None
    if tether_url is None:
        local, decider, issuer = _in_process(settings)
        where = f"store {local.engine.url.render_as_string(hide_password=True)}"
    else:
        decider, issuer = _remote(tether_url, key)
        where = f"tether {tether_url}"
    base = public_url or f"http://{host}:{port}"
    app = create_gateway_app(
        decider, spec, public_url=base, issuer=issuer, max_body=max_body, host=host
    )
    console.print(
        f"tether gateway listening on [bold]{escape(base)}/mcp[/] for {escape(str(spec))}  "
        f"({escape(where)})",
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
        if local is not None:
            local.close()


def _in_process(settings: Any) -> tuple[Tether, GatewayDecider, str]:
    from tether.gateway import LocalDecider
    from tether.services import Tether

    with errors_to_exit():
        tether = Tether(settings)
    tether.start_background()
    return tether, LocalDecider(tether), settings.public_url


def _remote(url: str, key: str | None) -> tuple[GatewayDecider, str]:
    """A decider over the tether at ``url``, and its issuer (read from its OAuth metadata,
    which also proves it is reachable)."""
    import httpx

    from tether.callers.api_keys import parse_api_key
    from tether.gateway import RemoteDecider
    from tether.sdk import ApiKey, AsyncClient

    if not key:
        fail("--tether needs the gateway's PEP key: --key or TETHER_PEP_KEY (`tether pep add`)")
    if parse_api_key(key) is None:
        fail("--key must be a PEP API key (`tpk_<key id>_<secret>`, from `tether pep add`)")
    metadata_url = url.rstrip("/") + "/.well-known/oauth-authorization-server"
    try:
        answer = httpx.get(metadata_url, timeout=5)
        issuer = answer.json()["issuer"] if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        fail(f"tether at {url} cannot be reached: {exc}", EXIT_UNAVAILABLE)
    if not isinstance(issuer, str):
        fail(f"{metadata_url} answered {answer.status_code} without an issuer", EXIT_UNAVAILABLE)
    _check_key(url, key)
    return RemoteDecider(AsyncClient(url, credential=ApiKey(key))), issuer


def _check_key(url: str, key: str) -> None:
    """Refuse to start with a key tether refuses: every call would fail closed, forever."""
    import httpx

    try:
        answer = httpx.get(
            url.rstrip("/") + "/v1/tools", headers={"authorization": f"Bearer {key}"}, timeout=5
        )
    except httpx.HTTPError as exc:
        fail(f"tether at {url} cannot be reached: {exc}", EXIT_UNAVAILABLE)
    if answer.status_code in (401, 403):
        try:
            code = answer.json().get("error_code", answer.status_code)
        except ValueError:
            code = answer.status_code
        fail(f"tether at {url} refused the PEP key ({code}); check --key or TETHER_PEP_KEY")
    if answer.status_code != 200:
        fail(f"tether at {url} answered {answer.status_code} to GET /v1/tools", EXIT_UNAVAILABLE)
