"""mTLS: PEPs proving themselves with X.509-SVIDs, against a real ``tether serve``.

A small PKI is made per module: a CA per trust domain (``example.org`` and
``other.org``, both in the client CA bundle), a rogue CA nobody trusts, the server's
certificate, and client certificates. The estate trusts ``spiffe://example.org`` only and
binds ``spiffe://example.org/gateways/pep`` to a PEP. What must happen:

* the PEP's SVID gets decisions, attributed to it;
* an SVID of another trust domain, one that another trust domain's CA issued for ours,
  one with no SPIFFE ID and one bound to nobody are refused at the HTTP layer (401, each
  with its own ``error_code``);
* a certificate from an unknown CA and an expired one are refused at the TLS layer (the
  handshake fails with the alert saying why);
* no certificate: the bearer credentials still work (401 without them), and with
  ``--require-client-cert`` the TLS layer refuses the connection.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from caller_support import Issued, SvidSigner, issue, make_ca, write_caller_estate

pytestmark = pytest.mark.slow

ServerFactory = Callable[..., Any]
PEP_ID = "spiffe://example.org/gateways/pep"
EVALUATION = {
    "subject": {"type": "user", "id": "alice"},
    "action": {"name": "read"},
    "resource": {"type": "doc", "id": "d1"},
}
IDENTITIES = f"""\
  - id: gateway
    kind: workload
    workload: {PEP_ID}
    tether_roles: [pep]
"""


@dataclass
class Pki:
    folder: Path
    ca: Issued
    bundle: Path
    server: tuple[Path, Path]
    clients: dict[str, tuple[Path, Path]]

    def context(self, client: str | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.folder / "ca.pem"))
        if client is not None:
            cert, key = self.clients[client]
            context.load_cert_chain(str(cert), str(key))
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, other, rogue = (
        make_ca("spiffe://example.org"),
        make_ca("spiffe://other.org"),
        make_ca("spiffe://example.org", name="a CA nobody trusts"),
    )
    ca.write(folder, "ca")
    bundle = folder / "bundle.pem"
    bundle.write_bytes(
        (folder / "ca.pem").read_bytes() + other.write(folder, "other-ca")[0].read_bytes()
    )
    clients = {
        "pep": issue(ca, uris=(PEP_ID,)),
        "other-domain": issue(other, uris=("spiffe://other.org/gateways/pep",)),
        "cross-domain": issue(other, uris=(PEP_ID,)),  # other.org's CA minting example.org
        "unbound": issue(ca, uris=("spiffe://example.org/gateways/nobody",)),
        "no-spiffe-id": issue(ca),
        "rogue-ca": issue(rogue, uris=(PEP_ID,)),
        "expired": issue(ca, uris=(PEP_ID,), expired=True),
    }
    return Pki(
        folder,
        ca,
        bundle,
        issue(ca, server_ip="127.0.0.1").write(folder, "server"),
        {name: cert.write(folder, name) for name, cert in clients.items()},
    )


def tls_options(pki: Pki, *more: str) -> list[str]:
    cert, key = pki.server
    return ["--tls-cert", str(cert), "--tls-key", str(key), "--client-ca", str(pki.bundle), *more]


@pytest.fixture(scope="module")
def server(
    module_server_factory: ServerFactory,
    module_db_url: str,
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    estate = write_caller_estate(tmp_path_factory.mktemp("estate"), SvidSigner.make(), IDENTITIES)
    return module_server_factory(
        db_url=module_db_url, estate=estate, extra=tls_options(pki), https=pki.context(None)
    )


@pytest.fixture
def client_as(server: Any, pki: Pki) -> Iterator[Callable[..., httpx.Client]]:
    opened: list[httpx.Client] = []

    def make(certificate: str | None, headers: dict[str, str] | None = None) -> httpx.Client:
        client = httpx.Client(
            base_url=server.url, verify=pki.context(certificate), timeout=10, headers=headers
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def test_a_pep_with_a_trusted_svid_gets_decisions_attributed_to_it(
    client_as: Callable[..., httpx.Client], server: Any
) -> None:
    client = client_as("pep")
    response = client.post("/access/v1/evaluation", json=EVALUATION)
    assert response.status_code == 200, response.text
    assert response.json()["decision"] is True
    assert response.headers["strict-transport-security"].startswith("max-age=")
    decision_id = response.json()["context"]["decision_id"]
    deadline = time.monotonic() + 5
    while True:
        rows = client.get("/v1/decisions").json()["decisions"]  # a PEP reads its own
        mine = [r for r in rows if r["decision_id"] == decision_id]
        if mine:
            assert mine[0]["caller"] == "gateway"
            return
        assert time.monotonic() < deadline, "the decision was never recorded"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("certificate", "code", "mentions"),
    [
        ("other-domain", "trust_domain_unknown", "other.org"),
        ("cross-domain", "trust_domain_mismatch", "CA of trust domain `other.org`"),
        ("unbound", "caller_unknown", "spiffe://example.org/gateways/nobody"),
        ("no-spiffe-id", "client_certificate_invalid", "URI SAN"),
    ],
)
def test_svids_that_verify_in_tls_but_not_as_callers_get_401(
    client_as: Callable[..., httpx.Client], certificate: str, code: str, mentions: str
) -> None:
    response = client_as(certificate).post("/access/v1/evaluation", json=EVALUATION)
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == code
    assert mentions in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("certificate", "alert"), [("rogue-ca", "unknown ca"), ("expired", "certificate expired")]
)
def test_certificates_the_bundle_does_not_vouch_for_fail_the_tls_handshake(
    client_as: Callable[..., httpx.Client], certificate: str, alert: str
) -> None:
    with pytest.raises(httpx.TransportError) as refused:
        client_as(certificate).post("/access/v1/evaluation", json=EVALUATION)
    assert alert in str(refused.value).lower(), refused.value


def test_without_a_certificate_bearer_credentials_still_work(
    client_as: Callable[..., httpx.Client], server: Any
) -> None:
    anonymous = client_as(None).post("/access/v1/evaluation", json=EVALUATION)
    assert anonymous.status_code == 401
    assert anonymous.json()["error_code"] == "credentials_missing"
    with_key = client_as(None, server.auth_header("pep")).post(
        "/access/v1/evaluation", json=EVALUATION
    )
    assert with_key.status_code == 200, with_key.text


def test_a_required_client_certificate_is_enforced_at_the_tls_layer(
    server_factory: ServerFactory, db_url: str, pki: Pki, tmp_path: Path
) -> None:
    estate = write_caller_estate(tmp_path / "estate", SvidSigner.make(), IDENTITIES)
    strict = server_factory(
        db_url=db_url,
        estate=estate,
        extra=tls_options(pki, "--require-client-cert"),
        https=pki.context("pep"),
    )
    with (
        httpx.Client(base_url=strict.url, verify=pki.context(None), timeout=10) as anonymous,
        pytest.raises(httpx.TransportError) as refused,
    ):
        anonymous.post("/access/v1/evaluation", json=EVALUATION)
    assert "certificate required" in str(refused.value).lower(), refused.value
    with httpx.Client(base_url=strict.url, verify=pki.context("pep"), timeout=10) as pep:
        assert pep.post("/access/v1/evaluation", json=EVALUATION).status_code == 200


def test_the_sdk_client_authenticates_with_a_client_certificate(server: Any, pki: Pki) -> None:
    from tether.sdk import AuthenticationError, Client, ClientCertificate, Resource, Subject

    def sdk(name: str) -> Client:
        cert, key = pki.clients[name]
        credential = ClientCertificate(cert, key, ca_file=pki.folder / "ca.pem")
        return Client(server.url, credential=credential, timeout=10)

    alice, doc = Subject("user", "alice"), Resource("doc", "d1")
    with sdk("pep") as client:
        assert client.evaluate(alice, "read", doc).allowed
    with sdk("unbound") as client, pytest.raises(AuthenticationError) as refused:
        client.evaluate(alice, "read", doc)
    assert refused.value.error_code == "caller_unknown"
