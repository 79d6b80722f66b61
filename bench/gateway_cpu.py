"""The MCP gateway's CPU per ``tools/call``, two source trees side by side.

Not part of the suite. As ``bench/gateway.py`` (the example's invoice server, the
example's estate, a task token, ``read_invoice`` in a closed loop from hand-written MCP
sessions), but with one gateway per variant in front of the same upstream, all running at
once, and short rounds alternated between them: on a shared machine every variant sees
the same load. Printed per variant: the median over rounds of the gateway's CPU per call
(its worker process included, and alone), from ``/proc``.

A variant is ``NAME=SRC[:thread|:process]``: the gateway runs with ``PYTHONPATH=SRC`` and
that ``TETHER_BACKGROUND_WORK`` (a tree that ignores it keeps its own)::

    python -m bench.gateway_cpu main=/work/main/src mine=src mine-thread=src:thread
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.gateway import TETHER, _cpu_s, _round, _started, _store, _upstream_started
from bench.http import free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=SRC[:thread|:process]")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per variant")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of a round")
    parser.add_argument("--sessions", type=int, default=8, help="concurrent MCP sessions")
    parser.add_argument(
        "--py-spy",
        metavar="NAME=FILE",
        help="after the rounds, one more round of NAME under `py-spy record` (collapsed stacks)",
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-gateway-cpu-"))
    spent: dict[str, list[tuple[float, float]]] = {}
    try:
        db, tether, token = _store(folder)
        with ExitStack() as stack:
            up_base = _upstream_started(stack, folder)
            gateways: dict[str, tuple[str, int]] = {}
            for variant in args.variants:
                name, _, source = variant.partition("=")
                src, _, work = source.partition(":")
                port = free_port()
                env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
                if work:
                    env["TETHER_BACKGROUND_WORK"] = work
                command = [*TETHER, "gateway", "mcp", "--upstream", f"{up_base}/mcp"]
                command += ["--db", db, "--listen", f"127.0.0.1:{port}"]
                base = f"http://127.0.0.1:{port}"
                probe = "/.well-known/oauth-protected-resource"
                process = stack.enter_context(_started(command, base, probe, folder, name, env))
                gateways[name] = (f"{base}/mcp", process.pid)
                asyncio.run(_round(f"{base}/mcp", token, 2, 1.0))  # warm
            for _ in range(args.rounds):
                for name, (url, pid) in gateways.items():
                    before, worker = _cpu_s(pid), _cpu_s(pid, own=False)
                    done = asyncio.run(_round(url, token, args.sessions, args.seconds))
                    calls = max(1, len(done.latencies) + done.errors)
                    total = (_cpu_s(pid) - before) / calls * 1000
                    alone = (_cpu_s(pid, own=False) - worker) / calls * 1000
                    spent.setdefault(name, []).append((total, alone))
            if args.py_spy:
                name, _, out = args.py_spy.partition("=")
                _profiled(gateways[name], token, args, Path(out).resolve())
        tether.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"gateway CPU per tools/call (ms, median of {args.rounds} rounds of {args.seconds:g} s,")
    print(
        f"{args.sessions} sessions; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )
    print(f"{'':14} {'all':>6} {'worker':>7} {'gateway':>8}   rounds (all)")
    for name, rows in spent.items():
        total = statistics.median(r[0] for r in rows)
        alone = statistics.median(r[1] for r in rows)
        each = " ".join(f"{r[0]:.2f}" for r in rows)
        print(f"{name:14} {total:6.2f} {alone:7.2f} {total - alone:8.2f}   {each}")
    return 0


def _profiled(gateway: tuple[str, int], token: str, args: argparse.Namespace, out: Path) -> None:
    """One round of ``args.seconds`` (at least 5 s) with py-spy sampling the gateway (the
    thread holding the GIL, native frames too)."""
    url, pid = gateway
    seconds = max(5.0, args.seconds)
    spy = [
        shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
    ]
    spy += [
        "--rate",
        "500",
        "--gil",
        "--native",
        "--duration",
        f"{seconds:g}",
        "--output",
        str(out),
    ]
    with subprocess.Popen(spy, stdout=subprocess.DEVNULL) as process:
        time.sleep(0.5)
        asyncio.run(_round(url, token, args.sessions, seconds))
        process.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
