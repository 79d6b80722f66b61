"""The MCP gateway's worker CPU idle and at paced call rates: fixed cost against per call.

Not part of the suite. As ``bench/gateway_cpu.py`` (the example's upstream and estate, a
task token, ``read_invoice``), one gateway on the tree given: the worker process's CPU
(``/proc``, the worker alone) over 4 s idle, then over 4 s at each ``--rates`` (calls a
second, 8 sessions paced) and in a closed loop. Printed per step: calls/s, worker CPU a
second and per call::

    env -u PYTHONPATH .venv/bin/python -m bench.gateway_rates src [--rates 100 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.gateway import TETHER, _cpu_s, _round, _started, _store, _upstream_started
from bench.http import free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="the source tree the gateway runs")
    parser.add_argument("--rates", type=float, nargs="*", default=[100.0, 300.0])
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-gateway-rates-"))
    try:
        db, tether, token = _store(folder)
        with ExitStack() as stack:
            up_base = _upstream_started(stack, folder)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {**os.environ, "PYTHONPATH": str(Path(args.src).resolve())}
            command = [*TETHER, "gateway", "mcp", "--upstream", f"{up_base}/mcp"]
            command += ["--db", db, "--listen", f"127.0.0.1:{port}"]
            probe = "/.well-known/oauth-protected-resource"
            gateway = stack.enter_context(_started(command, base, probe, folder, "gateway", env))
            url = f"{base}/mcp"
            asyncio.run(_round(url, token, 2, 1.0))  # warm
            before = _cpu_s(gateway.pid, own=False)
            time.sleep(args.seconds)
            idle = (_cpu_s(gateway.pid, own=False) - before) / args.seconds
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"worker CPU ({args.src}; load average {load})")
            print(f"idle: {idle * 1000:.0f} ms/s")
            rates: list[float | None] = [*args.rates, None]
            for rate in rates:
                before = _cpu_s(gateway.pid, own=False)
                done = asyncio.run(_round(url, token, 8, args.seconds, rate=rate))
                spent = _cpu_s(gateway.pid, own=False) - before
                calls = max(1, len(done.latencies) + done.errors)
                print(
                    f"{'closed loop' if rate is None else f'{rate:g} calls/s'}: "
                    f"{calls / done.seconds:.0f} calls/s, {spent / done.seconds * 1000:.0f} ms/s, "
                    f"{spent / calls * 1e6:.0f} µs/call"
                )
        tether.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
