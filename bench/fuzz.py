"""Coverage-guided fuzzing of tether's parsers with atheris (libFuzzer for Python).

Each target takes arbitrary bytes the way tether takes them from outside and must either
accept them or refuse them the way the parser documents (a ``TetherError``: a precise
message and ``error_code``; for ingest, an ``IngestError`` row per bad line). Anything
else is a crash: an exception escaping, or the ingest loop's safety net firing
(``unexpected failure reading event``). libFuzzer saves each crashing input under
``bench/fuzz-artifacts/``; a crash found becomes a regression test.

Targets: the estate loader (``estate.yaml``), compact JWS (JWT-SVIDs, task and admin
tokens), JWKS documents, the AuthZEN evaluation and evaluations bodies (as the edge reads
them: media type, JSON, bounds, parser) and every ingest adapter. Each runs in its own
process (libFuzzer ends the process it fuzzes in), instrumented for coverage.

    python -m bench.fuzz                    # 20,000 inputs per target (make fuzz)
    python -m bench.fuzz --long             # 1,000,000 inputs per target (make fuzz-long)
    python -m bench.fuzz --only jwt,authzen --runs 100000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

QUICK_RUNS = 20_000
LONG_RUNS = 1_000_000
MAX_LEN = 4096
HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "fuzz-artifacts"

Target = Callable[[bytes], None]

# A valid example of each input, to start the corpus from (libFuzzer mutates from here).
_SAMPLE_JWS = ".".join(  # a sample compact JWS: no secret, its signature is not one
    (
        "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0",
        "eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9ib3QiLCJhdWQiOlsidGV0aGVyIl0sImV4cCI6MX0",
        "c2lnbmF0dXJl",
    )
)
_JWKS = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "kid": "k1",
            "x": "NLHvhjFMBhm2BuZX0g9W0EsY9vjqCmaIZKpxZFri4RE",
            "y": "Pf8tJ8i5N_0LzpR0EanRASMlmVY34SiHixXvYgwe-u8",
        }
    ]
}
_EVALUATION = {
    "subject": {"type": "agent", "id": "billing-bot", "properties": {"token": "x"}},
    "action": {"name": "read_invoice"},
    "resource": {"type": "invoice", "id": "INV-7"},
    "context": {"amount": 12},
}
_ESTATE = """\
classes:
  agent: {mode: enforce, max_task_ttl: 15m, token_ttl: 5m}
data_classes: {public: 1, internal: 2, confidential: 3}
resources:
  - {pattern: "invoice:*", data_class: confidential}
identities:
  - id: billing-bot
    kind: agent
    class: agent
    owner: team-payments
    entitlements:
      - {actions: [read_invoice], resources: ["invoice:*"]}
"""
_CLOUDTRAIL = {
    "eventTime": "2026-12-01T10:00:00Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "GetObject",
    "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/r/s"},
    "requestParameters": {"bucketName": "b", "key": "k"},
}
_JSONL_MAPPING = {
    "at": "eventTime",
    "principal": "user.username",
    "action": "verb",
    "outcome": "responseStatus.code",
    "resource": "objectRef",
}


def _refused(call: Callable[[], Any]) -> None:
    """Run ``call``; a documented refusal (TetherError) is fine, anything else a crash."""
    from tether.errors import TetherError

    with contextlib.suppress(TetherError):
        call()


def _estate_target() -> Target:
    from tether.estate import load_estate

    # In memory where the machine has it: one file is written and loaded per input.
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private folder in it
    where = str(shm) if shm.is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix="tether-fuzz-estate-", dir=where))
    estate = folder / "estate.yaml"

    def target(data: bytes) -> None:
        estate.write_bytes(data)
        _refused(lambda: load_estate(folder))

    return target


def _jwt_target() -> Target:
    from tether.identity._compact import parse_compact

    return lambda data: _refused(lambda: parse_compact(data))


def _jwks_target() -> Target:
    from tether.identity import JwkKeySet

    return lambda data: _refused(lambda: JwkKeySet.from_jwks(data, source="fuzz"))


def _authzen_target() -> Target:
    from tether.api.asgi import parse_json_body
    from tether.api.authzen_schema import (
        merge_item,
        parse_evaluation,
        require_object_body,
        require_object_defaults,
    )
    from tether.api.bounds import RequestBounds
    from tether.config import Settings

    bounds = RequestBounds.from_settings(Settings())
    scope = {"headers": [(b"content-type", b"application/json")]}

    def read(data: bytes) -> None:
        body = require_object_body(parse_json_body(scope, data))
        if "evaluations" in body:  # a batch: defaults merged into each item
            bounds.check_evaluations(body)
            require_object_defaults(body)
            items = body["evaluations"]
            if isinstance(items, list):
                for index, item in enumerate(items):
                    if isinstance(item, dict):
                        parse_evaluation(merge_item(body, item), path=f"evaluations[{index}].")
        else:
            bounds.check_evaluation(body)
            parse_evaluation(body)

    return lambda data: _refused(lambda: read(data))


def _ingest_target(name: str) -> Target:
    from tether.telemetry import IngestError
    from tether.telemetry.ingest import iter_detected, jsonl
    from tether.telemetry.ingest._base import UNEXPECTED
    from tether.telemetry.ingest._registry import DECODERS  # noqa: F401  (all adapters loaded)

    if name == "detected":
        reader: Callable[..., Iterator[Any]] = iter_detected
    elif name == "jsonl":

        def reader(source: Any, *, source_name: str) -> Iterator[Any]:
            return jsonl.iter_events(source, source_name=source_name, mapping=_JSONL_MAPPING)

    else:
        import importlib

        reader = importlib.import_module(f"tether.telemetry.ingest.{name}").iter_events

    def target(data: bytes) -> None:
        for result in reader(io.BytesIO(data), source_name="fuzz"):
            if isinstance(result, IngestError) and UNEXPECTED in result.message:
                raise AssertionError(result.message)

    return target


INGEST = (
    "cloudtrail",
    "k8s_audit",
    "gcp_audit",
    "otel",
    "openai",
    "anthropic",
    "bedrock",
    "azure_activity",
    "detected",
    "jsonl",
)
TARGETS: dict[str, tuple[Callable[[], Target], list[bytes]]] = {
    "estate": (_estate_target, [_ESTATE.encode()]),
    "jwt": (_jwt_target, [_SAMPLE_JWS.encode()]),
    "jwks": (_jwks_target, [json.dumps(_JWKS).encode()]),
    "authzen": (
        _authzen_target,
        [
            json.dumps(_EVALUATION).encode(),
            json.dumps({**_EVALUATION, "evaluations": [{"action": {"name": "x"}}]}).encode(),
        ],
    ),
    **{
        f"ingest-{name}": (
            lambda name=name: _ingest_target(name),  # type: ignore[misc]
            [json.dumps(_CLOUDTRAIL).encode(), json.dumps({"Records": [_CLOUDTRAIL]}).encode()],
        )
        for name in INGEST
    },
}


def _child(name: str, runs: int) -> None:
    """Fuzz one target in this process (libFuzzer exits it when done or on a crash)."""
    import atheris

    make, seeds = TARGETS[name]
    with atheris.instrument_imports(include=["tether"]):
        target = make()
    corpus = Path(tempfile.mkdtemp(prefix=f"tether-fuzz-{name}-"))
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index}").write_bytes(seed)
    ARTIFACTS.mkdir(exist_ok=True)
    argv = [
        sys.argv[0],
        f"-runs={runs}",
        f"-max_len={MAX_LEN}",
        "-timeout=20",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={ARTIFACTS}/{name}-",
        str(corpus),
    ]
    atheris.Setup(argv, target)
    atheris.Fuzz()


def _run(name: str, runs: int) -> tuple[int, float, bool, str]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bench.fuzz", "--child", name, "--runs", str(runs)],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = done.stderr + done.stdout
    match = re.findall(r"Done (\d+) runs", output) or re.findall(r"#(\d+)\s", output)
    tried = int(match[-1]) if match else 0
    crashed = done.returncode != 0
    return tried, elapsed, crashed, output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--long", action="store_true", help=f"{LONG_RUNS:,} inputs per target")
    parser.add_argument("--runs", type=int, help="inputs per target")
    parser.add_argument("--only", help="comma-separated target names")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    runs = args.runs or (LONG_RUNS if args.long else QUICK_RUNS)
    if args.child:
        _child(args.child, runs)
        return 0
    names = args.only.split(",") if args.only else list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    print(f"{'target':<22} {'inputs':>11} {'seconds':>8} {'inputs/s':>9}  crashes")
    crashes = 0
    for name in names:
        tried, elapsed, crashed, output = _run(name, runs)
        crashes += crashed
        rate = tried / elapsed if elapsed else 0.0
        print(f"{name:<22} {tried:>11,} {elapsed:>8.1f} {rate:>9,.0f}  {int(crashed)}", flush=True)
        if crashed:
            print("\n".join(output.splitlines()[-40:]), file=sys.stderr)
    print(f"{len(names)} targets, {crashes} crashed; crashing inputs in {ARTIFACTS}/")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
