"""``tether`` loads a command's module only when it runs, and still lists every command."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import typer
import typer.main
from typer.testing import CliRunner

import tether.cli
from tether.cli.main import COMMANDS, app, load_command

# What the store, the policy engine, the HTTP edge and the service bring in.
HEAVY = ["sqlalchemy", "alembic", "cedarpy", "uvicorn", "httpx", "tether.services"]
_RUN = "from tether.cli.main import app\ntry:\n    app({args!r})\nexcept SystemExit:\n    pass"


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint('loaded:', *(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.splitlines()[-1].split()[1:]


def test_importing_the_cli_imports_no_heavy_module() -> None:
    assert _loaded_after("import tether.cli.main") == []


def test_the_help_imports_no_heavy_module() -> None:
    assert _loaded_after(_RUN.format(args=["--help"])) == []


def test_a_command_imports_what_it_needs() -> None:
    """The probe can fail: running a command does load its module and the store."""
    assert "sqlalchemy" in _loaded_after(_RUN.format(args=["audit", "--help"]))


def test_every_listed_help_is_the_commands_own() -> None:
    for name, entry in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        first_paragraph = (command.help or "").split("\n\n")[0].replace("\n", " ")
        assert entry.help == first_paragraph, name


def _eager_app() -> typer.Typer:
    """``tether`` as it was built before the table: every module imported, every command
    registered as typer registers it."""
    eager = typer.Typer(
        name="tether",
        help="Runtime governance for non-human identities.",
        no_args_is_help=True,
        add_completion=False,
    )
    for name, entry in COMMANDS.items():
        target = getattr(importlib.import_module(entry.module), entry.attribute)
        if isinstance(target, typer.Typer):
            eager.add_typer(target, name=name)
        else:
            eager.command(name)(target)
    return eager


def test_the_help_lists_what_typer_would() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["--help"], terminal_width=100)
    eager = runner.invoke(_eager_app(), ["--help"], terminal_width=100)
    assert listed.exit_code == eager.exit_code == 0
    assert listed.output == eager.output
    for name in COMMANDS:
        assert f" {name} " in listed.output


def test_every_command_group_of_the_cli_is_reachable() -> None:
    """A ``typer.Typer`` made in ``tether.cli`` but missing from the table fails here."""
    made: dict[int, str] = {}
    for module in pkgutil.iter_modules(tether.cli.__path__, "tether.cli."):
        if module.name == "tether.cli.__main__":  # runs the CLI
            continue
        for attribute, value in vars(importlib.import_module(module.name)).items():
            if isinstance(value, typer.Typer) and value is not app:
                made.setdefault(id(value), f"{module.name}.{attribute}")
    reachable: set[int] = set()
    pending = [
        target
        for entry in COMMANDS.values()
        if isinstance(
            target := getattr(importlib.import_module(entry.module), entry.attribute), typer.Typer
        )
    ]
    while pending:
        group = pending.pop()
        reachable.add(id(group))
        pending.extend(g.typer_instance for g in group.registered_groups if g.typer_instance)
    assert [made[i] for i in made if i not in reachable] == []
