"""A :class:`~tether.identity.TrustStore` built from the store's ``trust_anchors`` rows.

The estate stores each anchor's JWKS inline (``settings["jwks"]``) so every replica
verifies without the estate files; an OIDC anchor may name a ``jwks_uri`` instead. An
anchor tether cannot use is left out and logged, never trusted half-way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from tether.identity import JwksFetcher, TrustConfigInvalid, TrustStore

log = logging.getLogger(__name__)


def trust_store_from_anchors(
    anchors: Iterable[Mapping[str, Any]], *, fetcher: JwksFetcher | None = None
) -> TrustStore:
    """Trust every usable anchor of ``anchors`` (rows with ``name``, ``kind``, ``settings``)."""
    store = TrustStore(fetcher=fetcher)
    for anchor in anchors:
        name, kind, settings = anchor["name"], anchor["kind"], dict(anchor["settings"] or {})
        require_kid = bool(settings.get("require_kid", True))
        try:
            if kind == "spiffe" and settings.get("jwks") is not None:
                store.add_spiffe_domain(
                    name,
                    settings["jwks"],
                    audience=settings.get("audience"),
                    require_kid=require_kid,
                )
            elif kind == "oidc" and settings.get("jwks") is not None:
                store.add_oidc_issuer(
                    name,
                    jwks=settings["jwks"],
                    audience=settings.get("audience"),
                    require_kid=require_kid,
                )
            elif kind == "oidc" and settings.get("jwks_uri"):
                store.add_oidc_issuer(
                    name,
                    jwks_uri=settings["jwks_uri"],
                    audience=settings.get("audience"),
                    require_kid=require_kid,
                )
            else:
                log.warning("trust anchor `%s` has no keys; not trusted", name)
        except TrustConfigInvalid as exc:
            log.warning("trust anchor `%s` cannot be used: %s", name, exc.message)
    return store


def spiffe_trust_domains(anchors: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The trust domain names (``example.org``) of the SPIFFE anchors."""
    return frozenset(
        str(a["name"]).removeprefix("spiffe://") for a in anchors if a["kind"] == "spiffe"
    )
