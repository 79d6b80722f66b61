"""tether's own tokens: signing keys, tasks and task tokens (RFC 8693, 9068, 7662, 7009, 8414).

A workload proves itself (``tether.identity``), opens a task (purpose and intent, within
its entitlement) and exchanges its proof for a short-lived task token; a PEP passes that
token with each decision; ending the task revokes every token issued for it::

    authority = tether.tasks                               # a TaskAuthority
    workload = authority.authenticate(proof, attempt="task.open")
    task = authority.open_task(TaskRequest.from_json(body), identity_id=workload.identity.id,
                               opened_by=workload.name)
    issued = exchange(authority, ExchangeRequest.from_form(form))
    introspect(authority, issued.token)                    # {"active": True, ...}
    authority.end_task(task.id, actor="cli")               # every token of it: revoked

One module per spec: ``access_token`` (RFC 9068 claims), ``exchange`` (RFC 8693),
``introspection`` (RFC 7662), ``revocation`` (RFC 7009), ``metadata`` (RFC 8414); and
``tasks``, ``trust`` (anchors and bindings from the store), ``workloads`` (proofs to
identities), ``checking`` and ``cache`` (verifying a presented token, revocation state),
``rotation`` (signing keys across processes), ``decisions`` (AuthZEN with a task token),
``ledger`` (the store) and ``authority`` (the one object the edge and the CLI call).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.tokens.access_token import TOKEN_TYP, TaskTokenClaims, verify_task_token
    from tether.tokens.authority import DEFAULT_MAX_DELEGATION_DEPTH, IssuedTaskToken, TaskAuthority
    from tether.tokens.cache import RevocationState, VerifiedToken, VerifiedTokenCache
    from tether.tokens.checking import Inspection, TokenChecker
    from tether.tokens.decisions import TOKEN_PROPERTY, UNVERIFIED_SUBJECT, TaskUse, bind_task_token
    from tether.tokens.errors import KeyStoreError, TokenRejected
    from tether.tokens.exchange import (
        ACCESS_TOKEN_TYPE,
        GRANT_TYPE,
        JWT_TYPE,
        TASK_RESOURCE,
        ExchangeRequest,
        exchange,
        token_response,
    )
    from tether.tokens.introspection import introspect
    from tether.tokens.keys import KeyRing, SigningKey, unverified_header
    from tether.tokens.master_key import load_or_create_master_key
    from tether.tokens.metadata import authorization_server_metadata
    from tether.tokens.revocation import revoke
    from tether.tokens.rotation import DEFAULT_TOKEN_TTL_S, KeyWatch
    from tether.tokens.tasks import DEFAULT_MAX_TASK_TTL_S, TaskIntent, TaskRecord, TaskRequest
    from tether.tokens.trust import WorkloadTrust, trust_store_from_rows
    from tether.tokens.workloads import Workload, authenticate_workload

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "DEFAULT_MAX_DELEGATION_DEPTH",
    "DEFAULT_MAX_TASK_TTL_S",
    "DEFAULT_TOKEN_TTL_S",
    "GRANT_TYPE",
    "JWT_TYPE",
    "TASK_RESOURCE",
    "TOKEN_PROPERTY",
    "TOKEN_TYP",
    "UNVERIFIED_SUBJECT",
    "ExchangeRequest",
    "Inspection",
    "IssuedTaskToken",
    "KeyRing",
    "KeyStoreError",
    "KeyWatch",
    "RevocationState",
    "SigningKey",
    "TaskAuthority",
    "TaskIntent",
    "TaskRecord",
    "TaskRequest",
    "TaskTokenClaims",
    "TaskUse",
    "TokenChecker",
    "TokenRejected",
    "VerifiedToken",
    "VerifiedTokenCache",
    "Workload",
    "WorkloadTrust",
    "authenticate_workload",
    "authorization_server_metadata",
    "bind_task_token",
    "exchange",
    "introspect",
    "load_or_create_master_key",
    "revoke",
    "token_response",
    "trust_store_from_rows",
    "unverified_header",
    "verify_task_token",
]

# Each name is imported from its module when first used: a process that needs the signing
# keys only (the ingest CLI) does not import the token machinery (joserfc, the trust store).
_WHERE = {
    "TOKEN_TYP": "access_token",
    "TaskTokenClaims": "access_token",
    "verify_task_token": "access_token",
    "DEFAULT_MAX_DELEGATION_DEPTH": "authority",
    "IssuedTaskToken": "authority",
    "TaskAuthority": "authority",
    "RevocationState": "cache",
    "VerifiedToken": "cache",
    "VerifiedTokenCache": "cache",
    "Inspection": "checking",
    "TokenChecker": "checking",
    "TOKEN_PROPERTY": "decisions",
    "UNVERIFIED_SUBJECT": "decisions",
    "TaskUse": "decisions",
    "bind_task_token": "decisions",
    "KeyStoreError": "errors",
    "TokenRejected": "errors",
    "ACCESS_TOKEN_TYPE": "exchange",
    "GRANT_TYPE": "exchange",
    "JWT_TYPE": "exchange",
    "TASK_RESOURCE": "exchange",
    "ExchangeRequest": "exchange",
    "exchange": "exchange",
    "token_response": "exchange",
    "introspect": "introspection",
    "KeyRing": "keys",
    "SigningKey": "keys",
    "unverified_header": "keys",
    "load_or_create_master_key": "master_key",
    "authorization_server_metadata": "metadata",
    "revoke": "revocation",
    "DEFAULT_TOKEN_TTL_S": "rotation",
    "KeyWatch": "rotation",
    "DEFAULT_MAX_TASK_TTL_S": "tasks",
    "TaskIntent": "tasks",
    "TaskRecord": "tasks",
    "TaskRequest": "tasks",
    "WorkloadTrust": "trust",
    "trust_store_from_rows": "trust",
    "Workload": "workloads",
    "authenticate_workload": "workloads",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


class _Tokens(types.ModuleType):
    """This package: ``tether.tokens.exchange`` stays the function when the module of that
    name is imported (the import system sets each submodule on its package)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Tokens
