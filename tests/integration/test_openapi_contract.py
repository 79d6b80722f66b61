"""``/openapi.json`` is the API: schemathesis against a real ``tether serve``, once per role.

Schemathesis (the real tool, its command line) generates requests from the document served
by the server under test, with the credentials of an admin, an auditor, a PEP, an
ingest-only collector and an approver, and checks every answer: no server error, every
status documented, every media type documented, every body and header as documented,
``Allow`` listing exactly the documented methods. The estate is ``examples/agents`` (the
demo), so the generated requests meet real identities, policies and tools.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

ServerFactory = Any
ServerProcess = Any
ESTATE = Path(__file__).resolve().parents[2] / "examples" / "agents"
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "unsupported_method",
    )
)
#: Examples per operation: every operation is open to an admin, who gets the most; each
#: other role reaches a few operations and is refused the rest (a refusal is checked
#: against the document as well, but needs few examples to be).
EXAMPLES_PER_OPERATION = {"admin": 25, "auditor": 10, "pep": 10, "ingest": 8, "approver": 8}


@pytest.fixture(scope="module")
def server(module_server_factory: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("contract")
    return module_server_factory(db_url=f"sqlite:///{folder}/tether.db", estate=ESTATE)


def schemathesis(server: ServerProcess, role: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The schemathesis command line as ``role`` (its report files go to the server's folder)."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {server.credentials[role]}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION[role]),
        "--no-color",
        *extra,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=server.log_path.parent,
    )


@pytest.mark.parametrize("role", ["admin", "auditor", "pep", "ingest", "approver"])
def test_every_answer_is_as_documented(server: ServerProcess, role: str, figure: Any) -> None:
    done = schemathesis(server, role)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-20_000:] + done.stderr[-5_000:]
    generated = [line for line in done.stdout.splitlines() if "generated" in line]
    figure(f"schemathesis as {role}: {generated[-1].strip() if generated else summary}")


def test_the_document_declares_every_parameter_security_and_role(server: ServerProcess) -> None:
    document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) >= 40
    for path, method, operation in operations:
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        in_template = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        assert declared == in_template, (method, path)
        assert "x-tether-roles" in operation, (method, path)
        public = operation["x-tether-roles"] == []
        assert (operation["security"] == []) is public, (method, path)
        for status in ("408", "431", "503"):
            assert status in operation["responses"], (method, path, status)
        if not public:
            assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
    revoke = document["paths"]["/oauth2/revoke"]["post"]["responses"]["200"]
    assert "content" not in revoke  # RFC 7009: an empty body
    introspect = document["paths"]["/oauth2/introspect"]["post"]
    assert (
        "active"
        in introspect["responses"]["200"]["content"]["application/json"]["schema"]["required"]
    )
    assert set(document["components"]["securitySchemes"]) == {
        "pep_key",
        "workload_proof",
        "admin_token",
        "mtls",
    }


def test_a_window_too_wide_to_be_a_date_is_refused_not_a_server_error(
    server: ServerProcess,
) -> None:
    """Found by schemathesis: `expiring_within` of 15,668,746,124,286 s overflowed a date."""
    with server.client("auditor") as client:
        answer = client.get("/v1/exceptions", params={"expiring_within": "15668746124286"})
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "invalid_query"
    with server.client("auditor") as client:
        assert client.get("/v1/exceptions", params={"expiring_within": "86400"}).is_success


def test_options_on_a_path_lists_every_method_of_it(server: ServerProcess) -> None:
    with server.client("admin") as client:
        answer = client.options("/v1/exceptions")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, POST"
