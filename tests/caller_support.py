"""Test support for tether's callers: SVID keys and tokens, X.509 certificates, estates.

Everything is generated in the test: a JWT-SVID signing key and its bundle, JWT-SVIDs
and OIDC tokens, and a small PKI (CA per trust domain, server and client certificates,
an expired one) written as PEM files.
"""

from __future__ import annotations

import ipaddress
import json
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import ECKey

TRUST_DOMAIN = "spiffe://example.org"
AUDIENCE = "tether"


@dataclass(frozen=True)
class SvidSigner:
    """A JWT-SVID signing key of a trust domain and the bundle that publishes it."""

    key: ECKey

    @classmethod
    def make(cls, kid: str = "svid-1") -> SvidSigner:
        return cls(ECKey.generate_key("P-256", parameters={"kid": kid}))

    def jwks(self) -> dict[str, Any]:
        public = {**self.key.as_dict(private=False), "use": "jwt-svid", "alg": "ES256"}
        return {"keys": [public]}

    def token(
        self, sub: str, *, audience: str = AUDIENCE, ttl_s: int = 600, iss: str | None = None
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "aud": audience, "iat": now, "exp": now + ttl_s}
        if iss is not None:
            claims["iss"] = iss
        header = {"alg": "ES256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["ES256"])


def write_caller_estate(
    folder: Path, signer: SvidSigner, identities: str, *, policies: str | None = None
) -> Path:
    """An estate trusting ``spiffe://example.org`` (bundle from ``signer``), with
    ``identities`` (YAML list items, already indented by two spaces) and a read policy."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bundles").mkdir(exist_ok=True)
    (folder / "bundles" / "example.org.jwks.json").write_text(json.dumps(signer.jwks()))
    head = textwrap.dedent(
        f"""\
        trust:
          - spiffe: {TRUST_DOMAIN}
            jwks_file: bundles/example.org.jwks.json
        identities:
          - id: alice
            kind: user
            owner: team-a
        """
    )
    (folder / "estate.yaml").write_text(head + identities)
    (folder / "policies").mkdir(exist_ok=True)
    (folder / "policies" / "allow.cedar").write_text(
        policies or '@id("allow-read")\npermit(principal, action == Action::"read", resource);\n'
    )
    return folder


# --- X.509 -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def make_ca(trust_domain: str, *, name: str | None = None) -> Issued:
    """A self-signed CA of a SPIFFE trust domain (its URI SAN is the trust domain ID)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = name or f"CA of {trust_domain}"
    name_ = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name_)
        .issuer_name(name_)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(trust_domain)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    *,
    uris: tuple[str, ...] = (),
    server_ip: str | None = None,
    expired: bool = False,
    is_ca: bool = False,
) -> Issued:
    """A leaf certificate signed by ``ca``: an X.509-SVID (``uris``) or a server cert."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(days=10), now - timedelta(days=1))
        if expired
        else (now - timedelta(hours=1), now + timedelta(days=1))
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    if server_ip is not None:
        names.append(x509.IPAddress(ipaddress.ip_address(server_ip)))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)
