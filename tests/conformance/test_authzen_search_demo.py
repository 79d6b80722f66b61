"""Why the AuthZEN search-demo vectors are not run against tether (and a tripwire).

``authzen-search-demo__test__{subject,resource,action}__results.json`` hold 60 subject,
18 resource and 120 action searches over users alice, bob, carol, dan, erin, felix and
records 101-120, with the expected result sets. They are one access relation
(user, action, record) seen three ways, and they give nothing else: no request carries
``properties``, and the shared data has no description of the users or the records
(their roles, departments, owners) nor of the policy in prose.

The relation alone does not determine a policy. Its shape suggests one (``delete`` is
granted to exactly one user per record, ``delete`` implies ``edit`` implies ``view``,
alice and dan view every record), but why bob and carol may view record 101, whose
deleter is alice, or why dan may edit but not delete record 115, depends on attributes
of each record that the files do not state. Writing an estate that reproduces the
results would mean choosing those attributes record by record from the expected
answers: the expected results hard-coded into the estate, which proves nothing about
tether. The searches themselves are covered by the certification fixture
(``test_authzen_certification_search.py``), where the policy is given and the three
searches are checked against single evaluations over the whole fixture.

The tests below pin the facts this rests on, so that the decision is revisited if the
shared data ever gains the demo's user and record descriptions.
"""

from __future__ import annotations

from typing import Any

import pytest
from authzen_harness import AUTHZEN_DATA, load_vectors

FILES = {
    kind: f"authzen-search-demo__test__{kind}__results.json"
    for kind in ("subject", "resource", "action")
}


def _entities(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [request[key] for key in ("subject", "action", "resource") if key in request]


@pytest.mark.parametrize("kind", list(FILES))
def test_vectors_carry_no_attributes(kind: str) -> None:
    vectors = load_vectors(FILES[kind])["evaluation"]
    assert vectors
    for vector in vectors:
        request = vector["request"]
        assert set(request) <= {"subject", "action", "resource"}, request
        assert all("properties" not in entity for entity in _entities(request)), request


def test_no_description_of_the_demo_data_is_shared() -> None:
    described = sorted(
        p.name for p in AUTHZEN_DATA.glob("authzen-search-demo*") if p.name not in FILES.values()
    )
    assert not described, (
        f"the search-demo data is now described ({described}): build an "
        "examples/authzen-search estate from it and run these vectors"
    )


def test_the_three_files_are_one_relation() -> None:
    """Same (user, action, record) triples whichever way the search is asked."""
    by_subject = {
        (r["id"], v["request"]["action"]["name"], v["request"]["resource"]["id"])
        for v in load_vectors(FILES["subject"])["evaluation"]
        for r in v["expected"]["results"]
    }
    by_resource = {
        (v["request"]["subject"]["id"], v["request"]["action"]["name"], r["id"])
        for v in load_vectors(FILES["resource"])["evaluation"]
        for r in v["expected"]["results"]
    }
    by_action = {
        (v["request"]["subject"]["id"], r["name"], v["request"]["resource"]["id"])
        for v in load_vectors(FILES["action"])["evaluation"]
        for r in v["expected"]["results"]
    }
    assert by_subject == by_resource == by_action
