"""Errors of workload identity proof (JWT-SVID.md, RFC 7515/7519, OpenID Connect Core).

Every refusal of a proof is an :class:`IdentityProofError`, an
:class:`~tether.errors.Unauthenticated` (HTTP 401), with a stable ``code`` that
names the failing check. Messages name the check and the offending value in
backticks, never the token itself::

    Unauthenticated
    └── IdentityProofError              identity_proof_invalid
        ├── TokenTooLarge               token_too_large
        ├── TokenMalformed              token_malformed
        ├── JsonSerializationNotAllowed json_serialization_not_allowed
        ├── HeaderParameterNotAllowed   header_parameter_not_allowed
        ├── AlgNotAllowed               alg_not_allowed
        ├── TypNotAllowed               typ_not_allowed
        ├── KidMissing                  kid_missing
        ├── KidUnknown                  kid_unknown
        ├── KeyUseInvalid               key_use_invalid
        ├── TrustDomainUnknown          trust_domain_unknown
        ├── IssuerUnknown               issuer_unknown
        ├── JwksUnavailable             jwks_unavailable
        ├── SignatureInvalid            signature_invalid
        ├── ClaimMissing                claim_missing
        ├── ClaimInvalid                claim_invalid
        ├── SpiffeIdInvalid             spiffe_id_invalid
        ├── AudienceMismatch            audience_mismatch
        ├── AudienceMultiple            audience_multiple
        ├── TokenExpired                token_expired
        ├── TokenNotYetValid            token_not_yet_valid
        ├── IssuedInFuture              issued_in_future
        ├── UnknownWorkload             workload_unknown
        └── WorkloadAmbiguous           workload_ambiguous
    InvalidRequest
    └── TrustConfigInvalid              trust_config_invalid

``SpiffeIdInvalid`` is also what :meth:`SpiffeId.parse` raises for any text;
code that parses SPIFFE IDs from configuration rather than from a token should
re-raise it as its own input error.
"""

from __future__ import annotations

from tether.errors import InvalidRequest, Unauthenticated

_MAX_SHOWN = 96


def shown(value: object) -> str:
    """A user value quoted in backticks for a message: bounded, printable, one line."""
    text = value if isinstance(value, str) else repr(value)
    if not text.isprintable() or "`" in text:
        text = repr(text)[1:-1].replace("`", "\\x60")
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return f"`{text}`"


class IdentityProofError(Unauthenticated):
    """A workload identity proof was refused; ``code`` names the failing check."""

    code = "identity_proof_invalid"


class TokenTooLarge(IdentityProofError):
    code = "token_too_large"


class TokenMalformed(IdentityProofError):
    code = "token_malformed"


class JsonSerializationNotAllowed(IdentityProofError):
    code = "json_serialization_not_allowed"


class HeaderParameterNotAllowed(IdentityProofError):
    code = "header_parameter_not_allowed"


class AlgNotAllowed(IdentityProofError):
    code = "alg_not_allowed"


class TypNotAllowed(IdentityProofError):
    code = "typ_not_allowed"


class KidMissing(IdentityProofError):
    code = "kid_missing"


class KidUnknown(IdentityProofError):
    code = "kid_unknown"


class KeyUseInvalid(IdentityProofError):
    code = "key_use_invalid"


class TrustDomainUnknown(IdentityProofError):
    code = "trust_domain_unknown"


class IssuerUnknown(IdentityProofError):
    code = "issuer_unknown"


class JwksUnavailable(IdentityProofError):
    """The issuer's keys could not be fetched, so the proof cannot be checked."""

    code = "jwks_unavailable"


class SignatureInvalid(IdentityProofError):
    code = "signature_invalid"


class ClaimMissing(IdentityProofError):
    code = "claim_missing"

    def __init__(self, claim: str, message: str | None = None) -> None:
        super().__init__(message or f"the token has no `{claim}` claim, which is required")
        self.claim = claim


class ClaimInvalid(IdentityProofError):
    code = "claim_invalid"

    def __init__(self, claim: str, message: str) -> None:
        super().__init__(message)
        self.claim = claim


class SpiffeIdInvalid(IdentityProofError):
    code = "spiffe_id_invalid"


class AudienceMismatch(IdentityProofError):
    code = "audience_mismatch"


class AudienceMultiple(IdentityProofError):
    code = "audience_multiple"


class TokenExpired(IdentityProofError):
    code = "token_expired"


class TokenNotYetValid(IdentityProofError):
    code = "token_not_yet_valid"


class IssuedInFuture(IdentityProofError):
    code = "issued_in_future"


class UnknownWorkload(IdentityProofError):
    """A proof verified, but no binding maps the workload to a tether identity."""

    code = "workload_unknown"


class WorkloadAmbiguous(IdentityProofError):
    """Equally specific bindings map one workload to different identities."""

    code = "workload_ambiguous"


class TrustConfigInvalid(InvalidRequest):
    """A bundle, JWKS document or trust setting that tether cannot use."""

    code = "trust_config_invalid"
