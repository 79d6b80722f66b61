"""Task tokens: exchanges per second over HTTP, and what a task token adds to a decision.

Run ``python bench/tokens.py [--quick] [--json] [--postgres URL]`` (``--postgres``: the store
in a new schema on that server, its change feed live, instead of a temporary SQLite file).
One ``uvicorn`` process serves tether (``bench.server:tether_app``: one worker, uvloop +
httptools, pinned to core 0 when there are two cores), ``wrk`` loads it from core 1 over
32 keep-alive connections:

* ``POST /oauth2/token``: a workload exchanges its JWT-SVID for a task token (RFC 8693);
  every exchange signs a token (ES256) and commits its record and audit event;
* ``POST /access/v1/evaluation`` without a token (the PEP names the subject), then the same
  decision with a task token in ``subject.properties.token`` (tether verifies it: the
  verified-token cache, the revocation version check, the task's intent, the subject).

The cost of a decision is the server's CPU time per answer (user + system, from
``/proc``); the figure of merit is *with a token / without*, whose target is ≤ 1.5 times. The
same ratio is measured in process (``evaluate_one`` called in a loop, no HTTP) as a floor
of what the token path costs on its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/tokens.py` puts bench/ first on sys.path, where bench/http.py would shadow
# the standard library's http package: put the repository root there instead.
_ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == _ROOT / "bench":
    sys.path[0] = str(_ROOT)

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import ECKey  # noqa: E402

from bench.http import cpu_seconds, uvicorn_server  # noqa: E402
from bench.load import LoadResult, ensure_wrk, run_wrk, wrk_script  # noqa: E402
from bench.replicas import POSTGRES, fresh_schema  # noqa: E402

CONNECTIONS = 32
SVID = "spiffe://example.org/agents/billing-bot"
ESTATE = """\
classes:
  agent: {mode: enforce, max_task_ttl: 4h, token_ttl: 1h, max_delegation_depth: 2}
trust:
  - spiffe: spiffe://example.org
    jwks_file: bundle.jwks.json
data_classes: {internal: 2, confidential: 3}
resources:
  - {pattern: "invoice:*", data_class: confidential}
  - {pattern: "email:*", data_class: internal}
identities:
  - id: billing-bot
    kind: agent
    class: agent
    owner: team-payments
    workload: spiffe://example.org/agents/billing-bot
    entitlements:
      - actions: [read_invoice, send_email]
        resources: ["invoice:*", "email:*@example.org"]
"""
TASK = {
    "purpose": "benchmark",
    "intent": {
        "actions": ["read_invoice", "send_email"],
        "resources": ["invoice:*", "email:*@example.org"],
        "data_classes": ["confidential", "internal"],
    },
    "ttl": "4h",
}


@dataclass(frozen=True)
class Target:
    name: str
    per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server CPU per 2xx answer
    non_2xx: int


@dataclass(frozen=True)
class TokenReport:
    exchange: Target
    plain: Target
    with_token: Target
    inprocess_plain_us: float
    inprocess_token_us: float
    generator: str
    store: str = "SQLite"

    @property
    def http_ratio(self) -> float:
        return self.with_token.cpu_us / self.plain.cpu_us

    @property
    def inprocess_ratio(self) -> float:
        return self.inprocess_token_us / self.inprocess_plain_us


def _svid(key: ECKey, ttl_s: int = 4 * 3600) -> str:
    now = int(time.time())
    claims = {"sub": SVID, "aud": "tether", "iat": now, "exp": now + ttl_s}
    return jwt.encode(
        {"alg": "ES256", "kid": "bench-1", "typ": "JWT"}, claims, key, algorithms=["ES256"]
    )


def _script(bodies: list[str], *, content_type: str, authorization: str) -> str:
    """``bench.load``'s wrk script, with this content type."""
    script = wrk_script(bodies, CONNECTIONS, authorization)
    default = '{["Content-Type"] = "application/json"}'
    assert default in script, "bench.load's wrk script changed: update bench/tokens.py"
    return script.replace(default, f'{{["Content-Type"] = "{content_type}"}}')


def _prepare(folder: Path, key: ECKey, postgres: str | None) -> tuple[str, str]:
    """The estate applied to a fresh store (a temporary SQLite file, or a new schema on
    the ``postgres`` server), and a PEP API key; (database URL, PEP key)."""
    from tether.callers import add_api_key
    from tether.estate import apply_estate
    from tether.store import migrate
    from tether.store.engine import open_engine

    estate = folder / "estate"
    estate.mkdir()
    public = {**key.as_dict(private=False), "kid": "bench-1", "use": "jwt-svid"}
    (estate / "bundle.jwks.json").write_text(json.dumps({"keys": [public]}))
    (estate / "estate.yaml").write_text(ESTATE)
    url = f"sqlite:///{folder}/tether.db" if postgres is None else fresh_schema(postgres)
    engine = open_engine(url)
    try:
        migrate.upgrade(engine)
        apply_estate(engine, estate)
        pep = add_api_key(engine, "bench-pep", actor="bench").key
    finally:
        engine.dispose()
    return url, pep


def _measure(
    wrk: str,
    base: str,
    pid: int,
    folder: Path,
    name: str,
    path: str,
    bodies: list[str],
    *,
    content_type: str,
    authorization: str,
    seconds: float,
) -> Target:
    script = folder / f"{name}.lua"
    script.write_text(_script(bodies, content_type=content_type, authorization=authorization))

    def load(duration: float) -> LoadResult:
        return run_wrk(wrk, base + path, script, connections=CONNECTIONS, seconds=duration)

    load(max(1.0, seconds / 5))  # warm-up
    before = cpu_seconds(pid)
    result = load(seconds)
    cpu_us = (cpu_seconds(pid) - before) * 1e6 / max(result.ok, 1)
    target = Target(name, result.per_second, result.p50_ms, result.p99_ms, cpu_us, result.non_2xx)
    print(f"  {name}: {target.per_second:,.0f}/s, CPU {target.cpu_us:.0f} µs/answer", flush=True)
    return target


def _inprocess(url: str, folder: Path, svid: str, iterations: int) -> tuple[float, float]:
    """µs per ``evaluate_one`` without and with a task token (best of ten interleaved
    rounds, the decision log drained before each)."""
    from tether.api.authzen import evaluate_one
    from tether.config import load_settings
    from tether.services import Tether
    from tether.tokens import TaskRequest

    settings = load_settings(
        {}, database_url=url, master_key_file=str(folder / "master.key"), issuer="http://bench"
    )
    tether = Tether(settings)
    try:
        authority = tether.tasks
        workload = authority.authenticate(svid, attempt="task.open")
        task = authority.open_task(
            TaskRequest.from_json(TASK), identity_id=workload.identity.id, opened_by="bench"
        )
        token = authority.issue(
            task, scope=task.intent.actions, event="token.issue", actor="bench", details={}
        ).token
        resource = {"type": "invoice", "id": "INV-1"}
        plain = {
            "subject": {"type": "agent", "id": "billing-bot"},
            "action": {"name": "read_invoice"},
            "resource": resource,
        }
        with_token = {**plain, "subject": {"properties": {"token": token}}}

        def timed(body: dict[str, Any]) -> float:
            tether.decision_log.flush()  # the writer thread idle: it competes for the GIL
            started = time.perf_counter()
            for _ in range(iterations // 10):
                evaluate_one(tether, body, None, "bench")
            return (time.perf_counter() - started) * 1e6 / (iterations // 10)

        timed(plain), timed(with_token)  # warm: the token verified and cached once
        rounds = [(timed(plain), timed(with_token)) for _ in range(10)]  # interleaved
        return min(r[0] for r in rounds), min(r[1] for r in rounds)
    finally:
        tether.close()


def run_tokens(
    *, seconds: float = 10.0, iterations: int = 20_000, postgres: str | None = None
) -> TokenReport:
    wrk = ensure_wrk()
    if wrk is None:
        raise SystemExit("bench/tokens.py needs wrk (apt-get install wrk)")
    key = ECKey.generate_key("P-256", parameters={"kid": "bench-1"})
    svid = _svid(key)
    with tempfile.TemporaryDirectory(prefix="tether-bench-tokens-") as name:
        folder = Path(name)
        url, pep = _prepare(folder, key, postgres)
        env = {
            "TETHER_DATABASE_URL": url,
            "TETHER_MASTER_KEY_FILE": str(folder / "master.key"),
        }
        with uvicorn_server("bench.server:tether_app", env) as (process, base):
            as_workload = {"Authorization": f"Bearer {svid}"}
            with httpx.Client(base_url=base, timeout=30, headers=as_workload) as client:
                opened = client.post("/v1/tasks", json=TASK)
                opened.raise_for_status()
                task_id = opened.json()["task_id"]
                form = {
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": svid,
                    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                    "resource": f"urn:tether:task:{task_id}",
                }
                issued = client.post("/oauth2/token", data=form)
                issued.raise_for_status()
                token = issued.json()["access_token"]
            exchange_body = str(httpx.QueryParams(form))
            decision = {
                "action": {"name": "read_invoice"},
                "resource": {"type": "invoice", "id": "INV-1"},
            }
            plain = json.dumps({**decision, "subject": {"type": "agent", "id": "billing-bot"}})
            tokened = json.dumps({**decision, "subject": {"properties": {"token": token}}})
            print("tether task tokens over HTTP:", flush=True)
            measure = lambda *args, **kwargs: _measure(  # noqa: E731
                wrk, base, process.pid, folder, *args, seconds=seconds, **kwargs
            )
            exchanged = measure(
                "token exchange",
                "/oauth2/token",
                [exchange_body],
                content_type="application/x-www-form-urlencoded",
                authorization=f"Bearer {svid}",
            )
            without = measure(
                "decision without token",
                "/access/v1/evaluation",
                [plain],
                content_type="application/json",
                authorization=f"Bearer {pep}",
            )
            with_token = measure(
                "decision with task token",
                "/access/v1/evaluation",
                [tokened],
                content_type="application/json",
                authorization=f"Bearer {pep}",
            )
        print("in process:", flush=True)
        inproc_plain, inproc_token = _inprocess(url, folder, svid, iterations)
    store = "SQLite" if postgres is None else "PostgreSQL (change feed live)"
    return TokenReport(exchanged, without, with_token, inproc_plain, inproc_token, "wrk", store)


def format_tokens(report: TokenReport) -> str:
    lines = [
        f"{'target':<28} {'answers/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'CPU µs':>7} "
        f"{'non-2xx':>8}",
    ]
    for t in (report.exchange, report.plain, report.with_token):
        lines.append(
            f"{t.name:<28} {t.per_second:>10,.0f} {t.p50_ms:>7.2f} {t.p99_ms:>7.2f} "
            f"{t.cpu_us:>7.0f} {t.non_2xx:>8}"
        )
    verdict = "met" if report.http_ratio <= 1.5 else "NOT met"
    lines += [
        "",
        f"decision with a task token / without, server CPU over HTTP: {report.http_ratio:.2f}× "
        f"(target ≤ 1.5×: {verdict})",
        f"in process (evaluate_one, no HTTP): {report.inprocess_plain_us:.0f} µs without, "
        f"{report.inprocess_token_us:.0f} µs with a token: {report.inprocess_ratio:.2f}×",
        f"{CONNECTIONS} connections, load by {report.generator}; server: uvicorn, 1 worker, "
        f"uvloop + httptools, {report.store}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs instead of 10 s")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a PostgreSQL server to store on (a new schema), e.g. " + POSTGRES,
    )
    args = parser.parse_args(argv)
    report = run_tokens(
        seconds=3 if args.quick else 10,
        iterations=5_000 if args.quick else 20_000,
        postgres=args.postgres,
    )
    if args.json:
        figures = asdict(report)
        figures["http_ratio"] = report.http_ratio
        figures["inprocess_ratio"] = report.inprocess_ratio
        print(json.dumps(figures, indent=2))
    else:
        print(format_tokens(report))
    return 0 if report.http_ratio <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
