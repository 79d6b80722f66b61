"""Ingest benchmark: CloudTrail events/s into the event store, through `tether ingest`.

Generates a CloudTrail log file (``{"Records": [...]}``, the format CloudTrail delivers to
S3) by replaying the shared CloudTrail samples with fresh event and request ids, times,
session names and source addresses, so every record is distinct and realistic in shape and
size. The file is written as it is generated (constant memory), then ingested:

1. by the real CLI, ``tether ingest cloudtrail FILE --db URL --json``, in a subprocess
   (the acceptance figure: events stored / the ``seconds`` the command reports, which
   covers reading, parsing, attribution, dedupe, chaining, inserting and checkpoints);
2. in-process through the same calls the CLI makes (``iter_file`` -> ``EventStore.ingest``
   -> ``checkpoint``), once with no ``on_stored`` callback and once with a trivial one
   (the hook where detection is wired), into fresh stores;
3. again by the CLI into the store of 1 (every event a duplicate);
4. with detection on, the way a user runs it (``--live``, the default): ``tether serve``
   on a fresh store (its worker process runs live drift detection, tailing the
   ``events`` table), then ``tether ingest cloudtrail FILE SENTINEL`` into the same
   store. ``SENTINEL`` is one more record, later than the trail, of an unmanaged principal
   stopping a trail: detection examines stored events in chain order, so its finding in
   ``findings`` means every event before it was examined. The figure: events / seconds
   from the start of the ingest to that finding, next to the CPU of the ingest process
   and of the server and its worker per event (``/proc/<pid>/stat``).

Then ``audit verify`` walks the chain. Nothing is asserted: the target is printed as
*met* / *NOT met*.

The ``tether`` subprocesses run with their bytecode cached (``PYTHONPYCACHEPREFIX`` in the
work folder, warmed by one ``tether --help``), as an installed package runs: with
``PYTHONDONTWRITEBYTECODE`` set, every run would compile tether's sources again (about half
a CPU-second). The CPU of one ``tether ingest`` of an empty trail (start-up: imports,
settings, migrations check) is printed beside the per-event figures.

    .venv/bin/python bench/ingest.py [--events 200000] [--db URL] [--keep DIR] [--gzip]

``--db`` (a PostgreSQL URL, say) is used for run 1 and 3 instead of a fresh SQLite file;
its ``events`` must be empty. Run 4 always uses a fresh SQLite store.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/ingest.py` puts bench/ first on sys.path, where bench/http.py would shadow
# the standard library's `http`.
ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import IO, Any  # noqa: E402

import orjson  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "shared" / "cloud-audit" / "aws_cloudtrail_rules.labelled.jsonl"
TARGET = 20_000
#: CPU seconds of the in-process runs (all threads of this process): steadier than wall
#: time on a shared machine.
CPU_SECONDS: dict[str, float] = {}
START = datetime(2026, 3, 1, tzinfo=UTC)


def sample_records() -> list[dict[str, Any]]:
    """The shared CloudTrail samples that are proper records (led by ``eventVersion``)."""
    records = []
    for line in SAMPLES.read_text(encoding="utf-8").splitlines():
        log = json.loads(line).get("log")
        if isinstance(log, dict) and "eventName" in log and "eventTime" in log:
            records.append({"eventVersion": log.get("eventVersion", "1.08"), **log})
    return records


def varied(record: dict[str, Any], n: int, rng: random.Random) -> dict[str, Any]:
    """``record`` as the ``n``-th event of the generated trail: new ids, time, session, IP."""
    out = dict(record)
    out["eventTime"] = (START + timedelta(milliseconds=n * 37)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    out["requestID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    out["sourceIPAddress"] = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    identity = out.get("userIdentity")
    if isinstance(identity, dict) and identity.get("type") == "AssumedRole":
        arn = identity.get("arn")
        if isinstance(arn, str) and arn.count("/") >= 2:
            # A new session of each role every 20,000 events (~12 minutes of this trail):
            # role sessions come and go, each making many calls.
            identity = dict(identity)
            identity["arn"] = f"{arn.rsplit('/', 1)[0]}/session-{n // 20_000}"
            out["userIdentity"] = identity
    return out


def generate(path: Path, events: int, *, compress: bool, seed: int = 7) -> int:
    """Write a ``{"Records": [...]}`` file of ``events`` records; its size in bytes."""
    records = sample_records()
    rng = random.Random(seed)
    opener: Any = gzip.open if compress else open
    handle: IO[bytes]
    with opener(path, "wb") as handle:
        handle.write(b'{"Records":[')
        for n in range(events):
            if n:
                handle.write(b",")
            handle.write(orjson.dumps(varied(records[n % len(records)], n, rng)))
        handle.write(b"]}\n")
    return path.stat().st_size


def child_env(work: Path) -> dict[str, str]:
    """The environment of the ``tether`` subprocesses: bytecode cached in ``work`` (module
    doc), so that start-up is what an installed package's is."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def warm_bytecode(work: Path) -> None:
    """Compile every module the CLI's commands import once, into the cache of
    :func:`child_env` (``tether --help`` no longer imports them: tether.cli.main)."""
    load_all = (
        "from tether.cli import main\nfor name in main.COMMANDS:\n    main.load_command(name)"
    )
    subprocess.run(
        [sys.executable, "-c", load_all],
        capture_output=True,
        cwd=work,
        env=child_env(work),
        check=True,
    )


def cli_ingest(path: Path | Sequence[Path], db: str, cwd: Path) -> dict[str, Any]:
    """The summary of ``tether ingest cloudtrail PATH... --json``, with its ``wall`` time and
    its process's ``cpu`` seconds (user + system)."""
    tether = Path(sys.executable).parent / "tether"
    paths = [path] if isinstance(path, Path) else list(path)
    command = [str(tether), "ingest", "cloudtrail", *map(str, paths), "--db", db, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, env=child_env(cwd), check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"`tether ingest` failed ({done.returncode}): {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    summary["wall"] = wall
    summary["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return summary


# --- with detection on: `tether serve` (live detection in its worker) + `tether ingest` ---

SENTINEL_USER = "bench-sentinel"


def write_sentinel(path: Path, events: int) -> datetime:
    """One CloudTrail record after the trail's last: an unmanaged IAM user stopping a trail
    (a Write of defense evasion: a finding by itself). Returns its time."""
    at = START + timedelta(milliseconds=events * 37, minutes=1)
    record = {
        "eventVersion": "1.08",
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDABENCHSENTINEL0001",
            "arn": f"arn:aws:iam::123456789012:user/{SENTINEL_USER}",
            "accountId": "123456789012",
            "userName": SENTINEL_USER,
        },
        "requestParameters": {"name": "arn:aws:cloudtrail:us-east-1:123456789012:trail/main"},
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "recipientAccountId": "123456789012",
    }
    path.write_bytes(orjson.dumps({"Records": [record]}))
    return at


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _sentinel_examined(database: Path, at: datetime) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM findings WHERE at >= ? LIMIT 1",
                (at.replace(tzinfo=None).isoformat(" "),),
            ).fetchone()
    except sqlite3.Error:  # not created yet, or locked for a moment
        return False
    return found is not None


def live(trail: Path, events: int, work: Path, timeout: float) -> dict[str, float] | None:
    """Ingest with detection on, the product's way (module doc, run 4); its figures, or
    ``None`` when detection did not reach the sentinel within ``timeout`` seconds."""
    database = work / "live.db"
    url = f"sqlite:///{database}"
    sentinel = work / "sentinel.json"
    sentinel_at = write_sentinel(sentinel, events)
    port = _free_port()
    tether = Path(sys.executable).parent / "tether"
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(tether), "serve", "--db", url, "--port", str(port)],
        cwd=work,
        env=child_env(work),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise SystemExit(f"`tether serve` exited: see {work / 'serve.log'}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1),
            ):
                break
            if time.monotonic() > deadline:
                raise SystemExit("`tether serve` is not ready after 60 s")
            time.sleep(0.1)
        workers = _children(server.pid)
        server_before = _cpu_of(server.pid)
        workers_before = sum(_cpu_of(p) for p in workers)
        started = time.perf_counter()
        summary = cli_ingest([trail, sentinel], url, work)
        ingested = time.perf_counter() - started
        while not _sentinel_examined(database, sentinel_at):
            if time.perf_counter() - started > timeout:
                return None
            time.sleep(0.01)
        examined = time.perf_counter() - started
        server_cpu = _cpu_of(server.pid) - server_before
        workers_cpu = sum(_cpu_of(p) for p in workers) - workers_before
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    return {
        "events": summary["ingested"],
        "errors": summary["errors"],
        "ingest_s": ingested,
        "examined_s": examined,
        "ingest_cpu": summary["cpu"],
        "server_cpu": server_cpu,
        "workers_cpu": workers_cpu,
        "workers": len(workers),
    }


def in_process(path: Path, db: str, *, callback: bool) -> tuple[int, float, int]:
    """(events stored, seconds, events the callback saw) through the CLI's calls."""
    from tether.cli.common import open_tether
    from tether.telemetry.ingest import iter_file
    from tether.telemetry.model import ObservedAccess, Source
    from tether.telemetry.store import EventStore

    seen = [0]

    def trivial(stored: Sequence[ObservedAccess]) -> None:
        seen[0] += len(stored)

    with open_tether(db) as tether:
        store = EventStore(tether.engine, tether.keys)
        if callback:
            store.on_stored.append(trivial)
        started, cpu = time.perf_counter(), time.process_time()
        summary = store.ingest(iter_file(path, Source.CLOUDTRAIL))
        store.checkpoint()
        elapsed = time.perf_counter() - started
        CPU_SECONDS["ingest" if not callback else "ingest+callback"] = time.process_time() - cpu
    return summary.ingested, elapsed, seen[0]


def detection(db: str) -> tuple[int, float, int]:
    """(events examined, seconds, findings) of every detector over the stored events.

    The same work live detection does on each ingested event (observation, risk of the
    cloud action, every detector, scoring, storing findings), as one ``drift scan``.
    """
    from tether.cli.common import open_tether
    from tether.drift.engine import DriftEngine
    from tether.estate.compiled import EMPTY_ESTATE

    with open_tether(db) as tether:
        drift = DriftEngine(tether.engine, lambda: (None, EMPTY_ESTATE), tail_events=False)
        with tether.engine.connect() as connection:
            from sqlalchemy import func, select

            from tether.store.telemetry_tables import events

            count = int(connection.execute(select(func.count()).select_from(events)).scalar() or 0)
        started, cpu = time.perf_counter(), time.process_time()
        found = drift.scan(since=START - timedelta(days=1), until=datetime.now(UTC))
        CPU_SECONDS["detection"] = time.process_time() - cpu
        return count, time.perf_counter() - started, len(found)


def verify(db: str) -> tuple[bool, int, float]:
    from tether.cli.common import open_tether
    from tether.telemetry.audit import verify_chain

    with open_tether(db) as tether:
        started = time.perf_counter()
        report = verify_chain(tether.engine, tether.keys)
        return report.ok, report.events, time.perf_counter() - started


def startup_cpu(work: Path) -> float:
    """CPU seconds of ``tether ingest cloudtrail`` of an empty trail into a fresh store
    (after one such run has made the store: the migrations check, not the migrations)."""
    empty = work / "empty.json"
    empty.write_text('{"Records": []}')
    url = f"sqlite:///{work}/startup.db"
    cli_ingest(empty, url, work)
    return float(cli_ingest(empty, url, work)["cpu"])


def report_live(trail: Path, events: int, work: Path, start_up: float) -> None:
    """Run 4 and its verdict: the acceptance figure of ingest with detection on."""
    figures = live(trail, events, work, timeout=max(120.0, events / 1000))
    if figures is None:
        print("ingest with detection on (serve + CLI): detection did NOT reach the last event")
        return
    count = int(figures["events"])
    if count != events + 1 or figures["errors"]:
        print(f"  LOST EVENTS: stored {count:,} of {events + 1:,}, errors {figures['errors']}")
    seconds = figures["examined_s"]
    print(
        f"ingest with detection on (serve + CLI): {_rate(count, seconds)}: the last event "
        f"examined {seconds - figures['ingest_s']:.2f} s after the ingest ended "
        f"({figures['ingest_s']:.2f} s)"
    )
    ingest_cpu, server_cpu = figures["ingest_cpu"], figures["server_cpu"]
    workers_cpu = figures["workers_cpu"]
    print(
        f"  CPU per event: ingest process {ingest_cpu / count * 1e6:.1f} µs, "
        f"{int(figures['workers'])} worker process (detection) "
        f"{workers_cpu / count * 1e6:.1f} µs, server {server_cpu / count * 1e6:.1f} µs; "
        f"{count / (ingest_cpu + server_cpu + workers_cpu):,.0f} events per CPU-second"
    )
    print(
        f"  ingest process: start-up (an empty ingest) {start_up:.2f} s of CPU, "
        f"{(ingest_cpu - start_up) / count * 1e6:.1f} µs per event without it"
    )
    rate = count / seconds
    verdict = "met" if rate >= TARGET else "NOT met"
    print(
        f"target >= {TARGET:,} events/s ingested with detection on (wall clock, "
        f"load average {os.getloadavg()[0]:.1f}): {verdict} ({rate:,.0f})"
    )


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>9,.0f} events/s ({count:,} in {seconds:.2f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--db", help="store URL for the CLI runs (default: a fresh SQLite file)")
    parser.add_argument("--keep", type=Path, help="work in this folder and leave it behind")
    parser.add_argument("--gzip", action="store_true", help="write the trail gzip-compressed")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also ingest with detection on: `tether serve` + `tether ingest` (run 4)",
    )
    parser.add_argument(
        "--only-live", action="store_true", help="run 4 alone (no other run, no verify)"
    )
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="tether-ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    home = Path.cwd()
    os.chdir(work)  # the CLI and the in-process runs share ./.tether (the master key)
    try:
        trail = work / ("trail.json.gz" if args.gzip else "trail.json")
        started = time.perf_counter()
        size = generate(trail, args.events, compress=args.gzip)
        print(
            f"generated {args.events:,} CloudTrail records, {size / 2**20:.0f} MB "
            f"({time.perf_counter() - started:.1f} s): {trail}"
        )
        warm_bytecode(work)
        start_up = startup_cpu(work)
        print(f"start-up of `tether ingest` (an empty trail): {start_up:.2f} s of CPU")
        if args.only_live:
            report_live(trail, args.events, work, start_up)
            return 0
        db = args.db or f"sqlite:///{work}/cli.db"
        first = cli_ingest(trail, db, work)
        stored = first["ingested"]
        print(
            f"tether ingest cloudtrail (CLI):      {_rate(stored, first['seconds'])}"
            f", process wall {first['wall']:.2f} s"
        )
        if stored != args.events or first["errors"]:
            print(f"  LOST EVENTS: stored {stored:,} of {args.events:,}, errors {first['errors']}")
        seconds_of_ingest: list[float] = []
        if not args.skip_in_process:
            for callback in (False, True):
                url = f"sqlite:///{work}/inproc-{int(callback)}.db"
                count, seconds, seen = in_process(trail, url, callback=callback)
                seconds_of_ingest.append(seconds)
                label = "with a trivial on_stored callback" if callback else "no on_stored callback"
                print(
                    f"in-process, {label:<34} {_rate(count, seconds)}"
                    + (f", callback saw {seen:,}" if callback else "")
                )
            count, scan_s, found = detection(f"sqlite:///{work}/inproc-0.db")
            print(
                f"detection (drift scan, all detectors): {_rate(count, scan_s)}, {found:,} findings"
            )
            print(
                "ingest + detection, in sequence:     "
                + _rate(count, seconds_of_ingest[0] + scan_s)
            )
            cpu_ingest, cpu_scan = CPU_SECONDS["ingest"], CPU_SECONDS["detection"]
            print(
                f"CPU per event: ingest {cpu_ingest / count * 1e6:.1f} µs, detection "
                f"{cpu_scan / count * 1e6:.1f} µs; ingest + detection "
                f"{count / (cpu_ingest + cpu_scan):,.0f} events per CPU-second"
            )
        again = cli_ingest(trail, db, work)
        print(
            f"re-ingest, all duplicates (CLI):     {_rate(again['duplicates'], again['seconds'])}"
            f", stored {again['ingested']}"
        )
        ok, count, seconds = verify(db)
        print(f"audit verify: {'clean' if ok else 'BROKEN'}, {_rate(count, seconds)}")
        rate = stored / first["seconds"]
        verdict = "met" if rate >= TARGET else "NOT met"
        print(
            f"target >= {TARGET:,} CloudTrail events/s into the store, detection off: "
            f"{verdict} ({rate:,.0f})"
        )
        if args.live:
            report_live(trail, args.events, work, start_up)
    finally:
        os.chdir(home)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
