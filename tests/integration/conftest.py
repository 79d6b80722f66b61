"""Fixtures for integration tests: tiny estates on disk and real ``tether`` CLI runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EstateWriter = Callable[..., Path]
CliRunner = Callable[..., subprocess.CompletedProcess[str]]

READ_POLICY = '@id("allow-read")\npermit(principal, action == Action::"read", resource);\n'


def write_estate(folder: Path, *, policies: dict[str, str] | None = None, yaml: str = "") -> Path:
    """One ``user`` identity (alice) plus the policy files given (default: read allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    identities = """\
        identities:
          - id: alice
            kind: user
            owner: team-a
        """
    (folder / "estate.yaml").write_text(textwrap.dedent(identities) + yaml)
    policy_dir = folder / "policies"
    policy_dir.mkdir(exist_ok=True)
    for old in policy_dir.glob("*.cedar"):
        old.unlink()
    for name, text in (policies or {"allow.cedar": READ_POLICY}).items():
        (policy_dir / name).write_text(text)
    return folder


@pytest.fixture(scope="session")
def estate_writer() -> EstateWriter:
    """``write(folder, policies={name: text}, yaml=extra)``: a tiny estate on disk."""
    return write_estate


def _tether_command() -> list[str]:
    exe = shutil.which("tether", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "tether.cli"]


def run_cli(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_tether_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


@pytest.fixture(scope="session")
def cli() -> CliRunner:
    """Run the real ``tether`` command; returns the completed process (never raises on exit)."""
    return run_cli
