"""Loading estate folders: values, and every kind of problem with its file and line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tether.errors import EstateInvalid, EstateProblem
from tether.estate import load_estate

EstateFactory = Callable[..., Path]


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line of ``path`` that contains ``needle``."""
    hits = [n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text]
    return hits[occurrence - 1]


def problems_of(directory: Path, **kwargs: object) -> list[EstateProblem]:
    with pytest.raises(EstateInvalid) as caught:
        load_estate(directory, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def only_problem(directory: Path) -> EstateProblem:
    problems = problems_of(directory)
    assert len(problems) == 1, problems
    return problems[0]


def test_loads_the_base_estate(make_estate: EstateFactory) -> None:
    estate = load_estate(make_estate())

    assert estate.classes["agent"].settings == {
        "mode": "enforce",
        "max_task_ttl_seconds": 900,
        "max_delegation_depth": 2,
    }
    assert estate.data_classes == {"public": 1, "internal": 2, "confidential": 3, "restricted": 4}
    bot = estate.identities["billing-bot"]
    assert (bot.kind, bot.workload_class, bot.owner) == ("agent", "agent", "team-payments")
    assert bot.workload == "spiffe://example.org/agents/billing-bot"
    assert [g.id for g in bot.entitlements] == ["entitlement:billing-bot:1"]
    assert [p.text for p in bot.entitlements[0].resources] == ["invoice:*", "email:*@example.org"]
    assert bot.entitlements[0].where.file == "estate.yaml"
    assert [r.pattern.text for r in estate.rules] == ["payments:*", "email:*"]
    [exception] = estate.exceptions
    # A date means "through that day".
    assert exception.expires_at == datetime(3000, 1, 1, tzinfo=UTC)
    anchor = estate.trust["spiffe://example.org"]
    assert anchor.kind == "spiffe"
    assert anchor.settings["jwks"]["keys"][0]["kid"] == "k1"
    [policy_file] = estate.policy_files
    assert policy_file.name == "policies/guardrails.cedar"
    assert [s.id for s in policy_file.specs] == ["agents-never-read-secrets"]


def test_sections_split_across_files(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "estate.yaml": "classes:\n  agent: {mode: enforce}\n",
            "data.yaml": "data_classes: {internal: 2}\n",
            "people.yaml": """\
                identities:
                  - {id: bot, kind: agent, class: agent, attributes: {tier: 2}}
                  - {id: alice, kind: user, parents: ["team:payments"]}
                resources:
                  - {type: record, id: r1, data_class: internal, attributes: {owner: alice}}
                """,
        }
    )
    estate = load_estate(directory)
    assert set(estate.identities) == {"bot", "alice"}
    assert estate.identities["alice"].parents[0].type == "team"
    assert estate.resources[0].attributes == {"owner": "alice"}


def test_unknown_key_is_an_error_at_its_line(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"more.yaml": "identities:\n  - id: x\n    kind: user\n    clas: agent\n"}
    )
    problem = only_problem(directory)
    assert problem.file == str(directory / "more.yaml")
    assert problem.line == 4
    assert "unknown key `clas` in identity `x`" in problem.message


def test_unknown_section_is_an_error(make_estate: EstateFactory) -> None:
    directory = make_estate({"more.yaml": "identites: []\n"})
    problem = only_problem(directory)
    assert (problem.line, problem.file) == (1, str(directory / "more.yaml"))
    assert "unknown section `identites`" in problem.message


def test_bad_duration(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"estate.yaml": "classes:\n  agent:\n    mode: enforce\n    max_task_ttl: 15 minutes\n"}
    )
    problem = only_problem(directory)
    assert problem.line == 4
    assert "`max_task_ttl`" in problem.message
    assert "`15 minutes`" in problem.message


@pytest.mark.parametrize("value", ["15", "0s", "1w", "-5m", "true"])
def test_durations_are_number_and_unit(make_estate: EstateFactory, value: str) -> None:
    directory = make_estate(
        {"estate.yaml": f"classes:\n  agent: {{mode: enforce, token_ttl: {value}}}\n"}
    )
    assert only_problem(directory).line == 2


def test_bad_kind(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"more.yaml": "identities:\n  - id: x\n    kind: robot\n    class: agent\n"}
    )
    problem = only_problem(directory)
    assert problem.line == 3
    assert "kind `robot`" in problem.message


def test_undeclared_class(make_estate: EstateFactory) -> None:
    directory = make_estate({"more.yaml": "identities:\n  - {id: x, kind: agent, class: agnet}\n"})
    problem = only_problem(directory)
    assert problem.line == 2
    assert "class `agnet` is not declared" in problem.message


def test_class_is_required_when_classes_are_declared_except_for_users(
    make_estate: EstateFactory,
) -> None:
    directory = make_estate(
        {"more.yaml": "identities:\n  - {id: alice, kind: user}\n  - {id: x, kind: agent}\n"}
    )
    problem = only_problem(directory)
    assert problem.line == 3
    assert "needs a `class`" in problem.message


def test_class_is_free_without_declared_classes(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"estate.yaml": "identities:\n  - {id: x, kind: agent, class: anything}\n"}, base=False
    )
    assert load_estate(directory).identities["x"].workload_class == "anything"


@pytest.mark.parametrize(
    "spiffe_id",
    [
        "spiffe://Example.org/a",  # trust domain must be lowercase
        "spiffe://example.org/a/",  # trailing slash
        "spiffe://example.org/a//b",  # empty segment
        "spiffe://example.org/a/../b",  # relative segment
        "spiffe://example.org/a?x=1",  # query
        "spiffe://example.org/a#f",  # fragment
        "spiffe://example.org:8443/a",  # port
        "spiffe://user@example.org/a",  # user info
        "spiffe://example.org/a%20b",  # percent-encoding
        "spiffe:///a",  # no trust domain
        "https://example.org/a",  # wrong scheme
        "SPIFFE://example.org/a",  # scheme is lowercase
    ],
)
def test_bad_spiffe_id(make_estate: EstateFactory, spiffe_id: str) -> None:
    directory = make_estate(
        {
            "more.yaml": f"""\
                identities:
                  - id: x
                    kind: workload
                    class: batch
                    workload: "{spiffe_id}"
                """
        }
    )
    problem = only_problem(directory)
    assert problem.line == 5
    assert "is not a SPIFFE ID" in problem.message


def test_workload_as_issuer_and_subject(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - id: ci
                    kind: workload
                    class: batch
                    workload: {issuer: "https://ci.example.org", subject: "repo:a/b"}
                """
        }
    )
    assert load_estate(directory).identities["ci"].workload == {
        "issuer": "https://ci.example.org",
        "subject": "repo:a/b",
    }


def test_two_identities_cannot_share_a_workload(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - {id: other, kind: agent, class: agent, workload: "spiffe://example.org/agents/billing-bot"}
                """
        }
    )
    problem = only_problem(directory)
    assert problem.file.endswith("more.yaml")
    assert "workload `spiffe://example.org/agents/billing-bot` is declared twice" in problem.message


def test_duplicate_identity_across_files_names_both_places(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"zz.yaml": "identities:\n  - {id: billing-bot, kind: agent, class: agent}\n"}
    )
    problem = only_problem(directory)
    assert problem.file == str(directory / "zz.yaml")
    assert problem.line == 2
    first = line_of(directory / "estate.yaml", "id: billing-bot")
    assert f"also at estate.yaml:{first}" in problem.message


def test_duplicate_class_across_files(make_estate: EstateFactory) -> None:
    directory = make_estate({"zz.yaml": "classes:\n  batch: {mode: enforce}\n"})
    problem = only_problem(directory)
    assert problem.line == 2
    assert "class `batch` is declared twice" in problem.message


def test_duplicate_key_in_one_mapping(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"more.yaml": "identities:\n  - id: x\n    kind: agent\n    kind: user\n    class: agent\n"}
    )
    problem = only_problem(directory)
    assert problem.line == 4
    assert "duplicate key `kind` (first at line 3)" in problem.message


def test_yaml_syntax_error_has_a_line(make_estate: EstateFactory) -> None:
    directory = make_estate({"more.yaml": "identities:\n  - id: [x\n    kind: agent\n"})
    problem = only_problem(directory)
    assert problem.file == str(directory / "more.yaml")
    assert problem.line is not None
    assert "invalid YAML" in problem.message


def test_cedar_syntax_error_at_the_statement_line(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "policies/extra.cedar": """\
                // first a good policy
                permit (principal, action, resource);

                @id("broken")
                forbid (principal, action, resource) when { context. };
                """
        }
    )
    problem = only_problem(directory)
    assert problem.file == str(directory / "policies/extra.cedar")
    assert problem.line == 4
    assert "cedar syntax error" in problem.message


def test_duplicate_policy_id_across_files(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"zz.cedar": '@id("agents-never-read-secrets")\npermit (principal, action, resource);\n'}
    )
    problem = only_problem(directory)
    assert problem.file == str(directory / "zz.cedar")
    assert "policy `agents-never-read-secrets` is declared twice" in problem.message
    assert "policies/guardrails.cedar:1" in problem.message


def test_entitlement_policy_ids_are_reserved(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {"x.cedar": '@id("entitlement:x:1")\npermit (principal, action, resource);'}
    )
    assert "reserved" in only_problem(directory).message


def test_invalid_schema_file_names_it(make_estate: EstateFactory) -> None:
    directory = make_estate({"schema.cedarschema": "entity agent = {"})
    problem = only_problem(directory)
    assert problem.file == str(directory / "schema.cedarschema")
    assert "invalid Cedar schema" in problem.message


def test_expired_exception(make_estate: EstateFactory) -> None:
    directory = make_estate()
    problems = problems_of(directory, now=datetime(3001, 1, 1, tzinfo=UTC))
    assert len(problems) == 1
    assert problems[0].line == line_of(directory / "estate.yaml", "expires:")
    assert "exception expired" in problems[0].message


def test_exception_for_undeclared_identity(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                exceptions:
                  - {identity: ghost, detector: volume_anomaly, owner: o, justification: j,
                     expires: "2999-01-01T00:00:00Z"}
                """
        }
    )
    problem = only_problem(directory)
    assert problem.line == 2
    assert "identity `ghost`, which is not declared" in problem.message


def test_exception_time_must_be_iso_8601(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                exceptions:
                  - identity: nightly-etl
                    detector: novel_resource
                    owner: o
                    justification: j
                    expires: next tuesday
                """
        }
    )
    problem = only_problem(directory)
    assert problem.line == 6
    assert "ISO 8601" in problem.message


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{spiffe: spiffe://example.com, jwks_file: missing.json}", "does not exist"),
        ("{spiffe: spiffe://example.com, jwks_file: bad.json}", "is not JSON"),
        ("{spiffe: spiffe://example.com, jwks_file: nokeys.json}", "`keys` list"),
        ("{spiffe: spiffe://example.com/path, jwks_file: ok.json}", "not a SPIFFE trust domain"),
        ("{oidc_issuer: http://issuer.example, jwks_file: ok.json, audience: t}", "https://"),
        ("{oidc_issuer: https://issuer.example, audience: t}", "exactly one of"),
        ("{oidc_issuer: https://issuer.example, jwks_file: ok.json}", "needs `audience`"),
        ("{jwks_file: ok.json}", "needs `spiffe` or `oidc_issuer`"),
        ("{spiffe: spiffe://example.com, jwks_file: ok.json, require_kid: maybe}", "`true`"),
    ],
)
def test_trust_entries(make_estate: EstateFactory, entry: str, message: str) -> None:
    directory = make_estate(
        {
            "more.yaml": f"trust:\n  - {entry}\n",
            "bad.json": "{nope",
            "nokeys.json": '{"kids": []}',
            "ok.json": '{"keys": []}',
        }
    )
    problem = only_problem(directory)
    assert problem.line == 2
    assert message in problem.message


def test_oidc_trust_with_jwks_uri(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                trust:
                  - oidc_issuer: https://token.actions.githubusercontent.com
                    jwks_uri: https://token.actions.githubusercontent.com/.well-known/jwks
                    audience: tether
                """
        }
    )
    anchor = load_estate(directory).trust["https://token.actions.githubusercontent.com"]
    assert anchor.kind == "oidc"
    assert anchor.settings["audience"] == "tether"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('{pattern: "payments", data_class: restricted}', "must look like"),
        ('{pattern: "pay-ments:*", data_class: restricted}', "Cedar identifier"),
        ('{pattern: "payments:a?b", data_class: restricted}', "only `*` is a wildcard"),
        ('{pattern: "payments:", data_class: restricted}', "needs an id"),
        ('{pattern: "if:*", data_class: restricted}', "reserved word"),
        ('{pattern: "secrets:*", data_class: secret}', "data class `secret` is not declared"),
        ("{type: record}", "needs `id`"),
        ('{pattern: "payments:*", data_class: internal}', "declared twice"),
    ],
)
def test_resource_entries(make_estate: EstateFactory, rule: str, message: str) -> None:
    directory = make_estate({"more.yaml": f"resources:\n  - {rule}\n"})
    problem = only_problem(directory)
    assert problem.line == 2
    assert message in problem.message


def test_entitlement_problems(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - id: x
                    kind: agent
                    class: agent
                    entitlements:
                      - actions: ["*"]
                        resources: ["invoice:*"]
                      - actions: [read]
                        resources: ["invoice"]
                      - actions: []
                        resources: ["*"]
                      - {actions: [read], resources: ["*"], when: always}
                """
        }
    )
    problems = problems_of(directory)
    assert [p.line for p in problems] == [6, 9, 10, 12]
    assert "`*` is not an action" in problems[0].message
    assert "must look like" in problems[1].message
    assert "must not be empty" in problems[2].message
    assert "unknown key `when`" in problems[3].message


def test_attribute_problems(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - id: x
                    kind: agent
                    class: agent
                    attributes:
                      kind: other
                      ratio: 0.5
                      nothing: null
                      fine: {list: [1, 2], when: 2026-01-01}
                """
        }
    )
    problems = problems_of(directory)
    assert [p.line for p in problems] == [6, 7, 8]
    assert "attribute `kind` is reserved" in problems[0].message
    assert "`0.5`" in problems[1].message


def test_every_problem_is_reported_at_once(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "a.yaml": "classes:\n  x: {mode: sometimes}\n",
            "b.yaml": "identities:\n  - {id: y, kind: robot}\n",
            "c.cedar": "permit (principal, action, resource)\nwhen { ; };\n",
        }
    )
    problems = problems_of(directory)
    assert {Path(p.file).name for p in problems} == {"a.yaml", "b.yaml", "c.cedar"}
    assert all(p.line for p in problems)


def test_anchors_and_merge_keys(make_estate: EstateFactory) -> None:
    directory = make_estate(
        {
            "more.yaml": """\
                identities:
                  - &bot {id: bot-1, kind: agent, class: agent, owner: team-a}
                  - <<: *bot
                    id: bot-2
                """
        }
    )
    identities = load_estate(directory).identities
    assert identities["bot-2"].owner == "team-a"


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    problem = only_problem(tmp_path / "empty")
    assert problem.file == str(tmp_path / "empty")
    assert "no `*.yaml` or `*.cedar` files" in problem.message


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    assert "not a folder" in only_problem(tmp_path / "nope").message


def test_problem_renders_file_and_line(make_estate: EstateFactory) -> None:
    directory = make_estate({"more.yaml": "identities:\n  - {id: x, kind: robot, class: agent}\n"})
    with pytest.raises(EstateInvalid) as caught:
        load_estate(directory)
    assert f"{directory / 'more.yaml'}:2: kind `robot`" in str(caught.value)
    assert caught.value.code == "estate_invalid"


def test_a_broken_class_does_not_cascade_into_its_identities(make_estate: EstateFactory) -> None:
    directory = make_estate({"estate.yaml": BASE_WITH_BAD_MODE})
    problem = only_problem(directory)
    assert "`mode` of class `batch` must be `monitor` or `enforce`" in problem.message


BASE_WITH_BAD_MODE = """\
classes:
  batch: {mode: sometimes}
identities:
  - {id: etl, kind: service_account, class: batch}
exceptions:
  - {identity: etl, detector: volume_anomaly, owner: o, justification: j, expires: 2999-01-01}
"""


def test_values_longer_than_the_store_holds(make_estate: EstateFactory) -> None:
    long_id = "x" * 201
    directory = make_estate({"more.yaml": f"identities:\n  - {{id: {long_id}, kind: user}}\n"})
    assert "longer than 200 characters" in only_problem(directory).message


def test_yml_files_are_read_too(make_estate: EstateFactory) -> None:
    directory = make_estate({"extra.yml": "identities:\n  - {id: from-yml, kind: user}\n"})
    assert "from-yml" in load_estate(directory).identities
