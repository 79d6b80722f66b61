"""Mapping verified workloads to tether identities."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest
from identity_support import ISSUER, NOW, WORKLOAD

from tether.identity import SpiffeId, VerifiedWorkload, WorkloadBinding, resolve_identity
from tether.identity.errors import IdentityProofError, TrustConfigInvalid, UnknownWorkload


def svid(sub: str = WORKLOAD) -> VerifiedWorkload:
    spiffe_id = SpiffeId.parse(sub)
    return VerifiedWorkload(
        kind="spiffe",
        spiffe_id=spiffe_id,
        issuer=str(spiffe_id.trust_domain.id),
        subject=sub,
        audience="tether",
        expires_at=NOW + timedelta(minutes=5),
        kid="k",
        alg="ES256",
        claims=MappingProxyType({"sub": sub}),
        token_id="t",
    )


def oidc(sub: str = "repo:acme/app:ref:refs/heads/main", **claims: Any) -> VerifiedWorkload:
    return VerifiedWorkload(
        kind="oidc",
        spiffe_id=None,
        issuer=ISSUER,
        subject=sub,
        audience="tether",
        expires_at=NOW + timedelta(minutes=5),
        kid="k",
        alg="RS256",
        claims=MappingProxyType({"iss": ISSUER, "sub": sub, **claims}),
        token_id="t",
    )


BINDINGS = [
    WorkloadBinding.for_spiffe_id("billing-bot", WORKLOAD),
    WorkloadBinding.for_subject("deployer", ISSUER, "repo:acme/app:ref:refs/heads/main"),
    WorkloadBinding.for_claims("ci", ISSUER, {"repository": "acme/app", "runner_public": False}),
]


def test_spiffe_id_binding_is_exact() -> None:
    assert resolve_identity(svid(), BINDINGS) == "billing-bot"
    for other in (WORKLOAD + "-2", WORKLOAD + "/sub", "spiffe://example.com/agents/billing-bot"):
        with pytest.raises(UnknownWorkload) as caught:
            resolve_identity(svid(other), BINDINGS)
        assert caught.value.code == "workload_unknown"
        assert f"`{other}`" in caught.value.message
        assert isinstance(caught.value, IdentityProofError)


def test_subject_binding() -> None:
    assert resolve_identity(oidc(), BINDINGS) == "deployer"


def test_subject_wins_over_claims() -> None:
    workload = oidc(repository="acme/app", runner_public=False)
    assert resolve_identity(workload, BINDINGS) == "deployer"


def test_claims_binding() -> None:
    workload = oidc("repo:acme/app:pull_request", repository="acme/app", runner_public=False)
    assert resolve_identity(workload, BINDINGS) == "ci"


@pytest.mark.parametrize(
    "claims",
    [
        {"repository": "acme/app"},  # one claim missing
        {"repository": "acme/app", "runner_public": True},
        {"repository": "acme/app", "runner_public": 0},  # 0 == False in Python, not here
        {"repository": "acme/app", "runner_public": "false"},
        {"repository": "ACME/app", "runner_public": False},
    ],
)
def test_claims_must_all_match_type_included(claims: dict[str, Any]) -> None:
    with pytest.raises(UnknownWorkload):
        resolve_identity(oidc("other", **claims), BINDINGS)


def test_issuer_must_match() -> None:
    workload = oidc()
    foreign = VerifiedWorkload(**{**workload.__dict__, "issuer": "https://evil.example"})
    with pytest.raises(UnknownWorkload):
        resolve_identity(foreign, BINDINGS)


def test_spiffe_binding_never_matches_an_oidc_subject() -> None:
    """An OIDC issuer minting `sub: spiffe://...` does not become that SPIFFE workload."""
    with pytest.raises(UnknownWorkload):
        resolve_identity(oidc(WORKLOAD), [WorkloadBinding.for_spiffe_id("billing-bot", WORKLOAD)])


def test_ambiguous_bindings_are_refused() -> None:
    bindings = [*BINDINGS, WorkloadBinding.for_spiffe_id("imposter", WORKLOAD)]
    with pytest.raises(IdentityProofError) as caught:
        resolve_identity(svid(), bindings)
    assert caught.value.code == "workload_ambiguous"
    assert "`billing-bot`" in caught.value.message
    assert "`imposter`" in caught.value.message


def test_duplicate_bindings_to_one_identity_are_fine() -> None:
    assert resolve_identity(svid(), [*BINDINGS, BINDINGS[0]]) == "billing-bot"


def test_no_bindings() -> None:
    with pytest.raises(UnknownWorkload):
        resolve_identity(svid(), [])


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        (WORKLOAD, WorkloadBinding.for_spiffe_id("x", WORKLOAD)),
        ({"issuer": ISSUER, "subject": "s"}, WorkloadBinding.for_subject("x", ISSUER, "s")),
        (
            {"issuer": ISSUER, "claims": {"repository": "acme/app"}},
            WorkloadBinding.for_claims("x", ISSUER, {"repository": "acme/app"}),
        ),
    ],
)
def test_from_estate_workload(workload: Any, expected: WorkloadBinding) -> None:
    assert WorkloadBinding.from_workload("x", workload) == expected


@pytest.mark.parametrize(
    "workload",
    [
        "spiffe://example.org/a/",
        "not a spiffe id",
        {"issuer": ISSUER},
        {"subject": "s"},
        {"issuer": ISSUER, "subject": "s", "claims": {"a": "b"}},
        {"issuer": ISSUER, "claims": {}},
        {"issuer": ISSUER, "claims": {"a": ["list"]}},
        {"issuer": ISSUER, "claims": {"a": None}},
        {"issuer": ISSUER, "subject": "s", "extra": 1},
        {"issuer": "", "subject": "s"},
    ],
)
def test_bad_estate_workloads(workload: Any) -> None:
    with pytest.raises(TrustConfigInvalid):
        WorkloadBinding.from_workload("x", workload)


def test_binding_needs_an_identity() -> None:
    with pytest.raises(TrustConfigInvalid):
        WorkloadBinding.for_spiffe_id("", WORKLOAD)
