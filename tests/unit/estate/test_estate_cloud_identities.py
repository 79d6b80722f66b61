"""Cloud identities in the estate: a role, service account or GCP account as `workload`."""

from __future__ import annotations

import pytest

from conftest import EstateFactory
from tether.errors import EstateInvalid
from tether.estate import load_estate

CLOUD = """\
identities:
  - id: reports-batch
    kind: workload
    class: batch
    workload: {aws_role: "arn:aws:iam::123456789012:role/reports-batch"}
    entitlements:
      - actions: ["s3:GetObject", "s3:List*"]
        resources: ["arn:aws:s3:::reports/*", "arn:aws:s3:::reports"]
  - id: ingest-sa
    kind: service_account
    class: batch
    workload: {k8s_service_account: data/ingest}
  - id: exporter
    kind: service_account
    class: batch
    workload: {gcp_service_account: exporter@proj.iam.gserviceaccount.com}
"""


def test_cloud_principals_and_iam_style_entitlements_load(make_estate: EstateFactory) -> None:
    estate = load_estate(make_estate({"cloud.yaml": CLOUD}))
    role = estate.identities["reports-batch"]
    assert role.workload == {"aws_role": "arn:aws:iam::123456789012:role/reports-batch"}
    assert role.entitlements[0].actions == ("s3:GetObject", "s3:List*")
    assert next(p.text for p in role.entitlements[0].resources) == "arn:aws:s3:::reports/*"
    assert estate.identities["ingest-sa"].workload == {"k8s_service_account": "data/ingest"}


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ('{aws_role: "arn:aws:iam::12:user/x"}', "neither an IAM role ARN nor a role name"),
        ("{k8s_service_account: data}", "not a `namespace/name` service account"),
        ("{gcp_service_account: nobody}", "not a service account email"),
        ("{aws_role: a, gcp_service_account: b@c.d}", "exactly one of"),
    ],
)
def test_bad_cloud_principals_are_estate_errors(
    make_estate: EstateFactory, workload: str, message: str
) -> None:
    text = (
        f"identities:\n  - id: x\n    kind: workload\n    class: batch\n    workload: {workload}\n"
    )
    with pytest.raises(EstateInvalid) as raised:
        load_estate(make_estate({"more.yaml": text}))
    assert any(message in p.message for p in raised.value.problems), raised.value.problems
