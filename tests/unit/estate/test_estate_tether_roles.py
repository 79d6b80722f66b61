"""``tether_roles:`` on identities: validated like every other key, applied to ``caller_roles``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from tether.errors import EstateInvalid
from tether.estate import apply_estate, load_estate
from tether.store.caller_tables import caller_roles

EstateFactory = Callable[..., Path]

PEOPLE = """\
identities:
  - id: gateway
    kind: workload
    workload: spiffe://example.org/gateways/pep
    tether_roles: [pep, ingest, pep]
  - id: alice
    kind: user
    tether_roles: [auditor, approver]
  - id: bob
    kind: user
"""


def stored_roles(engine: Engine) -> dict[str, tuple[list[str], str]]:
    with engine.connect() as connection:
        rows = connection.execute(select(caller_roles)).mappings()
        return {r["identity_id"]: (r["roles"], r["origin"]) for r in rows}


def test_roles_load_sorted_and_without_duplicates(make_estate: EstateFactory) -> None:
    estate = load_estate(make_estate({"estate.yaml": PEOPLE}, base=False))
    assert estate.identities["gateway"].tether_roles == ("ingest", "pep")
    assert estate.identities["alice"].tether_roles == ("approver", "auditor")
    assert estate.identities["bob"].tether_roles == ()


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ("[root]", "`root` is not a tether role"),
        ("[workload]", "`workload` is not a tether role"),
        ("pep", "must be a list of strings"),
        ("[]", "must not be empty"),
    ],
)
def test_a_bad_role_is_an_error_naming_file_and_line(
    make_estate: EstateFactory, roles: str, message: str
) -> None:
    text = f"identities:\n  - id: gw\n    kind: workload\n    tether_roles: {roles}\n"
    with pytest.raises(EstateInvalid) as caught:
        load_estate(make_estate({"estate.yaml": text}, base=False))
    [problem] = caught.value.problems
    assert message in problem.message
    assert problem.file.endswith("estate.yaml")
    assert problem.line == 4


def test_a_typo_of_the_key_is_an_error(make_estate: EstateFactory) -> None:
    text = "identities:\n  - id: gw\n    kind: workload\n    tether_role: [pep]\n"
    with pytest.raises(EstateInvalid) as caught:
        load_estate(make_estate({"estate.yaml": text}, base=False))
    assert "tether_role" in str(caught.value)


def test_apply_writes_roles_and_removes_them_with_the_files(
    make_estate: EstateFactory, sqlite_store: Engine
) -> None:
    first = apply_estate(sqlite_store, make_estate({"estate.yaml": PEOPLE}, base=False))
    assert stored_roles(sqlite_store) == {
        "gateway": (["ingest", "pep"], "estate"),
        "alice": (["approver", "auditor"], "estate"),
    }
    assert {(c.kind, c.name, c.op) for c in first.changes} >= {
        ("roles", "gateway", "create"),
        ("roles", "alice", "create"),
    }
    again = apply_estate(sqlite_store, make_estate({"estate.yaml": PEOPLE}, base=False))
    assert not again.changed
    fewer = PEOPLE.replace("    tether_roles: [auditor, approver]\n", "")
    changed = apply_estate(sqlite_store, make_estate({"estate.yaml": fewer}, base=False))
    assert ("roles", "alice", "delete") in {(c.kind, c.name, c.op) for c in changed.changes}
    assert set(stored_roles(sqlite_store)) == {"gateway"}
