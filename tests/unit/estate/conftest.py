"""Factories for estate folders and a migrated SQLite store."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tether.store import migrate
from tether.store.engine import open_engine

JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k1"}]}

BASE_YAML = """\
classes:
  agent: {mode: enforce, max_task_ttl: 15m, max_delegation_depth: 2}
  batch: {mode: monitor, max_task_ttl: 4h}
trust:
  - spiffe: spiffe://example.org
    jwks_file: bundles/example.org.jwks.json
data_classes: {public: 1, internal: 2, confidential: 3, restricted: 4}
resources:
  - {pattern: "payments:*", data_class: restricted}
  - {pattern: "email:*", data_class: internal}
identities:
  - id: billing-bot
    kind: agent
    class: agent
    owner: team-payments
    workload: spiffe://example.org/agents/billing-bot
    entitlements:
      - actions: [read_invoice, send_email]
        resources: ["invoice:*", "email:*@example.org"]
  - id: nightly-etl
    kind: service_account
    class: batch
    owner: team-data
    entitlements:
      - actions: [read_table]
        resources: ["table:*"]
exceptions:
  - identity: nightly-etl
    detector: volume_anomaly
    owner: team-data
    justification: quarter close
    expires: 2999-12-31
"""

GUARDRAILS = """\
@id("agents-never-read-secrets")
forbid (principal is agent, action, resource is secret);
"""

EstateFactory = Callable[..., Path]


@pytest.fixture
def make_estate(tmp_path: Path) -> EstateFactory:
    """Write an estate folder: ``make_estate({"estate.yaml": "...", ...})``.

    Without ``base=False`` the folder also holds ``BASE_YAML`` (as ``estate.yaml`` unless
    overridden), ``policies/guardrails.cedar`` and the JWKS bundle it references.
    """
    counter = iter(range(1_000_000))

    def make(files: dict[str, str] | None = None, *, base: bool = True) -> Path:
        directory = tmp_path / f"estate{next(counter)}"
        contents: dict[str, str] = {}
        if base:
            contents = {
                "estate.yaml": BASE_YAML,
                "policies/guardrails.cedar": GUARDRAILS,
                "bundles/example.org.jwks.json": json.dumps(JWKS),
            }
        contents.update(files or {})
        for name, text in contents.items():
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    return make


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store in a file under ``tmp_path``."""
    engine = open_engine(f"sqlite:///{tmp_path}/t.db")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
