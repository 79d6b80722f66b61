"""``tether serve``: the HTTP service (AuthZEN, /v1, metrics) on uvicorn."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

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
    client_ca: Annotated[
        Path | None,
        typer.Option(
            help="CA bundle (PEM) that client certificates (X.509-SVIDs) must chain to: mTLS"
        ),
    ] = None,
    require_client_cert: Annotated[
        bool,
        typer.Option(help="refuse TLS connections without a client certificate"),
    ] = False,
    background_work: Annotated[
        str | None,
        typer.Option(
            help=(
                "where decisions are committed and drift detection runs: `process` (a worker "
                "process beside the server) or `thread` (default: $TETHER_BACKGROUND_WORK, "
                "else process)"
            ),
            show_default=False,
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            help=(
                "publish decisions and ingested events to this NATS JetStream server "
                "(nats://HOST:PORT) and leave drift detection to `tether worker`s"
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve tether over HTTP (binds 127.0.0.1 unless told otherwise).

    On a fresh store bound to loopback, the first start makes a PEP key (`local-pep`) and
    an admin (`local-admin`) and prints the key and an admin token once.
    """
    from tether.api.server import TlsFiles
    from tether.api.server import serve as run_server
    from tether.callers import bootstrap
    from tether.estate import apply_estate
    from tether.services import Tether
    from tether.web import create_app

    if bool(tls_cert) != bool(tls_key):
        fail("--tls-cert and --tls-key go together", EXIT_BAD_INPUT)
    loopback = _is_loopback(host)
    if not loopback and not (tls_cert and tls_key):
        fail(
            f"refusing to serve on non-loopback address `{host}` without TLS; "
            "pass --tls-cert and --tls-key",
            EXIT_BAD_INPUT,
        )
    if (client_ca or require_client_cert) and not (tls_cert and tls_key):
        fail("--client-ca and --require-client-cert need --tls-cert and --tls-key", EXIT_BAD_INPUT)
    if require_client_cert and not client_ca:
        fail("--require-client-cert needs --client-ca (the CA bundle to verify with)")
    scheme = "https" if tls_cert else "http"
    with errors_to_exit():
        settings = settings_for(
            db,
            host=host,
            port=port,
            flush_interval_ms=flush_interval_ms,
            client_ca_file=str(client_ca) if client_ca else None,
            background_work=background_work
            or (None if os.environ.get("TETHER_BACKGROUND_WORK") else "process"),
            events_url=events,
        )
        if not settings.issuer:
            settings = settings.with_overrides(issuer=f"{scheme}://{host}:{port}")
        tether = Tether(settings)
        if estate is not None:
            result = apply_estate(tether.engine, estate, actor="serve")
            tether.reload()
            state = f"revision {result.revision}" + (" (new)" if result.changed else " (unchanged)")
            console.print(f"estate [bold]{estate}[/] applied: {state}")
        made = (
            bootstrap(tether.engine, tether.keys, issuer=settings.public_url) if loopback else None
        )
    if made is not None and (made.pep or made.admin):
        console.print(
            "[bold]first start on this store:[/] made these callers; the secrets are shown "
            "[bold]once[/], keep them:",
            highlight=False,
        )
        if made.pep:
            console.print(
                f"  PEP key of [bold]{made.pep.identity_id}[/] (role pep; send "
                "`Authorization: Bearer <key>`):",
                highlight=False,
            )
            console.print(f"    {made.pep.key}", highlight=False, markup=False, soft_wrap=True)
        if made.admin:
            console.print(
                f"  admin token of [bold]{made.admin.user}[/] (role admin, expires "
                f"{made.admin.expires_at:%Y-%m-%d %H:%M} UTC; a new one: "
                f"`tether admin token --user {made.admin.user}`):",
                highlight=False,
            )
            console.print(f"    {made.admin.token}", highlight=False, markup=False, soft_wrap=True)
    else:
        console.print(
            "callers: `tether pep add NAME` prints a PEP key, "
            "`tether admin token --user NAME` an admin token",
            highlight=False,
        )
    console.print(
        f"dashboard: open {scheme}://{escape(host)}:{port}/ and sign in with an admin token "
        "(`.venv/bin/tether admin token --user alice`, or the one printed above)",
        highlight=False,
    )
    client_bundle = Path(settings.client_ca_file) if settings.client_ca_file else None
    tls = (
        TlsFiles(tls_cert, tls_key, client_bundle, require_client_cert)
        if tls_cert and tls_key
        else None
    )
    mtls = tls is not None and tls.client_ca is not None
    console.print(
        f"tether listening on [bold]{scheme}://{escape(host)}:{port}[/]  "
        f"(store {tether.engine.url.render_as_string(hide_password=True)})"
        + (f"  mTLS: client certificates verified against {client_bundle}" if mtls else ""),
        highlight=False,
    )
    run_server(create_app(tether), settings, tls=tls)
