"""Principal rules: from raw principals to estate identity ids, and discovered identities."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.telemetry import (
    UNKNOWN_PRINCIPAL,
    MatchBy,
    PrincipalKind,
    PrincipalResolver,
    PrincipalRule,
    PrincipalRuleInvalid,
    RawPrincipal,
    Source,
    discovered_identity,
    resolve,
)
from tether.telemetry.ingest._aws import principal_from_arn
from tether.telemetry.ingest.gcp_audit import principal_of as gcp_principal
from tether.telemetry.ingest.k8s_audit import principal_of as k8s_principal

SESSION = principal_from_arn("arn:aws:sts::111122223333:assumed-role/etl-runner/i-0abc")
USER = principal_from_arn("arn:aws:iam::111122223333:user/ci/deployer")
WORKER = k8s_principal({"username": "system:serviceaccount:payments:worker"})
GCP_SA = gcp_principal({"principalEmail": "Builder@proj.iam.gserviceaccount.com"})
AGENT = RawPrincipal(PrincipalKind.AGENT, "asst_billing_01", "billing-bot")


def test_each_kind_of_rule() -> None:
    cases = [
        (PrincipalRule.by_key("u", "arn:aws:iam::111122223333:user/ci/deployer"), USER),
        (PrincipalRule.by_glob("u", "arn:aws:iam::*:user/ci/*"), USER),
        (PrincipalRule.by_role_arn("etl", "arn:aws:iam::111122223333:role/etl-runner"), SESSION),
        (
            PrincipalRule.by_role_arn("etl", "arn:aws:iam::111122223333:role/jobs/etl-runner"),
            SESSION,
        ),
        (PrincipalRule.by_service_account("w", "payments/worker"), WORKER),
        (PrincipalRule.by_gcp_email("b", "builder@PROJ.iam.gserviceaccount.com"), GCP_SA),
        (PrincipalRule.by_agent_id("bot", "asst_billing_01"), AGENT),
    ]
    for rule, principal in cases:
        assert resolve(principal, [rule]) == rule.identity_id, rule
        others = [p for _, p in cases if p is not principal]
        assert all(resolve(other, [rule]) is None for other in others), rule


def test_a_glob_also_tries_arn_attributes() -> None:
    rule = PrincipalRule.by_glob("etl", "arn:aws:sts::*:assumed-role/etl-*/*")
    assert resolve(SESSION, [rule]) == "etl"


def test_role_rules_do_not_match_other_accounts_or_roles() -> None:
    rules = [PrincipalRule.by_role_arn("etl", "arn:aws:iam::999999999999:role/etl-runner")]
    assert resolve(SESSION, rules) is None
    rules = [PrincipalRule.by_role_arn("etl", "arn:aws:iam::111122223333:role/etl")]
    assert resolve(SESSION, rules) is None


def test_eks_users_resolve_through_their_iam_role() -> None:
    user = k8s_principal(
        {"username": "kubernetes-admin", "extra": {"arn": ["arn:aws:sts::1:assumed-role/Dev/s"]}}
    )
    assert resolve(user, [PrincipalRule.by_role_arn("dev", "arn:aws:iam::1:role/Dev")]) == "dev"


def test_exact_rules_beat_globs_and_the_first_rule_wins() -> None:
    rules = [
        PrincipalRule.by_glob("catch-all", "*"),
        PrincipalRule.by_role_arn("etl", "arn:aws:iam::111122223333:role/etl-runner"),
        PrincipalRule.by_role_arn("etl-again", "arn:aws:iam::111122223333:role/etl-runner"),
    ]
    resolver = PrincipalResolver(rules)
    assert resolver.resolve(SESSION) == "etl"
    assert resolver.resolve(USER) == "catch-all"
    assert resolve(SESSION, resolver) == "etl"


def test_unknown_principals_never_resolve() -> None:
    assert resolve(UNKNOWN_PRINCIPAL, [PrincipalRule.by_glob("x", "*")]) is None


@pytest.mark.parametrize(
    ("by", "pattern"),
    [
        (MatchBy.AWS_ROLE, "arn:aws:sts::1:assumed-role/x/y"),
        (MatchBy.AWS_ROLE, "etl-runner"),
        (MatchBy.K8S_SERVICE_ACCOUNT, "worker"),
        (MatchBy.K8S_SERVICE_ACCOUNT, "a/b/c"),
        (MatchBy.GCP_EMAIL, "builder"),
        (MatchBy.KEY, ""),
    ],
)
def test_malformed_rules_are_refused(by: MatchBy, pattern: str) -> None:
    with pytest.raises(PrincipalRuleInvalid):
        PrincipalRule("id", by, pattern)
    with pytest.raises(PrincipalRuleInvalid, match="identity id"):
        PrincipalRule("", MatchBy.KEY, "k")


def test_discovered_identities() -> None:
    seen = datetime(2024, 5, 1, tzinfo=UTC)
    found = discovered_identity(SESSION, source=Source.CLOUDTRAIL, first_seen=seen)
    assert found == {
        "id": "aws-role-etl-runner",
        "kind": "workload",
        "source": "cloudtrail",
        "first_seen": "2024-05-01T00:00:00+00:00",
        "principal_kind": "aws:assumed-role",
        "principal_key": "arn:aws:iam::111122223333:role/etl-runner",
        "display_name": "etl-runner",
        "attributes": dict(SESSION.attributes),
        "managed": False,
    }
    assert discovered_identity(WORKER)["id"] == "k8s-payments-worker"
    assert discovered_identity(WORKER)["kind"] == "service_account"
    assert discovered_identity(GCP_SA)["id"] == "gcp-builder"
    assert discovered_identity(AGENT) | {"attributes": {}} == discovered_identity(AGENT)
    assert discovered_identity(AGENT)["kind"] == "agent"
    assert discovered_identity(USER)["id"] == "aws-user-deployer"
    node = k8s_principal({"username": "system:node:ip-10-0-0-1"})
    assert discovered_identity(node)["kind"] == "workload"
    odd = RawPrincipal("jsonl", "Weird Name!!", "Weird Name!!")
    assert discovered_identity(odd)["id"] == "jsonl-weird-name"
