"""The ``tether`` command line: one module per command group, all calling the same core."""

from __future__ import annotations

import typer

from tether.cli import approvals as approvals_cmd
from tether.cli import callers, estate, inventory, keys, retention, serve, tasks, tokens, trust
from tether.cli import check as check_cmd
from tether.cli import drift as drift_cmd
from tether.cli import eval as eval_cmd
from tether.cli import gateway as gateway_cmd
from tether.cli import lifecycle as lifecycle_cmd
from tether.cli import review as review_cmd
from tether.cli import signals as signals_cmd
from tether.cli import telemetry as telemetry_cmd
from tether.cli import worker as worker_cmd

app = typer.Typer(
    name="tether",
    help="Runtime governance for non-human identities.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(serve.serve)
app.command()(worker_cmd.worker)
app.command()(estate.init)
app.command()(estate.apply)
app.command()(check_cmd.check)
app.command()(inventory.decisions)
app.add_typer(inventory.identity_app, name="identity")
app.add_typer(tasks.task_app, name="task")
app.add_typer(tokens.token_app, name="token")
app.add_typer(trust.trust_app, name="trust")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(signals_cmd.signals_app, name="signals")
app.add_typer(callers.pep_app, name="pep")
app.add_typer(callers.admin_app, name="admin")
app.add_typer(approvals_cmd.approvals_app, name="approvals")
app.command()(telemetry_cmd.ingest)
app.command()(telemetry_cmd.paths)
app.add_typer(telemetry_cmd.audit_app, name="audit")
app.add_typer(retention.retention_app, name="retention")
app.add_typer(lifecycle_cmd.grants_app, name="grants")
app.command("metrics")(lifecycle_cmd.metrics)
app.add_typer(eval_cmd.eval_app, name="eval")
app.add_typer(gateway_cmd.gateway_app, name="gateway")
app.command()(review_cmd.review)
app.command()(drift_cmd.findings)
app.add_typer(drift_cmd.exceptions_app, name="exceptions")
app.add_typer(drift_cmd.drift_app, name="drift")


@app.command()
def bench(quick: bool = typer.Option(False, "--quick", help="shorter runs")) -> None:
    """Run the benchmarks in bench/ (decisions/s against peers)."""
    from tether.cli.bench import bench_command

    raise SystemExit(bench_command(quick))


def main() -> None:
    app()
