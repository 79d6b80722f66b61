"""Authentication: from what a request carries to a :class:`~tether.callers.Caller`.

A request proves its caller in one of these ways (``Authorization`` wins over a client
certificate when both are present):

* ``Authorization: Bearer tpk_…`` (or the raw key, as the AuthZEN interop harness sends
  it): a PEP API key, checked against its salted hash;
* ``Authorization: Bearer <JWT>`` with ``typ: tether-admin+jwt``: an admin token tether
  signed (``tether admin token``);
* ``Authorization: Bearer <JWT>`` otherwise: a JWT-SVID or an OIDC token, verified by
  :mod:`tether.identity` against the store's trust anchors and mapped to the identity its
  ``workload:`` binds;
* an X.509-SVID the TLS layer verified (mTLS), mapped by its SPIFFE ID.

The caller's roles are the identity's tether roles; a workload that proved itself
cryptographically also holds ``workload``. Verified credentials are cached by the SHA-256
of what was presented until they expire or the caller directory changes (a new
generation), so a decision pays a hash and a dict lookup, not a signature check.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tether.callers.admin_tokens import ADMIN_TOKEN_TYPE, verify_admin_token
from tether.callers.api_keys import looks_like_api_key, parse_api_key, secret_matches
from tether.callers.directory import CallerDirectory, CallerRecord, DirectorySnapshot
from tether.callers.errors import (
    ApiKeyInvalid,
    CallerDisabled,
    CallerUnknown,
    ClientCertificateInvalid,
    CredentialsMissing,
    CredentialsUnsupported,
)
from tether.callers.roles import Caller, Role
from tether.callers.x509 import ClientCaBundle, read_x509_svid
from tether.identity import UnknownWorkload, resolve_identity, verify_workload_proof
from tether.tokens import KeyRing, TokenRejected, unverified_header

# A verified API key is re-checked at least this often even without a directory change.
_API_KEY_TTL_S = 300.0
_KEY_RELOAD_EVERY_S = 1.0
_REFRESH_ON_MISS_EVERY_S = 1.0
_MISSING = "no credentials: send `Authorization: Bearer <PEP key or token>` or a client certificate"


@dataclass(frozen=True)
class _Verified:
    caller: Caller
    expires: float  # epoch seconds
    generation: int


def describe_credential(authorization: str | None, peer_cert: bytes | None) -> str | None:
    """How logs and the audit trail name a credential: by key id or hash prefix only."""
    if authorization:
        text = authorization.split(" ", 1)[-1].strip()
        presented = parse_api_key(text)
        if presented is not None:
            return f"api_key:{presented.key_id}"
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
        return f"{'jwt' if text.count('.') == 2 else 'credential'}:sha256:{digest}"
    if peer_cert:
        return f"x509:sha256:{hashlib.sha256(peer_cert).hexdigest()[:16]}"
    return None


class Authenticator:
    """Turns presented credentials into callers; one per server, used from its event loop."""

    def __init__(
        self,
        directory: CallerDirectory,
        keys: KeyRing,
        *,
        audience: str,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
        client_cas: ClientCaBundle | None = None,
    ) -> None:
        self._directory = directory
        self._client_cas = client_cas
        self._keys = keys
        self._audience = audience
        self._clock = clock
        self._cache_size = cache_size
        self._cache: dict[bytes, _Verified] = {}
        self._keys_reloaded = 0.0
        self._refreshed_on_miss = 0.0

    def authenticate(
        self, authorization: str | bytes | None, peer_cert: bytes | None = None
    ) -> Caller:
        """The caller a request's ``Authorization`` value or client certificate proves.

        Raises:
            Unauthenticated: with a code naming what was wrong (see ``callers.errors``).
        """
        raw = authorization.encode("latin-1") if isinstance(authorization, str) else authorization
        # The cache key is the hash of what was presented, as it was presented: a hit
        # costs one SHA-256 and a lookup, no parsing.
        if raw:
            presented = b"a:" + raw
        elif peer_cert:
            presented = b"c:" + peer_cert
        else:
            raise CredentialsMissing(_MISSING)
        digest = hashlib.sha256(presented).digest()
        snapshot = self._directory.snapshot
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit.generation == snapshot.generation and now < hit.expires:
            return hit.caller
        credential = _credential(raw.decode("latin-1")) if raw else ""
        if not credential and not peer_cert:
            raise CredentialsMissing(_MISSING)
        try:
            caller, expires = self._verify(credential, peer_cert, snapshot, now)
        except (ApiKeyInvalid, CallerUnknown, UnknownWorkload):
            # Perhaps made a moment ago (`tether pep add`, an apply): look at the store
            # once more, but at most once a second, so unknown credentials cannot make
            # every request a database query.
            if now - self._refreshed_on_miss < _REFRESH_ON_MISS_EVERY_S:
                raise
            self._refreshed_on_miss = now
            if not self._directory.refresh():
                raise
            snapshot = self._directory.snapshot
            caller, expires = self._verify(credential, peer_cert, snapshot, now)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[digest] = _Verified(caller, expires, snapshot.generation)
        return caller

    def _verify(
        self, credential: str, peer_cert: bytes | None, snapshot: DirectorySnapshot, now: float
    ) -> tuple[Caller, float]:
        if credential:
            return self._verify_text(credential, snapshot, now)
        assert peer_cert is not None
        return self._verify_certificate(peer_cert, snapshot, now)

    # --- the kinds of credential -------------------------------------------------------

    def _verify_text(
        self, text: str, snapshot: DirectorySnapshot, now: float
    ) -> tuple[Caller, float]:
        if looks_like_api_key(text):
            return self._verify_api_key(text, snapshot, now)
        if text.count(".") != 2:
            raise CredentialsUnsupported(
                "the credential is neither a tether API key (`tpk_…`) nor a JWT"
            )
        if unverified_header(text).get("typ") == ADMIN_TOKEN_TYPE:
            return self._verify_admin_token(text, snapshot, now)
        verified = verify_workload_proof(text, snapshot.trust, audience=self._audience)
        identity_id = resolve_identity(verified, snapshot.bindings)
        record = _active(snapshot, identity_id)
        credential = "jwt_svid" if verified.kind == "spiffe" else "oidc"
        caller = Caller(
            identity_id,
            _workload_roles(record),
            credential,
            verified.token_id,
            {"subject": verified.subject, "issuer": verified.issuer},
        )
        return caller, verified.expires_at.timestamp()

    def _verify_api_key(
        self, text: str, snapshot: DirectorySnapshot, now: float
    ) -> tuple[Caller, float]:
        presented = parse_api_key(text)
        if presented is None:
            raise ApiKeyInvalid("the API key is malformed (expected `tpk_<key id>_<secret>`)")
        stored = snapshot.keys.get(presented.key_id)
        if stored is None or not secret_matches(presented, stored.salt, stored.secret_hash):
            raise ApiKeyInvalid(
                f"API key `{presented.key_id}` is not valid (unknown, revoked or mistyped)"
            )
        record = _active(snapshot, stored.identity_id)
        caller = Caller(record.identity_id, record.roles, "api_key", presented.key_id)
        return caller, now + _API_KEY_TTL_S

    def _verify_admin_token(
        self, text: str, snapshot: DirectorySnapshot, now: float
    ) -> tuple[Caller, float]:
        try:
            claims = verify_admin_token(self._keys, text)
        except TokenRejected as exc:
            # A key made after this server loaded its key ring (by the CLI): look once more.
            if exc.code != "token_key_unknown" or now - self._keys_reloaded < _KEY_RELOAD_EVERY_S:
                raise
            self._keys_reloaded = now
            self._keys.reload()
            claims = verify_admin_token(self._keys, text)
        record = _active(snapshot, claims.user)
        if record.kind != "user":
            raise CallerUnknown(f"admin token subject `{claims.user}` is not a `user` identity")
        caller = Caller(record.identity_id, claims.roles & record.roles, "admin_token", claims.jti)
        return caller, claims.expires_at.timestamp()

    def _verify_certificate(
        self, der: bytes, snapshot: DirectorySnapshot, now: float
    ) -> tuple[Caller, float]:
        svid = read_x509_svid(der, now=datetime.fromtimestamp(now, UTC))
        domain = svid.spiffe_id.trust_domain.name
        if domain not in snapshot.spiffe_domains:
            raise ClientCertificateInvalid(
                f"trust domain `{domain}` of client certificate `{svid.spiffe_id}` is not trusted",
                code="trust_domain_unknown",
            )
        if self._client_cas is not None:
            self._client_cas.check_issuer(svid)
        identity_id = snapshot.spiffe_ids.get(str(svid.spiffe_id))
        if identity_id is None:
            raise CallerUnknown(f"no identity is bound to `{svid.spiffe_id}`")
        record = _active(snapshot, identity_id)
        caller = Caller(
            identity_id,
            _workload_roles(record),
            "x509_svid",
            f"x509:{svid.serial}",
            {"subject": str(svid.spiffe_id)},
        )
        return caller, svid.not_after.timestamp()


def _credential(authorization: str) -> str:
    """The credential in an ``Authorization`` value: ``Bearer <credential>`` or bare."""
    scheme, space, rest = authorization.strip().partition(" ")
    if not space:
        if scheme.lower() == "bearer":
            raise CredentialsMissing("`Authorization: Bearer` carries no credential")
        return scheme
    if scheme.lower() != "bearer":
        shown = scheme[:20].encode("ascii", "replace").decode()
        raise CredentialsUnsupported(
            f"`{shown}` credentials are not accepted; send `Authorization: Bearer <key or token>`"
        )
    credential = rest.strip()
    if not credential:
        raise CredentialsMissing("`Authorization: Bearer` carries no credential")
    return credential


def _active(snapshot: DirectorySnapshot, identity_id: str) -> CallerRecord:
    record = snapshot.identities.get(identity_id)
    if record is None:
        raise CallerUnknown(f"identity `{identity_id}` is not in the inventory")
    if not record.active:
        raise CallerDisabled(f"identity `{identity_id}` is {record.status}")
    return record


def _workload_roles(record: CallerRecord) -> frozenset[Role]:
    # A workload that proved itself may open its own tasks; people never hold `workload`.
    return record.roles if record.kind == "user" else record.roles | {Role.WORKLOAD}
