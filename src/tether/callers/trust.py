"""A :class:`~tether.identity.TrustStore` for authenticating callers, from ``trust_anchors`` rows.

The same anchors, read the same way, as workload proofs use (:mod:`tether.tokens.trust`):
an anchor tether cannot use is left out and logged, never trusted half-way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from tether.identity import JwksFetcher, TrustStore
from tether.tokens.trust import SPIFFE, trust_store_from_rows

log = logging.getLogger(__name__)


def trust_store_from_anchors(
    anchors: Iterable[Mapping[str, Any]], *, fetcher: JwksFetcher | None = None
) -> TrustStore:
    """Trust every usable anchor of ``anchors`` (rows with ``name``, ``kind``, ``settings``)."""
    store, problems = trust_store_from_rows(anchors, fetcher=fetcher)
    for problem in problems:
        log.warning("%s", problem)
    return store


def spiffe_trust_domains(anchors: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The trust domain names (``example.org``) of the SPIFFE anchors."""
    return frozenset(
        str(a["name"]).removeprefix("spiffe://") for a in anchors if a["kind"] == SPIFFE
    )
