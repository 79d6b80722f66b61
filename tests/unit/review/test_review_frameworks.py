"""The framework mapping: every finding type and review row type mapped, ids well formed."""

from __future__ import annotations

import pytest

from tether.drift.model import DETECTOR_NAMES
from tether.frameworks import (
    FRAMEWORKS,
    ID_SHAPES,
    FrameworksInvalid,
    UnknownFramework,
    load_frameworks,
    parse_frameworks,
)

ROW_TYPES = (
    "identity_review",
    "used_entitlement",
    "unused_entitlement",
    "outside_entitlement",
    "exception_in_force",
    "finding",
    "rightsized_policy",
    "rotation_overdue",
    "stale",
    "orphaned",
    "static_secret",
    "credential_expiring",
    "grant_overscoped",
    "grant_unused_scope",
    "vendor_review_overdue",
    "excessive_privilege",
    "not_rotated",
    "estate_metric",
    "offboarded",
    "approval",
)


@pytest.mark.parametrize("type_name", [*DETECTOR_NAMES, *ROW_TYPES])
def test_every_type_maps_to_every_framework(type_name: str) -> None:
    refs = load_frameworks().references(type_name)
    for framework in FRAMEWORKS:
        assert refs[framework], (type_name, framework)
        for ref in refs[framework]:
            assert ID_SHAPES[framework].match(ref), ref


def test_detectors_are_findings_and_the_rest_review_rows() -> None:
    kinds = load_frameworks().kinds
    assert all(kinds[d] == "finding" for d in DETECTOR_NAMES)
    assert all(kinds[r] == "review" for r in ROW_TYPES)


def test_declared_ids_have_the_framework_shapes_and_names() -> None:
    catalog = load_frameworks()
    assert list(catalog.frameworks["owasp-asi"].ids) == [f"ASI{n:02d}" for n in range(1, 11)]
    assert catalog.name_of("owasp-asi", "ASI03") == "Identity and Privilege Abuse"
    assert list(catalog.frameworks["maestro"].ids) == [f"L{n}" for n in range(1, 8)]
    assert catalog.name_of("maestro", "L6") == "Security and Compliance"
    assert "MEASURE 2.7" in catalog.frameworks["nist-ai-rmf"].ids
    assert {"PR.AA-05", "DE.CM-01", "RS.MI-01"} <= set(catalog.frameworks["nist-csf"].ids)


def test_columns_join_ids_and_unknown_types_have_none() -> None:
    catalog = load_frameworks()
    assert catalog.columns("unused_entitlement")["nist_csf"] == "PR.AA-05"
    assert catalog.columns("no-such-type") == {
        "owasp_asi": "",
        "maestro": "",
        "nist_ai_rmf": "",
        "nist_csf": "",
    }
    with pytest.raises(UnknownFramework, match="owasp-asi"):
        catalog.framework("iso-42001")


_HEAD = """
frameworks:
  owasp-asi: {title: t, ids: {ASI03: Identity}}
  maestro: {title: t, ids: {L6: Security}}
  nist-ai-rmf: {title: t, ids: {MEASURE 2.7: Security}}
  nist-csf: {title: t, ids: {PR.AA-05: Access}}
types:
"""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            "  x: {kind: finding, owasp-asi: [ASI03], maestro: [L6], nist-ai-rmf: [MEASURE 2.7]}",
            "maps to no `nist-csf` id",
        ),
        (
            "  x: {kind: finding, owasp-asi: [ASI11], maestro: [L6], nist-ai-rmf: [MEASURE 2.7],"
            " nist-csf: [PR.AA-05]}",
            "`ASI11` is not declared",
        ),
        (
            "  x: {kind: other, owasp-asi: [ASI03], maestro: [L6], nist-ai-rmf: [MEASURE 2.7],"
            " nist-csf: [PR.AA-05]}",
            "`kind` must be",
        ),
    ],
)
def test_a_bad_mapping_is_refused_with_the_problem(body: str, problem: str) -> None:
    with pytest.raises(FrameworksInvalid, match=problem):
        parse_frameworks(_HEAD + body + "\n")


def test_an_id_of_the_wrong_shape_is_refused() -> None:
    text = _HEAD.replace("PR.AA-05: Access", "PR.AA-5: Access") + (
        "  x: {kind: finding, owasp-asi: [ASI03], maestro: [L6], nist-ai-rmf: [MEASURE 2.7],"
        " nist-csf: [PR.AA-5]}\n"
    )
    with pytest.raises(FrameworksInvalid, match="wrong shape"):
        parse_frameworks(text)


def test_a_drift_finding_names_the_same_ids_as_the_catalogue() -> None:
    from tether.drift.frameworks import frameworks_for
    from tether.drift.model import DETECTOR_NAMES

    catalog = load_frameworks()
    for detector in DETECTOR_NAMES:
        refs = frameworks_for(detector)
        assert set(refs) == {"owasp_asi", "maestro", "nist_ai_rmf", "nist_csf"}
        for framework, ids in catalog.references(detector).items():
            assert refs[framework.replace("-", "_")] == tuple(ids)
            assert ids  # every detector maps to at least one id of every framework
