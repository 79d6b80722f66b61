"""``tether bench``: run the benchmark suite in ``bench/`` (a source checkout is needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from tether.cli.output import EXIT_BAD_INPUT, fail


def bench_command(quick: bool) -> int:
    """Run ``bench/run.py`` with this interpreter; return its exit code."""
    script = Path(__file__).resolve().parents[3] / "bench" / "run.py"
    if not script.is_file():
        fail(
            "the benchmarks live in the source checkout (`bench/run.py`); run from a clone",
            EXIT_BAD_INPUT,
        )
    command = [sys.executable, str(script), *(["--quick"] if quick else [])]
    return subprocess.call(command, cwd=script.parent.parent)  # noqa: S603 - our own script


def bench(quick: bool = typer.Option(False, "--quick", help="shorter runs")) -> None:
    """Run the benchmarks in bench/ (decisions/s against peers)."""
    raise SystemExit(bench_command(quick))
