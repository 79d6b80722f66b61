"""A store with callers of every kind: an estate with SPIFFE and OIDC trust, a key ring."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from caller_support import SvidSigner, write_caller_estate
from tether.callers import Authenticator, CallerDirectory
from tether.estate import apply_estate
from tether.tokens import KeyRing, load_or_create_master_key

OIDC_ISSUER = "https://idp.example.org"
GATEWAY = "spiffe://example.org/gateways/pep"
BOT = "spiffe://example.org/agents/bot"
IDENTITIES = f"""\
  - id: gateway
    kind: workload
    workload: {GATEWAY}
    tether_roles: [pep]
  - id: bot
    kind: agent
    workload: {BOT}
  - id: carol
    kind: user
    workload: {{issuer: "{OIDC_ISSUER}", subject: "carol-sub"}}
    tether_roles: [auditor, approver]
"""


@dataclass
class World:
    engine: Engine
    keys: KeyRing
    directory: CallerDirectory
    authenticator: Authenticator
    svid: SvidSigner
    idp: SvidSigner
    estate: Path


def make_world(store: Engine, tmp_path: Path) -> World:
    svid, idp = SvidSigner.make("svid-1"), SvidSigner.make("idp-1")
    estate = write_caller_estate(tmp_path / "estate", svid, IDENTITIES)
    (estate / "bundles" / "idp.jwks.json").write_text(
        json.dumps({"keys": [{**idp.key.as_dict(private=False), "alg": "ES256"}]})
    )
    text = (
        (estate / "estate.yaml")
        .read_text()
        .replace(
            "identities:",
            f"  - oidc_issuer: {OIDC_ISSUER}\n    jwks_file: bundles/idp.jwks.json\n"
            "    audience: tether\nidentities:",
            1,
        )
    )
    (estate / "estate.yaml").write_text(text)
    apply_estate(store, estate)
    keys = KeyRing(store, load_or_create_master_key(tmp_path / "master.key"))
    directory = CallerDirectory(store)
    return World(
        store, keys, directory, Authenticator(directory, keys, audience="tether"), svid, idp, estate
    )
