"""The ``tether`` command line: one module per command group, all calling the same core."""

from __future__ import annotations

import typer

from tether.cli import callers, estate, inventory, keys, serve, tasks, tokens, trust
from tether.cli import check as check_cmd
from tether.cli import telemetry as telemetry_cmd

app = typer.Typer(
    name="tether",
    help="Runtime governance for non-human identities.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(serve.serve)
app.command()(estate.init)
app.command()(estate.apply)
app.command()(check_cmd.check)
app.command()(inventory.decisions)
app.add_typer(inventory.identity_app, name="identity")
app.add_typer(tasks.task_app, name="task")
app.add_typer(tokens.token_app, name="token")
app.add_typer(trust.trust_app, name="trust")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(callers.pep_app, name="pep")
app.add_typer(callers.admin_app, name="admin")
app.command()(telemetry_cmd.ingest)
app.command()(telemetry_cmd.paths)
app.add_typer(telemetry_cmd.audit_app, name="audit")


@app.command()
def bench(quick: bool = typer.Option(False, "--quick", help="shorter runs")) -> None:
    """Run the benchmarks in bench/ (decisions/s against peers)."""
    from tether.cli.bench import bench_command

    raise SystemExit(bench_command(quick))


def main() -> None:
    app()
