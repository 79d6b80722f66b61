"""The ``tether`` command line: one module per command group, all calling the same core."""

from __future__ import annotations

import typer

from tether.cli import check as check_cmd
from tether.cli import estate, inventory, serve

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


@app.command()
def bench(quick: bool = typer.Option(False, "--quick", help="shorter runs")) -> None:
    """Run the benchmarks in bench/ (decisions/s against peers)."""
    from tether.cli.bench import bench_command

    raise SystemExit(bench_command(quick))


def main() -> None:
    app()
