"""Test support for tasks and task tokens: a workload key, JWT-SVIDs it signs, an estate.

The estate trusts ``spiffe://example.org`` with a JWKS bundle of freshly generated keys
(``bundles/example.org.jwks.json``) and binds three agents to SPIFFE IDs of it:

* ``billing-bot`` (class ``agent``: enforce, 15 min tasks, delegation depth 2): reads
  invoices, sends email to ``*@example.org``, pays from ``payments:*``;
* ``helper-bot`` and ``sub-helper`` (class ``agent``): sub-agents for delegation;
* ``etl`` (class ``batch``: monitor mode, no delegation): reads ``table:*``.
"""

from __future__ import annotations

import base64
import json
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry

AUDIENCE = "tether"
DOMAIN = "spiffe://example.org"
BILLING = "spiffe://example.org/agents/billing-bot"
HELPER = "spiffe://example.org/agents/helper-bot"
SUB_HELPER = "spiffe://example.org/agents/sub-helper"
ETL = "spiffe://example.org/jobs/etl"
UNBOUND = "spiffe://example.org/agents/nobody"
ISSUER = "https://tether.test"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def encode(header: Mapping[str, Any], claims: Mapping[str, Any] | bytes, key: ECKey) -> str:
    """A compact JWS of exactly this header and payload, ES256-signed with ``key``."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}".encode()
    signature = JWSRegistry.algorithms["ES256"].sign(signing_input, key)
    return f"{signing_input.decode()}.{b64(signature)}"


@dataclass(frozen=True)
class WorkloadKey:
    """A P-256 key of the test trust domain, published under ``kid``."""

    kid: str
    key: ECKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str) -> WorkloadKey:
        return cls(kid, ECKey.generate_key("P-256"))

    def jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "use": "jwt-svid"}

    def svid(
        self,
        sub: str = BILLING,
        *,
        header: Mapping[str, Any] | None = None,
        at: float | None = None,
        **claims: Any,
    ) -> str:
        """A JWT-SVID for ``sub``, valid for five minutes from ``at`` (default: now);
        ``claims`` override (``None`` drops one)."""
        now = int(time.time() if at is None else at)
        body: dict[str, Any] = {"sub": sub, "aud": AUDIENCE, "exp": now + 300, "iat": now - 5}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head = {"alg": "ES256", "kid": self.kid, "typ": "JWT", **(header or {})}
        return encode(head, body, self.key)


class Clock:
    """Seconds since the epoch that move only when told (starts at the real time)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ESTATE = """\
classes:
  agent: {mode: enforce, max_task_ttl: 15m, max_delegation_depth: 2, token_ttl: 5m}
  batch: {mode: monitor, max_task_ttl: 4h}
trust:
  - spiffe: spiffe://example.org
    jwks_file: bundles/example.org.jwks.json
data_classes: {public: 1, internal: 2, confidential: 3, restricted: 4}
resources:
  - {pattern: "payments:*", data_class: restricted}
  - {pattern: "invoice:*", data_class: confidential}
  - {pattern: "email:*", data_class: internal}
  - {pattern: "table:*", data_class: internal}
identities:
  - id: billing-bot
    kind: agent
    class: agent
    owner: team-payments
    workload: spiffe://example.org/agents/billing-bot
    entitlements:
      - actions: [read_invoice, send_email]
        resources: ["invoice:*", "email:*@example.org"]
      - actions: [pay_invoice]
        resources: ["payments:*"]
  - id: helper-bot
    kind: agent
    class: agent
    owner: team-payments
    workload: spiffe://example.org/agents/helper-bot
  - id: sub-helper
    kind: agent
    class: agent
    owner: team-payments
    workload: spiffe://example.org/agents/sub-helper
  - id: etl
    kind: service_account
    class: batch
    owner: team-data
    workload: spiffe://example.org/jobs/etl
    entitlements:
      - actions: [read_table]
        resources: ["table:*"]
"""

# Outside intent in a `monitor` class the policies decide; this one forbids it anyway
# for restricted data, to show a policy reading `within_intent`.
POLICY = """\
@id("no-restricted-outside-intent")
forbid (principal, action, resource)
when { context.tether has task && !context.tether.task.within_intent
       && context.tether.sensitivity >= 4 };
"""


OTHER_TRUST = """\
  - spiffe: spiffe://other.org
    jwks_file: bundles/other.org.jwks.json
"""


def write_estate(
    folder: Path, *keys: WorkloadKey, other: WorkloadKey | None = None, extra: str = ""
) -> Path:
    """The test estate in ``folder``, its bundle holding ``keys``; with ``other``, it also
    trusts ``spiffe://other.org`` whose bundle holds that key."""
    (folder / "bundles").mkdir(parents=True, exist_ok=True)
    (folder / "policies").mkdir(exist_ok=True)
    bundle = {"keys": [k.jwk() for k in keys]}
    (folder / "bundles" / "example.org.jwks.json").write_text(json.dumps(bundle))
    estate = ESTATE
    if other is not None:
        (folder / "bundles" / "other.org.jwks.json").write_text(json.dumps({"keys": [other.jwk()]}))
        estate = estate.replace("data_classes:", OTHER_TRUST + "data_classes:", 1)
    (folder / "estate.yaml").write_text(estate + textwrap.dedent(extra))
    (folder / "policies" / "guard.cedar").write_text(POLICY)
    return folder


def task_body(
    *,
    actions: tuple[str, ...] = ("read_invoice", "send_email"),
    resources: tuple[str, ...] = ("invoice:*", "email:*@example.org"),
    data_classes: tuple[str, ...] = ("confidential", "internal"),
    purpose: str = "send the March invoices",
    ttl: str | int | None = "10m",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": purpose,
        "intent": {
            "actions": list(actions),
            "resources": list(resources),
            "data_classes": list(data_classes),
        },
    }
    if ttl is not None:
        body["ttl"] = ttl
    return body


# --- flows over a TaskAuthority (in-process tests) -------------------------------------------


def exchange_form(
    subject_token: str,
    *,
    task_id: str | None = None,
    scope: str | None = None,
    actor_token: str | None = None,
    subject_type: str | None = None,
    **extra: str,
) -> dict[str, list[str]]:
    """The form of an RFC 8693 exchange; a task token subject is detected by its shape."""
    from tether.tokens import ACCESS_TOKEN_TYPE, GRANT_TYPE, JWT_TYPE, TASK_RESOURCE

    try:
        header = json.loads(base64.urlsafe_b64decode(subject_token.split(".")[0] + "=="))
    except ValueError:
        header = {}
    is_task_token = isinstance(header, dict) and header.get("typ") == "at+jwt"
    form = {
        "grant_type": [GRANT_TYPE],
        "subject_token": [subject_token],
        "subject_token_type": [subject_type or (ACCESS_TOKEN_TYPE if is_task_token else JWT_TYPE)],
    }
    if task_id is not None:
        form["resource"] = [TASK_RESOURCE + task_id]
    if scope is not None:
        form["scope"] = [scope]
    if actor_token is not None:
        form["actor_token"] = [actor_token]
        form["actor_token_type"] = [JWT_TYPE]
    for name, value in extra.items():
        form[name] = [value]
    return form


def open_task(authority: Any, key: WorkloadKey, sub: str = BILLING, **body: Any) -> Any:
    """Open a task as the workload ``sub`` (authenticated by its SVID)."""
    from tether.tokens import TaskRequest

    now = authority.now().timestamp()
    workload = authority.authenticate(key.svid(sub, at=now), attempt="task.open")
    return authority.open_task(
        TaskRequest.from_json(task_body(**body)),
        identity_id=workload.identity.id,
        opened_by=workload.name,
        proof_id=workload.proof.token_id,
    )


def issue(
    authority: Any, key: WorkloadKey, task_id: str, *, scope: str | None = None, sub: str = BILLING
) -> Any:
    """The task token of ``task_id`` for the workload ``sub`` (an IssuedTaskToken)."""
    from tether.tokens import ExchangeRequest, exchange

    now = authority.now().timestamp()
    form = exchange_form(key.svid(sub, at=now), task_id=task_id, scope=scope)
    return exchange(authority, ExchangeRequest.from_form(form))


def delegate(
    authority: Any, key: WorkloadKey, parent: str, actor: str = HELPER, *, scope: str | None = None
) -> Any:
    """A token delegated from ``parent`` to the workload ``actor``."""
    from tether.tokens import ExchangeRequest, exchange

    now = authority.now().timestamp()
    form = exchange_form(parent, actor_token=key.svid(actor, at=now), scope=scope)
    return exchange(authority, ExchangeRequest.from_form(form))
