"""Every route of the app, over real HTTP: who gets in, who is refused, and how.

The routes are enumerated from the application itself (its Starlette routes, the
hand-written AuthZEN paths and the ``ROUTE_ROLES`` registry), so a route added later is
tested without touching this file, and a route that declares no roles fails it. For
every route and method:

* no credentials, or credentials that do not verify: ``401`` with
  ``WWW-Authenticate: Bearer`` and a stable ``error_code`` (unless the route is one of
  the few public ones: health, discovery, OpenAPI, JWKS);
* each test caller that holds none of the route's roles: ``403`` ``role_forbidden``;
* each test caller that holds one of them: neither ``401`` nor ``403``.

The callers: a PEP API key, an ingest API key, admin tokens of an admin, an auditor and
an approver, and JWT-SVIDs of a workload and of a PEP. An auditor gets ``403`` on every
route that is not a GET.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from caller_support import SvidSigner, write_caller_estate
from tether.api.app import create_app
from tether.api.routing import ROUTE_ROLES
from tether.callers import PUBLIC, Role, add_api_key
from tether.config import load_settings
from tether.services import Tether
from tether.store.caller_tables import api_keys
from tether.store.engine import open_engine
from tether.store.key_tables import signing_keys

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
ServerProcess = Any

# The only routes anyone may call without credentials.
PUBLIC_PATHS = re.compile(r"^(/healthz|/readyz|/openapi\.json|/\.well-known/.+)$")
PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-z]+))?\}")
PARAM_VALUES = {"path": "x", "str": "x", "int": "1", "float": "1", "uuid": "0" * 32}

SVID_PEP = f"{'spiffe://example.org'}/gateways/pep"
SVID_WORKLOAD = f"{'spiffe://example.org'}/agents/bot"
IDENTITIES = f"""\
  - id: gateway
    kind: workload
    workload: {SVID_PEP}
    tether_roles: [pep]
  - id: bot
    kind: agent
    workload: {SVID_WORKLOAD}
"""

# What each test caller holds, as this test expects it (never read from the server).
CALLER_ROLES: dict[str, frozenset[Role]] = {
    "pep": frozenset({Role.PEP}),
    "ingest": frozenset({Role.INGEST}),
    "admin": frozenset({Role.ADMIN}),
    "auditor": frozenset({Role.AUDITOR}),
    "approver": frozenset({Role.APPROVER}),
    "workload": frozenset({Role.WORKLOAD}),
    "svid-pep": frozenset({Role.PEP, Role.WORKLOAD}),
}
BAD_CREDENTIALS = {
    "unknown key": "Bearer tpk_0123456789abcdef_" + "A" * 43,
    "garbage": "Bearer not-a-credential",
    "basic": "Basic YWxpY2U6c2VjcmV0",
    "bad jwt": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
}


def app_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves, plus every declared one."""
    settings = load_settings(
        {},
        database_url=f"sqlite:///{tmp_path}/enumerate.db",
        master_key_file=str(tmp_path / "master.key"),
    )
    tether = Tether(settings)
    try:
        app = create_app(tether)
        found = {("POST", path) for path in (*app._hot, *app._search)}
        for route in app.starlette.routes:
            methods = getattr(route, "methods", None) or {"GET"}
            found |= {(m, str(getattr(route, "path", ""))) for m in methods if m != "HEAD"}
        app.gate.close()
    finally:
        tether.close()
    return found | set(ROUTE_ROLES)


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    return sorted(app_routes(tmp_path_factory.mktemp("enumerate")))


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    module_db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ServerProcess, dict[str, str]]:
    signer = SvidSigner.make()
    estate = write_caller_estate(tmp_path_factory.mktemp("estate"), signer, IDENTITIES)
    server = module_server_factory(db_url=module_db_url, estate=estate)
    engine = open_engine(module_db_url)
    try:
        ingest = add_api_key(engine, "ingester", roles=[Role.INGEST]).key
    finally:
        engine.dispose()
    credentials = {name: f"Bearer {token}" for name, token in server.credentials.items()}
    credentials["ingest"] = f"Bearer {ingest}"
    credentials["workload"] = f"Bearer {signer.token(SVID_WORKLOAD)}"
    credentials["svid-pep"] = f"Bearer {signer.token(SVID_PEP)}"
    for name, authorization in credentials.items():  # a key made after start: within 1 s
        deadline = time.monotonic() + 2
        while call(server, "GET", "/metrics", authorization).status_code == 401:
            assert time.monotonic() < deadline, f"{name} never authenticated"
            time.sleep(0.05)
    return server, credentials


def concrete(path: str) -> str:
    return PARAM.sub(lambda m: PARAM_VALUES.get(m.group(2) or "str", "x"), path)


def call(
    server: ServerProcess, method: str, path: str, authorization: str | None
) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    body = {"json": {}} if method not in ("GET", "HEAD", "DELETE") else {}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return client.request(method, concrete(path), headers=headers, **body)


def error_code(response: httpx.Response) -> str:
    return str(response.json().get("error_code"))


def test_every_route_declares_its_roles(routes: list[tuple[str, str]]) -> None:
    undeclared = [f"{m} {p}" for m, p in routes if (m, p) not in ROUTE_ROLES]
    assert not undeclared, f"routes without declared roles (use routing.secured): {undeclared}"


def test_only_health_discovery_and_openapi_are_public(routes: list[tuple[str, str]]) -> None:
    public = [f"{m} {p}" for m, p in routes if ROUTE_ROLES.get((m, p)) == PUBLIC]
    assert public, "health and discovery are public"
    wrong = [r for r in public if not PUBLIC_PATHS.match(r.split(" ", 1)[1])]
    assert not wrong, f"routes open to anyone that must not be: {wrong}"


def test_no_route_lets_an_auditor_change_anything(routes: list[tuple[str, str]]) -> None:
    for method, path in routes:
        if method not in ("GET", "HEAD"):
            assert Role.AUDITOR not in ROUTE_ROLES[(method, path)], f"{method} {path}"


def test_unauthenticated_calls_are_refused_with_401(
    server: tuple[ServerProcess, dict[str, str]], routes: list[tuple[str, str]]
) -> None:
    process, _ = server
    for method, path in routes:
        response = call(process, method, path, None)
        where = f"{method} {path}: {response.status_code} {response.text[:200]}"
        if ROUTE_ROLES[(method, path)] == PUBLIC:
            assert response.status_code not in (401, 403), where
            continue
        assert response.status_code == 401, where
        assert response.headers["www-authenticate"].startswith("Bearer "), where
        assert error_code(response) == "credentials_missing", where
        assert response.headers["cache-control"] == "no-store", where


def test_credentials_that_do_not_verify_are_refused_with_401(
    server: tuple[ServerProcess, dict[str, str]], routes: list[tuple[str, str]]
) -> None:
    process, _ = server
    for method, path in routes:
        if ROUTE_ROLES[(method, path)] == PUBLIC:
            continue
        for what, authorization in BAD_CREDENTIALS.items():
            response = call(process, method, path, authorization)
            where = f"{method} {path} with {what}: {response.status_code} {response.text[:200]}"
            assert response.status_code == 401, where
            assert 'error="invalid_token"' in response.headers["www-authenticate"], where
            assert error_code(response) != "credentials_missing", where


def test_each_caller_gets_in_exactly_where_its_roles_allow(
    server: tuple[ServerProcess, dict[str, str]], routes: list[tuple[str, str]]
) -> None:
    process, credentials = server
    assert set(credentials) == set(CALLER_ROLES)
    for method, path in routes:
        roles = ROUTE_ROLES[(method, path)]
        if roles == PUBLIC:
            continue
        allowed = [name for name, held in CALLER_ROLES.items() if held & roles]
        assert allowed, f"no test caller holds a role of {method} {path}: {sorted(roles)}"
        for name, held in CALLER_ROLES.items():
            response = call(process, method, path, credentials[name])
            where = f"{name} on {method} {path}: {response.status_code} {response.text[:300]}"
            if held & roles:
                assert response.status_code not in (401, 403), where
            else:
                assert response.status_code == 403, where
                assert error_code(response) == "role_forbidden", where


def test_an_auditor_is_refused_on_every_route_that_is_not_a_get(
    server: tuple[ServerProcess, dict[str, str]], routes: list[tuple[str, str]]
) -> None:
    process, credentials = server
    changing = [(m, p) for m, p in routes if m not in ("GET", "HEAD")]
    assert changing
    for method, path in changing:
        response = call(process, method, path, credentials["auditor"])
        assert response.status_code == 403, f"{method} {path}: {response.text[:200]}"


def test_the_raw_key_is_accepted_like_bearer(
    server: tuple[ServerProcess, dict[str, str]],
) -> None:
    process, credentials = server
    raw = credentials["pep"].removeprefix("Bearer ")
    body = {
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "doc", "id": "d1"},
    }
    with httpx.Client(base_url=process.url, timeout=10) as client:
        for authorization in (raw, f"Bearer {raw}", f"bearer  {raw}"):
            response = client.post(
                "/access/v1/evaluation", json=body, headers={"Authorization": authorization}
            )
            assert response.status_code == 200, response.text
            assert response.json()["decision"] is True


def test_no_answer_carries_a_key_hash_or_a_signing_key(
    server: tuple[ServerProcess, dict[str, str]], routes: list[tuple[str, str]]
) -> None:
    process, credentials = server
    engine = open_engine(process.db_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(select(api_keys.c.salt, api_keys.c.secret_hash)).all()
            sealed = connection.execute(select(signing_keys.c.private_key_enc)).scalars().all()
    finally:
        engine.dispose()
    secrets = [s for row in stored for s in row] + list(sealed)
    presented = [c.removeprefix("Bearer ") for c in credentials.values()]
    # An API key's secret part, or a whole token.
    secrets += [c.split("_", 2)[2] if c.startswith("tpk_") else c for c in presented]
    assert secrets
    identities = call(process, "GET", "/v1/identities", credentials["admin"]).json()
    paths = {f"/v1/identities/{i['id']}" for i in identities["identities"]}
    readable = [p for m, p in routes if m == "GET" and "{" not in p] + sorted(paths)
    # `/v1/paths` answers only with an `identity` (a 400 problem without one).
    some = quote(identities["identities"][0]["id"])
    readable = [f"{p}?identity={some}" if p == "/v1/paths" else p for p in readable]
    for path in readable:
        response = call(process, "GET", path, credentials["admin"])
        assert response.status_code == 200, f"{path}: {response.text[:200]}"
        for secret in secrets:
            assert secret not in response.text, f"{path} leaks a secret"
        assert '"d":' not in response.text, f"{path} leaks a private JWK"
