"""The ``tether`` command line: one module per command group, all calling the same core.

A command's module is imported only when that command runs (or its help is asked for):
the modules import the store, the policy engine, the HTTP server..., and ``tether --help``
or an ingest need a fraction of them. The top-level help lists every command from
:data:`COMMANDS` (name, where it lives, its one-line help) without importing any;
``tests/unit/cli/test_cli_main.py`` keeps that table equal to the commands' own help.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

import typer
import typer.core
import typer.main

if TYPE_CHECKING:  # typer ships its own click; its types are not re-exported
    from typer._click import Command, Context, HelpFormatter


class LazyCommand(NamedTuple):
    """Where a command lives: ``module``'s ``attribute``, a function or a ``typer.Typer``."""

    module: str
    attribute: str
    help: str  # the first paragraph of the command's help, as `tether --help` lists it


# In the order `tether --help` lists them: commands, then command groups.
COMMANDS: dict[str, LazyCommand] = {
    "serve": LazyCommand(
        "tether.cli.serve",
        "serve",
        "Serve tether over HTTP (binds 127.0.0.1 unless told otherwise).",
    ),
    "worker": LazyCommand(
        "tether.cli.worker",
        "worker",
        "Run drift detection on the partitions of the event stream this worker holds.",
    ),
    "init": LazyCommand("tether.cli.estate", "init", "Create (or migrate) the store."),
    "apply": LazyCommand(
        "tether.cli.estate",
        "apply",
        "Validate and apply an estate folder atomically (all or nothing, idempotent).",
    ),
    "check": LazyCommand(
        "tether.cli.check",
        "check",
        "Ask for one decision. Exit 0 on allow/constrain, 1 on deny/approval_required.",
    ),
    "decisions": LazyCommand(
        "tether.cli.inventory", "decisions", "Recent decisions, newest first."
    ),
    "ingest": LazyCommand(
        "tether.cli.telemetry",
        "ingest",
        "Ingest audit logs into the event store (re-ingesting a file adds nothing).",
    ),
    "paths": LazyCommand(
        "tether.cli.paths",
        "paths",
        "The access path of an identity: proof → task → tokens → decisions and calls → resources.",
    ),
    "metrics": LazyCommand(
        "tether.cli.lifecycle",
        "metrics",
        "Excessive privilege and rotation beside the industry figures; keeps a snapshot.",
    ),
    "review": LazyCommand(
        "tether.cli.review",
        "review",
        "Review access: entitlements used and unused, activity outside, right-sized policy.",
    ),
    "findings": LazyCommand("tether.cli.drift", "findings", "Show drift findings, newest first."),
    "bench": LazyCommand(
        "tether.cli.bench", "bench", "Run the benchmarks in bench/ (decisions/s against peers)."
    ),
    # tether.cli.lifecycle adds `offboard` and `lifecycle` to tether.cli.inventory's group.
    "identity": LazyCommand("tether.cli.lifecycle", "identity_app", "The identity inventory."),
    "task": LazyCommand(
        "tether.cli.tasks", "task_app", "Tasks: purpose and intent, for a bounded time."
    ),
    "token": LazyCommand(
        "tether.cli.tokens", "token_app", "Task tokens: exchange, introspect, revoke."
    ),
    "trust": LazyCommand(
        "tether.cli.trust", "trust_app", "Trust anchors: SPIFFE trust domains, OIDC issuers."
    ),
    "keys": LazyCommand("tether.cli.keys", "keys_app", "tether's signing keys."),
    "signals": LazyCommand(
        "tether.cli.signals",
        "signals_app",
        "Shared Signals: CAEP Security Event Tokens and their receivers.",
    ),
    "pep": LazyCommand(
        "tether.cli.callers", "pep_app", "PEP API keys (legacy static secrets, inventoried)."
    ),
    "admin": LazyCommand("tether.cli.callers", "admin_app", "People who administer tether."),
    "approvals": LazyCommand(
        "tether.cli.approvals",
        "approvals_app",
        "Human approvals of high-impact actions (outcome approval_required).",
    ),
    "audit": LazyCommand("tether.cli.audit", "audit_app", "The tamper-evident audit chain."),
    "retention": LazyCommand(
        "tether.cli.retention", "retention_app", "Retention of telemetry events."
    ),
    "grants": LazyCommand(
        "tether.cli.lifecycle", "grants_app", "Third-party OAuth grants: inventory and scope use."
    ),
    "eval": LazyCommand(
        "tether.cli.eval", "eval_app", "Backtest drift detection on recorded agent traces."
    ),
    "gateway": LazyCommand(
        "tether.cli.gateway", "gateway_app", "Gateways that put tether in an agent's path."
    ),
    "exceptions": LazyCommand(
        "tether.cli.drift",
        "exceptions_app",
        "Drift exceptions: owned, justified, scoped, expiring.",
    ),
    "drift": LazyCommand(
        "tether.cli.drift", "drift_app", "Drift detection: batch scans and baselines."
    ),
}


def load_command(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """The click command ``tether <name>`` runs, its module imported now."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name)(target)
    command = typer.main.get_command(single)
    assert isinstance(command, typer.core.TyperCommand)  # one command, no callback
    return command


class _Placeholder(typer.core.TyperCommand):
    """A command's name and one-line help, for the listing of ``tether --help``."""


class LazyGroup(typer.core.TyperGroup):
    """The ``tether`` group: each command is loaded (:func:`load_command`) when resolved."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, _Placeholder(name, help=entry.help))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Placeholder) and not self._listing:
            command = self.commands[cmd_name] = load_command(cmd_name)
        return command

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True  # the listing needs names and one-line helps only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="tether",
    help="Runtime governance for non-human identities.",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _tether() -> None:
    # A group needs a callback or a command; the commands are COMMANDS, added by LazyGroup.
    pass


def main() -> None:
    app()
