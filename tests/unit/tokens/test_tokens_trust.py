"""Trust anchors from the store: a trust store rebuilt when they change, CLI-made anchors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from tether.estate import apply_estate
from tether.identity import IdentityProofError, TrustConfigInvalid
from tether.services import Tether
from tether.store.tables import audit_log
from tether.tokens.trust import (
    WorkloadTrust,
    add_trust_anchor,
    list_trust_anchors,
    remove_trust_anchor,
    trust_store_from_rows,
)
from token_support import BILLING, Clock, WorkloadKey, write_estate

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_unusable_anchors_are_left_out_and_reported() -> None:
    rows = [
        {"name": "spiffe://a.org", "kind": "spiffe", "settings": {"jwks": {"keys": []}}},
        {"name": "spiffe://b.org", "kind": "spiffe", "settings": {}},
        {"name": "https://issuer.example", "kind": "oidc", "settings": {"audience": "x"}},
        {"name": "x", "kind": "saml", "settings": {}},
        {
            "name": "spiffe://c.org",
            "kind": "spiffe",
            "settings": {"jwks": {"keys": []}, "require_kid": "no"},
        },
    ]
    store, problems = trust_store_from_rows(rows)
    assert [str(d.trust_domain) for d in store.spiffe_domains] == ["a.org"]
    assert len(problems) == 4
    assert "no JWKS bundle" in problems[0]
    assert "no JWKS and no `jwks_uri`" in problems[1]
    assert "unknown kind" in problems[2]
    assert "`require_kid`" in problems[3]


def test_a_bundle_rotated_by_a_new_apply_is_used_without_restart(
    tether: Tether, tmp_path: object, workload_key: WorkloadKey, other_key: WorkloadKey
) -> None:
    clock = Clock()
    trust = WorkloadTrust(tether.engine, audience="tether", refresh_interval_s=1.0, clock=clock)
    rotated = WorkloadKey.generate("wk-2")
    try:
        assert trust.verify(workload_key.svid()).subject == BILLING
        with pytest.raises(IdentityProofError) as caught:
            trust.verify(rotated.svid())
        assert caught.value.code == "kid_unknown"
        from pathlib import Path

        folder = write_estate(Path(str(tmp_path)) / "rotated", rotated, other=other_key)
        apply_estate(tether.engine, folder)
        clock.advance(0.5)  # within the interval: the old view still serves
        with pytest.raises(IdentityProofError):
            trust.verify(rotated.svid())
        clock.advance(0.6)
        assert trust.verify(rotated.svid()).subject == BILLING
        with pytest.raises(IdentityProofError):
            trust.verify(workload_key.svid())  # the old key left the bundle
    finally:
        trust.close()


def test_anchors_added_from_the_cli_are_trusted_and_removable(
    tether: Tether, other_key: WorkloadKey
) -> None:
    engine = tether.engine
    jwks = {"keys": [WorkloadKey.generate("third-1").jwk()]}
    assert add_trust_anchor(
        engine, "spiffe://third.org/", {"jwks": jwks}, actor="cli", now=NOW
    ) == ("spiffe")
    listed = {a["name"]: a for a in list_trust_anchors(engine)}
    assert listed["spiffe://third.org"]["origin"] == "cli"
    assert listed["spiffe://third.org"]["keys"] == 1
    assert listed["spiffe://example.org"]["origin"] == "estate"
    assert all(a["usable"] for a in listed.values())
    view = tether.tasks.trust.refresh()
    assert {str(d.trust_domain) for d in view.store.spiffe_domains} == {
        "example.org",
        "other.org",
        "third.org",
    }
    # Adding again replaces the keys (a rotation); the estate's own anchors are not ours.
    add_trust_anchor(engine, "spiffe://third.org", {"jwks": {"keys": []}}, actor="cli", now=NOW)
    with pytest.raises(TrustConfigInvalid, match="declared by the estate"):
        add_trust_anchor(engine, "spiffe://example.org", {"jwks": jwks}, actor="cli", now=NOW)
    with pytest.raises(TrustConfigInvalid, match="declared by the estate"):
        remove_trust_anchor(engine, "spiffe://example.org", actor="cli", now=NOW)
    with pytest.raises(TrustConfigInvalid):
        add_trust_anchor(engine, "spiffe://bad.org", {"jwks": {"nokeys": 1}}, actor="cli", now=NOW)
    with pytest.raises(TrustConfigInvalid):
        add_trust_anchor(
            engine, "http://insecure.example", {"jwks_uri": "http://x"}, actor="cli", now=NOW
        )
    assert remove_trust_anchor(engine, "spiffe://third.org", actor="cli", now=NOW)
    assert not remove_trust_anchor(engine, "spiffe://third.org", actor="cli", now=NOW)
    with engine.connect() as connection:
        actions = list(
            connection.execute(
                select(audit_log.c.action).where(audit_log.c.action.like("trust.%"))
            ).scalars()
        )
    assert actions == ["trust.add", "trust.update", "trust.remove"]


def test_oidc_anchors_by_static_keys_or_uri(tether: Tether) -> None:
    engine = tether.engine
    jwks = {"keys": [{**WorkloadKey.generate("ci-1").jwk(), "use": "sig"}]}
    assert (
        add_trust_anchor(
            engine, "https://ci.example", {"jwks": jwks, "audience": "tether"}, actor="cli", now=NOW
        )
        == "oidc"
    )
    add_trust_anchor(
        engine,
        "https://idp.example",
        {"jwks_uri": "https://idp.example/jwks"},
        actor="cli",
        now=NOW,
    )
    view = tether.tasks.trust.refresh()
    assert {i.issuer for i in view.store.oidc_issuers} == {
        "https://ci.example",
        "https://idp.example",
    }
