"""Tasks and task tokens over real HTTP (issue 3's acceptance), on both backends.

A workload (billing-bot, proven by a JWT-SVID signed by a key of the estate's test bundle)
opens a task, exchanges its proof for a task token, and a PEP decides with the token:
allowed within the intent, denied outside it; once the task ends the same token is denied
and introspects inactive. Then a battery of hostile tokens at the exchange endpoint, each
refused with its own ``error_code`` and no change to tasks, tokens or revocations.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from tether.store.engine import open_engine
from tether.store.token_tables import issued_tokens, revocations, tasks
from token_support import (
    BILLING,
    HELPER,
    SUB_HELPER,
    UNBOUND,
    WorkloadKey,
    b64,
    exchange_form,
    task_body,
    write_estate,
)

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
ServerProcess = Any
CliRunner = Callable[..., Any]


@pytest.fixture(scope="module")
def keys() -> tuple[WorkloadKey, WorkloadKey]:
    """The example.org bundle's key and other.org's."""
    return WorkloadKey.generate("wk-1"), WorkloadKey.generate("other-1")


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    keys: tuple[WorkloadKey, WorkloadKey],
) -> ServerProcess:
    folder = write_estate(tmp_path_factory.mktemp("estate"), keys[0], other=keys[1])
    return module_server_factory(db_url=module_db_url, estate=folder)


@pytest.fixture
def pep(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client("pep") as client:
        yield client


def workload(server: ServerProcess, proof: str) -> httpx.Client:
    """A client authenticated as a workload by its own proof."""
    return httpx.Client(
        base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {proof}"}
    )


def open_task(server: ServerProcess, key: WorkloadKey, sub: str = BILLING, **body: Any) -> str:
    with workload(server, key.svid(sub)) as client:
        response = client.post("/v1/tasks", json=task_body(**body))
    assert response.status_code == 201, response.text
    task_id: str = response.json()["task_id"]
    assert response.headers["location"] == f"/v1/tasks/{task_id}"
    return task_id


def exchange(server: ServerProcess, proof: str, form: dict[str, list[str]]) -> httpx.Response:
    """POST /oauth2/token, the caller authenticated by ``proof``."""
    with workload(server, proof) as client:
        return client.post("/oauth2/token", data={k: v[0] for k, v in form.items()})


def task_token(server: ServerProcess, key: WorkloadKey, task_id: str, **kwargs: Any) -> str:
    proof = key.svid()
    response = exchange(server, proof, exchange_form(proof, task_id=task_id, **kwargs))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token: str = response.json()["access_token"]
    return token


def delegated(
    server: ServerProcess, key: WorkloadKey, parent: str, actor: str, **kw: Any
) -> httpx.Response:
    proof = key.svid(actor)
    return exchange(server, proof, exchange_form(parent, actor_token=proof, **kw))


def decide(pep: httpx.Client, token: str, action: str, resource: tuple[str, str]) -> dict[str, Any]:
    response = pep.post(
        "/access/v1/evaluation",
        json={
            "subject": {"properties": {"token": token}},
            "action": {"name": action},
            "resource": {"type": resource[0], "id": resource[1]},
        },
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def introspect(pep: httpx.Client, token: str) -> dict[str, Any]:
    response = pep.post("/oauth2/introspect", data={"token": token})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def state(server: ServerProcess) -> tuple[int, ...]:
    """How many tasks, tokens and revocations the store holds (and how many tasks ended)."""
    engine = open_engine(server.db_url)
    try:
        with engine.connect() as connection:
            return tuple(
                connection.execute(query).scalar_one()
                for query in (
                    select(func.count()).select_from(tasks),
                    select(func.count()).select_from(tasks).where(tasks.c.status == "ended"),
                    select(func.count()).select_from(issued_tokens),
                    select(func.count())
                    .select_from(issued_tokens)
                    .where(issued_tokens.c.revoked_at.is_not(None)),
                    select(func.count()).select_from(revocations),
                )
            )
    finally:
        engine.dispose()


# --- the acceptance flow ----------------------------------------------------------------------


def test_a_task_token_works_within_intent_and_dies_with_its_task(
    server: ServerProcess, pep: httpx.Client, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    key = keys[0]
    task_id = open_task(server, key)
    token = task_token(server, key, task_id)

    allowed = decide(pep, token, "read_invoice", ("invoice", "INV-1"))
    assert allowed["decision"] is True, allowed
    assert allowed["context"]["reasons"] == ["entitlement:billing-bot:1"]
    outside = decide(pep, token, "send_email", ("email", "someone@evil.example"))
    assert outside["decision"] is False
    assert outside["context"]["error_code"] == "outside_task_intent"
    beyond = decide(pep, token, "pay_invoice", ("payments", "P-1"))
    assert beyond["context"]["error_code"] == "token_scope_exceeded"
    assert introspect(pep, token)["active"] is True

    with workload(server, key.svid()) as client:
        ended = client.post(f"/v1/tasks/{task_id}/end", json={"reason": "invoices sent"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended"
    # The out-of-intent probes above are drift: in this `enforce` class the live engine may
    # have ended the task (and revoked the token) first; either way it is revoked once.
    assert ended.json()["revoked_tokens"] in (0, 1)

    denied = decide(pep, token, "read_invoice", ("invoice", "INV-1"))
    assert denied["decision"] is False
    assert denied["context"]["reasons"] == ["task_ended"]
    assert denied["context"]["error_code"] == "task_ended"
    assert introspect(pep, token) == {"active": False, "error_code": "task_ended"}


def test_the_task_token_is_an_rfc_9068_jwt_verifiable_with_the_jwks(
    server: ServerProcess, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    token = task_token(server, keys[0], open_task(server, keys[0]))
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        jwks = anonymous.get("/.well-known/jwks.json")
        metadata = anonymous.get("/.well-known/oauth-authorization-server")
    assert jwks.status_code == 200
    assert all("d" not in k for k in jwks.json()["keys"])
    decoded = jwt.decode(token, KeySet.import_key_set(jwks.json()), algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    claims = decoded.claims
    assert claims["iss"] == server.url
    assert (claims["sub"], claims["client_id"], claims["aud"]) == ("billing-bot",) * 2 + ("tether",)
    assert claims["exp"] - claims["iat"] == 300
    assert claims["scope"] == "read_invoice send_email"
    assert metadata.status_code == 200
    document = metadata.json()
    assert document["issuer"] == server.url
    assert document["token_endpoint"] == f"{server.url}/oauth2/token"
    assert document["jwks_uri"] == f"{server.url}/.well-known/jwks.json"


def test_delegation_over_http_and_revocation_of_the_parent(
    server: ServerProcess, pep: httpx.Client, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    key = keys[0]
    parent = task_token(server, key, open_task(server, key))
    response = delegated(server, key, parent, HELPER, scope="read_invoice")
    assert response.status_code == 200, response.text
    child = response.json()["access_token"]
    answer = introspect(pep, child)
    assert answer["act"] == {"sub": "helper-bot"}
    assert answer["scope"] == "read_invoice"
    assert decide(pep, child, "read_invoice", ("invoice", "INV-9"))["decision"] is True
    assert pep.post("/oauth2/revoke", data={"token": parent}).status_code == 200
    assert decide(pep, child, "read_invoice", ("invoice", "INV-9"))["context"]["error_code"] == (
        "token_revoked"
    )
    assert pep.post("/oauth2/revoke", data={"token": "whatever"}).status_code == 200


def revoke_as(server: ServerProcess, key: WorkloadKey, sub: str, token: str) -> httpx.Response:
    """POST /oauth2/revoke, the caller the workload ``sub`` by its own proof."""
    with workload(server, key.svid(sub)) as client:
        return client.post("/oauth2/revoke", data={"token": token})


def test_a_workload_revokes_only_tokens_issued_to_it(
    server: ServerProcess, pep: httpx.Client, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    """RFC 7009 §2.1: helper-bot holding billing-bot's token cannot end it (issue 19)."""
    key = keys[0]
    victim = task_token(server, key, open_task(server, key))
    before = state(server)
    refused = revoke_as(server, key, HELPER, victim)
    assert refused.status_code == 400, refused.text
    assert refused.headers["cache-control"] == "no-store"
    assert refused.json()["error"] == "unauthorized_client"
    assert refused.json()["error_code"] == "token_not_issued_to_caller"
    assert state(server) == before
    assert decide(pep, victim, "read_invoice", ("invoice", "INV-9"))["decision"] is True
    assert introspect(pep, victim)["active"] is True
    assert revoke_as(server, key, HELPER, "not-a-token").status_code == 200  # RFC 7009 §2.2

    child = delegated(server, key, victim, HELPER, scope="read_invoice").json()["access_token"]
    assert revoke_as(server, key, HELPER, child).status_code == 200  # its own, as the actor
    assert introspect(pep, child)["error_code"] == "token_revoked"
    assert decide(pep, victim, "read_invoice", ("invoice", "INV-9"))["decision"] is True
    assert revoke_as(server, key, BILLING, victim).status_code == 200  # the subject's own
    assert introspect(pep, victim) == {"active": False, "error_code": "token_revoked"}


def test_the_task_endpoints_refuse_what_they_must(
    server: ServerProcess, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    key = keys[0]
    with workload(server, key.svid()) as client:
        wide = client.post("/v1/tasks", json=task_body(actions=("read_invoice", "refund")))
        long = client.post("/v1/tasks", json=task_body(ttl="2h"))
        bad = client.post("/v1/tasks", json={"purpose": "x"})
    assert wide.status_code == 400
    assert wide.headers["content-type"].startswith("application/problem+json")
    assert wide.json()["error_code"] == "intent_exceeds_entitlement"
    assert "`refund` on `invoice:*`" in wide.json()["detail"]
    assert long.json()["error_code"] == "task_ttl_exceeds_max"
    assert bad.json()["error_code"] == "task_request_invalid"
    task_id = open_task(server, key)
    with workload(server, key.svid(HELPER)) as other:
        stolen = other.post(f"/v1/tasks/{task_id}/end")
    assert stolen.status_code == 403
    assert stolen.json()["error_code"] == "task_not_owned"


def test_unknown_workloads_are_refused(
    server: ServerProcess, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    with workload(server, keys[0].svid(UNBOUND)) as client:
        response = client.post("/v1/tasks", json=task_body())
    assert response.status_code == 401
    assert response.json()["error_code"] in ("workload_unknown", "caller_unknown")


def test_auditors_list_tasks_and_see_their_tokens(
    server: ServerProcess, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    task_id = open_task(server, keys[0])
    task_token(server, keys[0], task_id)
    with server.client("auditor") as auditor:
        listed = auditor.get("/v1/tasks", params={"identity": "billing-bot", "status": "open"})
        shown = auditor.get(f"/v1/tasks/{task_id}")
    assert listed.status_code == 200, listed.text
    assert task_id in [t["task_id"] for t in listed.json()["tasks"]]
    assert shown.status_code == 200
    [issued] = shown.json()["tokens"]
    assert issued["depth"] == 0
    assert issued["revoked_at"] is None


def test_a_task_ended_from_the_cli_is_denied_at_the_next_decision(
    server: ServerProcess,
    pep: httpx.Client,
    keys: tuple[WorkloadKey, WorkloadKey],
    cli: CliRunner,
) -> None:
    token = task_token(server, keys[0], task_id := open_task(server, keys[0]))
    assert decide(pep, token, "read_invoice", ("invoice", "1"))["decision"] is True
    folder = Path(server.log_path).parent  # the server's working folder (its master key)
    ended = cli("task", "end", task_id, "--db", server.db_url, "--json", cwd=folder)
    assert ended.returncode == 0, ended.stderr
    assert decide(pep, token, "read_invoice", ("invoice", "1"))["context"]["error_code"] == (
        "task_ended"
    )


# --- hostile tokens at the exchange endpoint ----------------------------------------------------


def _hs256_with_the_public_key(key: WorkloadKey) -> str:
    header = b64(json.dumps({"alg": "HS256", "kid": key.kid, "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"sub": BILLING, "aud": "tether", "exp": now + 300}
    payload = b64(json.dumps(claims).encode())
    secret = json.dumps(key.jwk()).encode()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _tamper(
    token: str, *, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None
) -> str:
    head, payload, signature = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    if header is not None:
        head = b64(json.dumps({**decode(head), **header}).encode())
    if claims is not None:
        payload = b64(json.dumps({**decode(payload), **claims}).encode())
    return f"{head}.{payload}.{signature}"


def hostile_proofs(key: WorkloadKey, other: WorkloadKey) -> dict[str, tuple[str, str]]:
    """Hostile subject tokens: name -> (token, the error_code that must refuse it)."""
    now = int(time.time())
    good = key.svid()
    return {
        "alg none": (
            f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{good.split('.')[1]}.",
            "alg_not_allowed",
        ),
        "HS256 keyed with the public key": (_hs256_with_the_public_key(key), "alg_not_allowed"),
        "EdDSA": (key.svid(header={"alg": "EdDSA"}), "alg_not_allowed"),
        "unknown kid": (key.svid(header={"kid": "nope"}), "kid_unknown"),
        "key of another trust domain": (other.svid(BILLING), "kid_unknown"),
        "another domain's key under our kid": (
            other.svid(BILLING, header={"kid": key.kid}),
            "signature_invalid",
        ),
        "missing exp": (key.svid(exp=None), "claim_missing"),
        "missing aud": (key.svid(aud=None), "claim_missing"),
        "missing sub": (key.svid(sub=None), "issuer_unknown"),  # names no one tether trusts
        "expired": (key.svid(exp=now - 120), "token_expired"),
        "nbf in the future": (key.svid(nbf=now + 600), "token_not_yet_valid"),
        "wrong audience": (key.svid(aud="someone-else"), "audience_mismatch"),
        "multiple audiences": (key.svid(aud=["tether", "other"]), "audience_multiple"),
        "tampered payload": (_tamper(good, claims={"sub": HELPER}), "signature_invalid"),
        "tampered header": (_tamper(good, header={"typ": "JOSE"}), "signature_invalid"),
        "JSON serialization": (
            json.dumps({"payload": good.split(".")[1], "signatures": []}),
            "json_serialization_not_allowed",
        ),
        "extra header": (
            key.svid(header={"jku": "https://evil.example"}),
            "header_parameter_not_allowed",
        ),
        "SPIFFE ID with a port": (
            key.svid("spiffe://example.org:8443/agents/billing-bot"),
            "spiffe_id_invalid",
        ),
        "SPIFFE ID with dot segments": (
            key.svid("spiffe://example.org/agents/../admin"),
            "spiffe_id_invalid",
        ),
        "SPIFFE ID with a query": (
            key.svid("spiffe://example.org/agents/billing-bot?x=1"),
            "spiffe_id_invalid",
        ),
        "SPIFFE ID upper-case domain": (
            key.svid("spiffe://Example.org/agents/billing-bot"),
            "spiffe_id_invalid",
        ),
        "oversized": (key.svid(padding="x" * 20_000), "token_too_large"),
    }


def test_hostile_proofs_are_each_refused_with_their_own_code(
    server: ServerProcess, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    key, other = keys
    task_id = open_task(server, key)
    before = state(server)
    client_proof = key.svid()  # the caller authenticates; the subject token is the attack
    for name, (token, code) in hostile_proofs(key, other).items():
        form = exchange_form(
            token, task_id=task_id, subject_type="urn:ietf:params:oauth:token-type:jwt"
        )
        response = exchange(server, client_proof, form)
        body = response.json()
        where = f"{name}: {response.status_code} {body}"
        assert response.status_code == 400, where
        assert body["error"] == "invalid_request", where
        assert body["error_code"] == code, where
        assert body["error_description"], where
        assert token not in body["error_description"], where
    assert state(server) == before


def test_hostile_uses_of_task_tokens_are_each_refused(
    server: ServerProcess, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    key = keys[0]
    parent = task_token(server, key, open_task(server, key), scope="read_invoice")
    first = delegated(server, key, parent, HELPER)
    second = delegated(server, key, first.json()["access_token"], SUB_HELPER)
    assert second.status_code == 200, second.text  # depth 2: the class's limit
    revoked = task_token(server, key, open_task(server, key))
    with server.client("pep") as pep:
        assert pep.post("/oauth2/revoke", data={"token": revoked}).status_code == 200
    before = state(server)

    wider = delegated(server, key, parent, HELPER, scope="read_invoice send_email")
    assert (wider.status_code, wider.json()["error"]) == (400, "invalid_scope")
    assert wider.json()["error_code"] == "scope_exceeds_parent"

    deeper = delegated(server, key, second.json()["access_token"], HELPER)
    assert (deeper.status_code, deeper.json()["error_code"]) == (400, "delegation_depth_exceeded")

    replay = delegated(server, key, revoked, HELPER)
    assert (replay.status_code, replay.json()["error_code"]) == (400, "token_revoked")
    proof = key.svid()
    renewed = exchange(server, proof, exchange_form(revoked))
    assert renewed.json()["error_code"] == "token_revoked"

    forged = _tamper(parent, claims={"scope": "read_invoice send_email pay_invoice"})
    assert delegated(server, key, forged, HELPER).json()["error_code"] == "token_signature_invalid"
    assert state(server) == before


def test_exchange_protocol_errors_keep_rfc_6749_form(
    server: ServerProcess, keys: tuple[WorkloadKey, WorkloadKey]
) -> None:
    proof = keys[0].svid()
    with workload(server, proof) as client:
        wrong_grant = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
        json_body = client.post("/oauth2/token", json={"grant_type": "x"})
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    assert json_body.json() == {
        "error": "invalid_request",
        "error_description": "the body must be `application/x-www-form-urlencoded`",
        "error_code": "unsupported_media_type",
    }
    other = exchange(server, proof, exchange_form(proof, task_id="no-such-task"))
    assert (other.json()["error"], other.json()["error_code"]) == (
        "invalid_target",
        "task_not_found",
    )
