"""CPU of a ``tether`` process that does next to nothing: ``--help`` and an empty ingest.

Each command runs as its own process; the figure is its user + system CPU seconds
(``RUSAGE_CHILDREN``), the median of ``--rounds``, beside the load average. *warm*: the
bytecode cached under ``PYTHONPYCACHEPREFIX`` (compiled by one earlier run, as an installed
package runs); *cold*: ``PYTHONDONTWRITEBYTECODE`` set and an empty cache folder, every
module compiled again (tether's and its dependencies'). The empty ingest goes into a store
made by a first run (the schema check, not the migrations), once with no signing key and
once with one (``tether keys rotate``): a store in use has one, and loading it imports the
JOSE library.

    .venv/bin/python bench/startup.py [--rounds 5] [--src DIR]

``--src``: the ``tether`` sources to run (``PYTHONPATH``), to compare two checkouts.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def cpu_of(command: list[str], env: dict[str, str], cwd: Path) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tether-startup-") as folder:
        work = Path(folder)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        base["PYTHONPATH"] = str(args.src.resolve())
        warm = {**base, "PYTHONPYCACHEPREFIX": str(work / "pycache")}
        (work / "empty-cache").mkdir()
        cold = {
            **base,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPYCACHEPREFIX": str(work / "empty-cache"),
        }
        empty = work / "empty.json"
        empty.write_text('{"Records": []}')
        tether = [sys.executable, "-m", "tether.cli"]
        plain, keyed = f"sqlite:///{work}/plain.db", f"sqlite:///{work}/keyed.db"
        commands = {
            "tether --help": [*tether, "--help"],
            "tether ingest cloudtrail EMPTY, no key": [
                *tether,
                "ingest",
                "cloudtrail",
                str(empty),
                "--db",
                plain,
            ],
            "tether ingest cloudtrail EMPTY (a key)": [
                *tether,
                "ingest",
                "cloudtrail",
                str(empty),
                "--db",
                keyed,
            ],
        }
        for command in commands.values():  # the stores made, the bytecode cached
            cpu_of(command, warm, work)
        subprocess.run(
            [*tether, "keys", "rotate", "--db", keyed],
            env=warm,
            cwd=work,
            check=True,
            capture_output=True,
        )
        for name, command in commands.items():
            for label, env in (("warm", warm), ("cold", cold)):
                figures = [cpu_of(command, env, work) for _ in range(args.rounds)]
                load = os.getloadavg()[0]
                median = statistics.median(figures)
                print(f"{name:<40} {label}: {median:.2f} s of CPU (load {load:.2f})")


if __name__ == "__main__":
    main()
