"""``tether serve``: the HTTP service (AuthZEN, /v1, metrics) on uvicorn."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from tether.cli.common import DbOption, settings_for
from tether.cli.output import EXIT_BAD_INPUT, console, errors_to_exit, fail


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8080,
    db: DbOption = None,
    estate: Annotated[
        Path | None, typer.Option(help="apply this estate folder before serving")
    ] = None,
    flush_interval_ms: Annotated[
        int | None, typer.Option(help="decision log flush interval")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
) -> None:
    """Serve tether over HTTP (binds 127.0.0.1 unless told otherwise)."""
    import uvicorn

    from tether.api.app import create_app
    from tether.estate import apply_estate
    from tether.services import Tether

    if not _is_loopback(host) and not (tls_cert and tls_key):
        fail(
            f"refusing to serve on non-loopback address `{host}` without TLS; "
            "pass --tls-cert and --tls-key",
            EXIT_BAD_INPUT,
        )
    scheme = "https" if tls_cert else "http"
    with errors_to_exit():
        settings = settings_for(
            db,
            host=host,
            port=port,
            flush_interval_ms=flush_interval_ms,
        )
        if not settings.issuer:
            settings = settings.with_overrides(issuer=f"{scheme}://{host}:{port}")
        tether = Tether(settings)
        if estate is not None:
            result = apply_estate(tether.engine, estate, actor="serve")
            tether.reload()
            state = f"revision {result.revision}" + (" (new)" if result.changed else " (unchanged)")
            console.print(f"estate [bold]{estate}[/] applied: {state}")
    console.print(
        f"tether listening on [bold]{scheme}://{host}:{port}[/]  "
        f"(store {tether.engine.url.render_as_string(hide_password=True)})",
        highlight=False,
    )
    uvicorn.run(
        create_app(tether),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_graceful_shutdown=10,
    )
