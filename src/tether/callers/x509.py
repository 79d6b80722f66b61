"""X.509-SVIDs presented over mTLS (SPIFFE X509-SVID §4, §5): the SPIFFE ID of a client.

The TLS layer has already verified the chain against the configured client CA bundle;
this module reads the verified leaf and applies the SVID rules the TLS library does not:
exactly one URI SAN, a valid SPIFFE ID, not a CA certificate, no certificate-signing key
usage, and still inside its validity period (a connection may outlive its certificate).

A bundle may hold the CAs of several trust domains, and OpenSSL accepts a chain to any
of them. :class:`ClientCaBundle` keeps each CA's trust domain (its SPIFFE ID URI SAN, as
SPIFFE signing certificates carry) so that an SVID issued directly by the CA of another
trust domain is refused: a CA vouches for its own trust domain only. (An SVID issued by
an intermediate CA is judged by the TLS layer alone: Python 3.11 does not expose the
verified chain.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from tether.callers.errors import ClientCertificateInvalid
from tether.identity import SpiffeId
from tether.identity.errors import SpiffeIdInvalid


@dataclass(frozen=True)
class X509Svid:
    spiffe_id: SpiffeId
    not_after: datetime
    serial: str
    certificate: x509.Certificate = field(repr=False, compare=False)


def read_x509_svid(der: bytes, *, now: datetime | None = None) -> X509Svid:
    """The SPIFFE ID of a DER client certificate that follows the X.509-SVID rules.

    Raises:
        ClientCertificateInvalid: the certificate is not a usable X.509-SVID.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise ClientCertificateInvalid("the client certificate cannot be parsed") from None
    try:
        return _svid_of(cert, now or datetime.now(UTC))
    except ClientCertificateInvalid:
        raise
    except Exception:  # a malformed extension: cryptography parses them lazily
        raise ClientCertificateInvalid(
            "the client certificate's extensions cannot be read"
        ) from None


def _svid_of(cert: x509.Certificate, moment: datetime) -> X509Svid:
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise ClientCertificateInvalid(
            f"the client certificate is valid from {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} "
            f"to {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, not now"
        )
    try:
        constraints = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    except x509.ExtensionNotFound:
        constraints = None
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        raise ClientCertificateInvalid("the client certificate is a CA certificate, not an SVID")
    try:
        usage = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        usage = None
    if isinstance(usage, x509.KeyUsage) and (usage.key_cert_sign or usage.crl_sign):
        raise ClientCertificateInvalid("the client certificate may sign certificates (not an SVID)")
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier) if names else []
    if len(uris) != 1:
        raise ClientCertificateInvalid(
            f"an X.509-SVID has exactly one URI SAN (its SPIFFE ID); this one has {len(uris)}"
        )
    try:
        spiffe_id = SpiffeId.parse(uris[0])
    except SpiffeIdInvalid as exc:
        raise ClientCertificateInvalid(exc.message) from None
    return X509Svid(spiffe_id, cert.not_valid_after_utc, format(cert.serial_number, "x"), cert)


class ClientCaBundle:
    """The client CAs of an mTLS server, each with the trust domain it vouches for."""

    def __init__(self, cas: list[tuple[x509.Certificate, str | None]]) -> None:
        self._cas = cas

    @classmethod
    def from_pem_file(cls, path: Path) -> ClientCaBundle:
        cas = []
        for cert in x509.load_pem_x509_certificates(path.read_bytes()):
            cas.append((cert, _trust_domain_of(cert)))
        return cls(cas)

    def check_issuer(self, svid: X509Svid) -> None:
        """Refuse an SVID issued directly by a CA of another trust domain.

        Raises:
            ClientCertificateInvalid: ``trust_domain_mismatch``.
        """
        leaf = svid.certificate
        issuers = [(ca, domain) for ca, domain in self._cas if ca.subject == leaf.issuer]
        others = []
        for ca, domain in issuers:
            try:
                leaf.verify_directly_issued_by(ca)
            except Exception:  # noqa: S112 - another CA with the same name
                continue
            if domain is None or domain == svid.spiffe_id.trust_domain.name:
                return
            others.append(domain)
        if others:
            raise ClientCertificateInvalid(
                f"client certificate `{svid.spiffe_id}` is issued by the CA of trust domain "
                f"`{others[0]}`, which vouches for its own trust domain only",
                code="trust_domain_mismatch",
            )


def _trust_domain_of(ca: x509.Certificate) -> str | None:
    try:
        names = ca.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        try:
            return SpiffeId.parse(uri).trust_domain.name
        except SpiffeIdInvalid:
            continue
    return None
