"""Inside vs outside the organisation: the estate's `organisation:` and how drift weighs it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tether.drift.catalog import DefaultToolCatalog
from tether.drift.detectors import out_of_intent
from tether.drift.model import DetectionContext, IdentityView, Observation, TaskView
from tether.drift.provenance import RunRecord
from tether.errors import EstateInvalid
from tether.estate import load_estate
from tether.estate.compiled import Organisation

ORG = Organisation(("example.org",), ("DE89 3704 0044 0532 0130 00",), ("general",))


@pytest.mark.parametrize(
    ("value", "inside"),
    [
        ("bob@example.org", True),
        ("bob@mail.example.org", True),
        ("https://wiki.example.org/page?x=1", True),
        ("DE89370400440532013000", True),
        ("General", True),
        ("bob@example.org.evil.test", False),
        ("https://example.org@evil.test/", False),
        ("bob@notexample.org", False),
        ("external", False),
    ],
)
def test_inside_the_organisation(value: str, inside: bool) -> None:
    assert ORG.inside(value) is inside


def test_the_estate_declares_it_and_names_a_bad_domain(tmp_path: Path) -> None:
    (tmp_path / "org.yaml").write_text(
        "organisation:\n  domains: [Example.org]\n  accounts: [DE89370400440532013000]\n"
    )
    estate = load_estate(tmp_path)
    assert estate.organisation.domains == ("example.org",)
    assert estate.organisation.accounts == ("DE89370400440532013000",)
    (tmp_path / "org.yaml").write_text("organisation:\n  domains: ['not a domain']\n")
    with pytest.raises(EstateInvalid, match="is not a domain"):
        load_estate(tmp_path)


def test_an_internal_destination_weighs_less_and_an_external_one_more() -> None:
    task = TaskView("t1", "tell the team", frozenset({"send_email"}), ("email:*@example.com",))
    agent = IdentityView("bot", "agent", "agent", lambda a, r: True, blast_radius=1.0)
    ctx = DetectionContext(
        agent, task, None, (), DefaultToolCatalog(), record=RunRecord(), internal=ORG.inside
    )

    def signal(to: str, context: DetectionContext = ctx) -> tuple[float, object]:
        obs = Observation(
            ref="decision:1",
            at=datetime(2026, 1, 1, tzinfo=UTC),
            identity_id="bot",
            action="send_email",
            task_id="t1",
            arguments={"to": to},
        )
        (found,) = out_of_intent.detect(obs, context)
        return found.deviation, found.details.get("sensitivity")

    assert signal("carol@example.org") == (0.25, None)  # unsourced (0.5), inside: halved
    assert signal("mallory@evil.test") == (0.5, 1.0)  # unsourced, and leaving the organisation
    assert signal("mallory@evil.test", replace(ctx, internal=None)) == (0.5, None)
