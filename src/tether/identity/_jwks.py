"""Public key sets read from JWKS documents (RFC 7517 §5) and SPIFFE bundles.

A SPIFFE bundle (SPIFFE_Trust_Domain_and_Bundle.md §4) is a JWKS with optional
``spiffe_sequence`` and ``spiffe_refresh_hint``; JWT-SVID.md §6.2 says only the
keys whose ``use`` is ``jwt-svid`` verify JWT-SVIDs. tether reads both kinds the
same way, keeping only what it can use safely:

* RSA (at least 2048 bits) and EC (P-256, P-384, P-521) keys; other key types
  are ignored with a warning (bundle spec §4.2.1);
* a key without ``use`` is accepted (the go-spiffe fixtures have none, see
  DESIGN "JWT-SVID hardening"); a key whose ``use`` is anything else is kept
  aside as *refused*, so a token naming it gets ``key_use_invalid``;
* a key without ``kid`` is skipped with a warning (tether looks keys up by kid);
* a declared ``alg`` must be one tether accepts and fit the key;
* only the public members are imported, even if a publisher leaked ``d``;
* a duplicate ``kid`` or duplicate JSON member makes the whole document invalid.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Self

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from tether.identity._algorithms import EC_CURVES, JWT_SVID_ALGORITHMS, MIN_RSA_BITS, key_fits
from tether.identity.errors import TrustConfigInvalid, shown

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")
_MAX_KID_LENGTH = 256


@dataclass(frozen=True)
class PublicJwk:
    """One usable public key: its ``kid``, type, curve, declared ``alg`` and the key itself."""

    kid: str
    kty: str
    crv: str | None
    alg: str | None
    key: ECKey | RSAKey = field(repr=False, compare=False)


def _parse_document(document: Mapping[str, Any] | str | bytes, source: str) -> Mapping[str, Any]:
    if isinstance(document, Mapping):
        return document

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in pairs:
            if name in result:
                raise TrustConfigInvalid(f"{source} names {shown(name)} twice in one object")
            result[name] = value
        return result

    try:
        parsed = json.loads(document, object_pairs_hook=no_duplicates)
    except TrustConfigInvalid:
        raise
    except (ValueError, RecursionError) as exc:
        raise TrustConfigInvalid(f"{source} is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise TrustConfigInvalid(f"{source} is not a JSON object")
    return parsed


def _import_public(entry: Mapping[str, Any], kty: str) -> tuple[ECKey | RSAKey, str | None]:
    """Import only the public members; ``ValueError`` says why a key cannot be used."""
    if kty == "EC":
        crv = entry.get("crv")
        if not isinstance(crv, str) or crv not in EC_CURVES:
            raise ValueError(f"curve {shown(crv)} is not supported")
        if not isinstance(entry.get("x"), str) or not isinstance(entry.get("y"), str):
            raise ValueError("`x` and `y` must be strings")
        key = ECKey.import_key({"kty": "EC", "crv": crv, "x": entry["x"], "y": entry["y"]})
        return key, str(crv)
    if not isinstance(entry.get("n"), str) or not isinstance(entry.get("e"), str):
        raise ValueError("`n` and `e` must be strings")
    n = entry["n"]
    # Size first: joserfc warns on importing a short key, and tether never uses one.
    bits = int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    if bits < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {bits} bits is shorter than {MIN_RSA_BITS}")
    return RSAKey.import_key({"kty": "RSA", "n": n, "e": entry["e"]}), None


@dataclass(frozen=True, eq=False)
class JwkKeySet:
    """Verification keys by ``kid``, read from a JWKS document (RFC 7517 §5).

    ``refused`` maps the ``kid`` of keys published for another ``use`` to that use;
    ``warnings`` says what was skipped and why, for the operator.
    """

    keys: Mapping[str, PublicJwk]
    refused: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    #: The ``use`` value accepted besides none at all.
    accepted_use: ClassVar[str] = "sig"
    default_source: ClassVar[str] = "the JWKS"

    @classmethod
    def from_jwks(
        cls, document: Mapping[str, Any] | str | bytes, *, source: str | None = None
    ) -> Self:
        """Read a JWKS document (a mapping, or its JSON text).

        Raises:
            TrustConfigInvalid: not a JWKS, or two keys share a ``kid``.
        """
        source = source or cls.default_source
        parsed = _parse_document(document, source)
        entries = parsed.get("keys")
        if not isinstance(entries, list):
            raise TrustConfigInvalid(f"{source} has no `keys` array")
        keys: dict[str, PublicJwk] = {}
        refused: dict[str, str] = {}
        warnings: list[str] = []
        for index, entry in enumerate(entries):
            read = cls._read_key(entry, index, source, warnings)
            if read is None:
                continue
            kid, outcome = read
            if kid in keys or kid in refused:
                raise TrustConfigInvalid(f"{source} has two keys with kid {shown(kid)}")
            if isinstance(outcome, PublicJwk):
                keys[kid] = outcome
            else:
                refused[kid] = outcome
                warnings.append(f"{source}: key {shown(kid)} has `use` {shown(outcome)}; not used")
        return cls._build(parsed, keys, refused, warnings, source)

    @classmethod
    def _build(
        cls,
        parsed: Mapping[str, Any],
        keys: dict[str, PublicJwk],
        refused: dict[str, str],
        warnings: list[str],
        source: str,
    ) -> Self:
        return cls(MappingProxyType(keys), MappingProxyType(refused), tuple(warnings))

    @classmethod
    def _read_key(
        cls, entry: object, index: int, source: str, warnings: list[str]
    ) -> tuple[str, PublicJwk | str] | None:
        """``(kid, key)``, ``(kid, refused use)``, or ``None`` with a warning added."""
        where = f"{source}: key #{index}"
        if not isinstance(entry, dict):
            warnings.append(f"{where} is not a JSON object; skipped")
            return None
        kty = entry.get("kty")
        if kty not in ("RSA", "EC"):
            warnings.append(f"{where} has key type {shown(kty)}; only RSA and EC are used")
            return None
        raw_kid = entry.get("kid")
        kid = raw_kid if isinstance(raw_kid, str) and 0 < len(raw_kid) <= _MAX_KID_LENGTH else None
        use = entry.get("use")
        if use is not None and use != cls.accepted_use:
            if kid is not None:
                return kid, use if isinstance(use, str) else repr(use)
            warnings.append(f"{where} has `use` {shown(use)}; not used")
            return None
        if kid is None:
            warnings.append(f"{where} has no usable `kid`; skipped")
            return None
        where = f"{source}: key {shown(kid)}"
        key_ops = entry.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            warnings.append(f"{where} has `key_ops` without `verify`; skipped")
            return None
        try:
            key, crv = _import_public(entry, kty)
        except (ValueError, TypeError, JoseError) as exc:
            warnings.append(f"{where} cannot be used ({shown(str(exc))}); skipped")
            return None
        alg = entry.get("alg")
        jwk = PublicJwk(kid=kid, kty=kty, crv=crv, alg=None, key=key)
        if alg is not None:
            if not isinstance(alg, str) or alg not in JWT_SVID_ALGORITHMS or not key_fits(alg, jwk):
                warnings.append(f"{where} declares `alg` {shown(alg)}, unusable for it; skipped")
                return None
            jwk = PublicJwk(kid=kid, kty=kty, crv=crv, alg=alg, key=key)
        if any(member in entry for member in _PRIVATE_MEMBERS):
            # Still usable (only the public part is imported), but the publisher must be told.
            warnings.append(f"{where} publishes private key members; only its public part is used")
        return kid, jwk

    def get(self, kid: str) -> PublicJwk | None:
        """The key with this ``kid``, if it is usable."""
        return self.keys.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys

    def __iter__(self) -> Iterator[PublicJwk]:
        return iter(self.keys.values())

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True, eq=False)
class JwtSvidBundle(JwkKeySet):
    """The JWT-SVID keys of one trust domain's SPIFFE bundle (JWT-SVID.md §6.2).

    Keys with ``use: x509-svid`` (or any use but ``jwt-svid``) are refused; keys
    with no ``use`` are accepted. An empty bundle means the trust domain revoked
    its keys: every JWT-SVID from it is refused (bundle spec §4.1.3).
    """

    sequence: int | None = None
    refresh_hint_s: int | None = None

    accepted_use: ClassVar[str] = "jwt-svid"
    default_source: ClassVar[str] = "the bundle"

    @classmethod
    def _build(
        cls,
        parsed: Mapping[str, Any],
        keys: dict[str, PublicJwk],
        refused: dict[str, str],
        warnings: list[str],
        source: str,
    ) -> Self:
        sequence = parsed.get("spiffe_sequence")
        hint = parsed.get("spiffe_refresh_hint")
        return cls(
            MappingProxyType(keys),
            MappingProxyType(refused),
            tuple(warnings),
            sequence=sequence if type(sequence) is int else None,
            refresh_hint_s=hint if type(hint) is int else None,
        )
