"""What one uncached AuthZEN decision costs, in CPU time and in instructions (callgrind).

``python -m bench.uncached [--requests N]`` builds tether as ``tether serve`` does
(``create_app(Tether(settings))``, ``TETHER_BACKGROUND_WORK=process``, the bench estate on
a temporary SQLite store), warms it up, then sends N AuthZEN evaluations straight to the
ASGI app (no socket), each with a new ``context.request_id`` and ``context.chain_depth`` (a
value a guardrail reads, the answer unchanged) so that Cedar evaluates every one (but the
2 of 20 that need approval, which keep their pending ticket and are answered from the
decision cache), and prints the process's CPU time per request.

``--callgrind`` runs the same under ``valgrind --tool=callgrind`` with instrumentation off,
switches it on (``callgrind_control -i on``) only for the N requests, and prints the
instructions per request and the file to read with ``callgrind_annotate --inclusive=yes``.
Instruction counts do not move with the load of a shared machine; CPU time does. Under
valgrind time-driven background work (the estate refresher, caller activity) runs about 50 times
more often per request than in real time: read the SQLite part of a profile with that in
mind. Approval tickets are reused for an hour here (``TICKET_REUSE_S``), so that
valgrind's slowness does not turn reused tickets into new ones. ``--ids-only`` varies the
request id alone (no policy reads it): what a PEP passing its request ids costs.

A new ``chain_depth`` is a new question only where a policy that may apply reads it: Cedar
is handed, per principal and action, the context of the policies that may apply
(``tether.policy._scope``), so a service account's request (the guardrail reading
``chain_depth`` is for agents) is answered from the decision cache. The run prints how
many Cedar evaluations the requests took; ``--cache-off`` turns the decision cache off so
that every request is evaluated (approval tickets are still reused): the like-for-like
measure of one uncached decision across versions. ``--repeat`` sends the mix's own
bodies again and again, unchanged (as ``bench/http.py``'s cached mix does): the decision
cache answers all but the approval re-checks, so this is what the cached path costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.estate import build_estate, install_estate
from bench.inprocess import evaluation_scope

WARMUP = 60


def _serve(
    requests: int,
    control: Path | None,
    *,
    ids_only: bool = False,
    cache_off: bool = False,
    repeat: bool = False,
) -> None:
    estate = build_estate()
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-uncached-"))
    database = folder / "tether.db"
    key = install_estate(f"sqlite:///{database}", estate)
    os.environ.update(
        {
            "TETHER_BACKGROUND_WORK": "process",
            "TETHER_DATABASE_URL": f"sqlite:///{database}",
            "TETHER_MASTER_KEY_FILE": str(folder / "master.key"),
        }
    )
    import tether.approvals._service as approvals
    import tether.estate.compiled as compiled
    import tether.policy._engine as engine
    from tether.api.app import create_app
    from tether.config import load_settings
    from tether.services import Tether

    approvals.TICKET_REUSE_S = 3600.0
    if cache_off:
        cache_off_engine = functools.partial(engine.PolicyEngine, cache_size=0)
        setattr(compiled, "PolicyEngine", cache_off_engine)  # noqa: B010 - as the estate builds it
    evaluations = [0]
    authorize = engine.authorize  # type: ignore[attr-defined]

    def counted(*args: Any) -> Any:
        evaluations[0] += 1
        return authorize(*args)

    setattr(engine, "authorize", counted)  # noqa: B010 - a module's name, counted
    app = create_app(Tether(load_settings()))
    bodies = [r.authzen_body() for r in estate.requests]
    repeated = [orjson.dumps(body) for body in bodies]
    answered: list[bytes] = []

    async def call(body: bytes) -> None:
        scope = evaluation_scope(body, key)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.body":
                answered.append(message["body"])

        await app(scope, receive, send)

    def new(number: int) -> bytes:
        # A new request id, and a new `chain_depth` (read by a guardrail: `> 3`) with the
        # same answer, so the decision cache never answers; but for the questions that
        # need approval, which keep their pending ticket (as bench/http.py's "all new").
        if repeat:
            return repeated[number % len(bodies)]
        request = estate.requests[number % len(bodies)]
        context = {**request.context, "request_id": str(number)}
        if request.expected != "approval_required" and not ids_only:
            depth = request.context["chain_depth"]
            context["chain_depth"] = -abs(number) - 1 if depth <= 3 else 5_000_000 + abs(number)
        return orjson.dumps({**bodies[number % len(bodies)], "context": context})

    running: list[asyncio.Future[None]] = []  # the lifespan task, kept while we run

    async def lifespan() -> None:
        started = asyncio.Event()
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await messages.put({"type": "lifespan.startup"})

        async def send(_message: Any) -> None:
            started.set()

        task = asyncio.ensure_future(app({"type": "lifespan", "state": {}}, messages.get, send))
        await started.wait()
        running.append(task)

    async def main() -> None:
        await lifespan()
        for number in range(WARMUP):
            await call(new(-1 - number))
        if control is not None:
            (control / "ready").touch()
            while not (control / "go").exists():
                time.sleep(0.05)
        evaluated = evaluations[0]
        cpu = time.process_time()
        for number in range(requests):
            await call(new(number))
        cpu = time.process_time() - cpu
        evaluated = evaluations[0] - evaluated
        if control is not None:
            (control / "done").touch()
        refused = sum(1 for a in answered if b'"decision"' not in a)
        print(
            f"{requests} requests, {cpu / requests * 1e6:.1f} µs of CPU each; refused {refused};"
            f" {evaluated} Cedar evaluations"
        )

    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # the worker process and threads end with us


def _callgrind(
    requests: int,
    out: Path,
    *,
    ids_only: bool = False,
    cache_off: bool = False,
    repeat: bool = False,
) -> None:
    with tempfile.TemporaryDirectory(prefix="tether-bench-cg-") as folder:
        control = Path(folder)
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--separate-threads=yes",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.uncached",
            "--requests",
            str(requests),
            *(["--ids-only"] if ids_only else []),
            *(["--cache-off"] if cache_off else []),
            *(["--repeat"] if repeat else []),
            "--control",
            folder,
        ]
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        while not (control / "ready").exists():
            if process.poll() is not None:
                raise SystemExit("the run under valgrind ended before it was ready")
            time.sleep(0.5)
        subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], check=True)
        (control / "go").touch()
        while not (control / "done").exists():
            time.sleep(0.5)
        # It may have ended already (its totals are written at exit): vgdb then waits on.
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                ["callgrind_control", "-i", "off", str(process.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=10,
            )
        process.wait()
    # One file per thread (`-01` is the event loop's, which answers the requests).
    by_thread: dict[str, int] = {}
    for dump in sorted(out.parent.glob(out.name + "*")):
        text = dump.read_text(errors="replace")
        totals = [int(n) for n in re.findall(r"^(?:summary|totals): (\d+)", text, re.M)]
        by_thread[dump.name] = max(totals, default=0)
    total = sum(by_thread.values())
    main_dump = min(by_thread, key=lambda name: (not name.endswith("-01"), name), default="")
    loop = by_thread.get(main_dump, 0)
    print(f"{total:,} instructions over {requests} requests: {total // requests:,} per request")
    print(
        f"of which the event loop's thread {loop // requests:,} per request (the figure to"
        " compare: the other threads' share grows with valgrind's slowness)"
    )
    print(f"profile: {out.parent / main_dump} (callgrind_annotate --inclusive=yes)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--ids-only",
        action="store_true",
        help="vary only context.request_id (which no policy reads): new to the PEP, not Cedar",
    )
    parser.add_argument(
        "--cache-off",
        action="store_true",
        help="turn the decision cache off: Cedar evaluates every request",
    )
    parser.add_argument(
        "--repeat",
        action="store_true",
        help="send the mix's bodies unchanged, again and again: the decision cache answers",
    )
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    parser.add_argument("--out", type=Path, default=Path("callgrind.uncached.out"))
    parser.add_argument("--control", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    modes = {"ids_only": args.ids_only, "cache_off": args.cache_off, "repeat": args.repeat}
    if args.callgrind:
        _callgrind(args.requests, args.out.resolve(), **modes)
    else:
        _serve(args.requests, args.control, **modes)


if __name__ == "__main__":
    main()
