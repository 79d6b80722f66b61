"""Errors of tether's own tokens, keys, tasks and the token exchange.

Every error has a stable ``code``. Those a token endpoint can answer also carry the
RFC 6749 §5.2 ``oauth_error`` they are reported as (RFC 8693 §2.2.2: a subject or actor
token that is invalid for any reason is ``invalid_request``)::

    TetherError
    ├── KeyStoreError                   key_store_error
    ├── Unauthenticated
    │   └── TokenRejected               token_rejected (the instance names the check:
    │       │                           token_malformed, token_type_invalid,
    │       │                           token_key_unknown, token_signature_invalid,
    │       │                           token_signature_malleated)
    │       ├── TokenClaimInvalid       token_claim_invalid
    │       ├── TokenIssuerMismatch     token_issuer_mismatch
    │       ├── TokenAudienceMismatch   token_audience_mismatch
    │       ├── TaskTokenExpired        token_expired
    │       ├── TaskTokenNotYetValid    token_not_yet_valid
    │       ├── TokenUnknown            token_unknown
    │       ├── TokenRevoked            token_revoked
    │       ├── TaskEnded               task_ended
    │       └── TaskExpired             task_expired
    ├── InvalidRequest
    │   ├── TaskRequestInvalid          task_request_invalid
    │   ├── IntentExceedsEntitlement    intent_exceeds_entitlement
    │   ├── TaskTtlTooLong              task_ttl_exceeds_max
    │   ├── ExchangeRequestInvalid      exchange_request_invalid (instance codes)
    │   ├── UnsupportedGrantType        unsupported_grant_type
    │   ├── InvalidTarget               invalid_target (instance codes: task_not_found,
    │   │                               task_not_owned, task_ended, audience_not_allowed)
    │   ├── ScopeNotAllowed             scope_exceeds_grant
    │   ├── DelegationTooDeep           delegation_depth_exceeded
    │   ├── ClientMismatch              client_mismatch
    │   └── TokenNotIssuedToCaller      token_not_issued_to_caller
    ├── NotFound
    │   └── TaskNotFound                task_not_found
    └── Forbidden
        └── TaskNotOwned                task_not_owned
"""

from __future__ import annotations

from tether.errors import (
    FieldError,
    Forbidden,
    InvalidRequest,
    NotFound,
    TetherError,
    Unauthenticated,
)


class KeyStoreError(TetherError):
    """The master key or the stored signing keys cannot be used."""

    code = "key_store_error"


class TokenRejected(Unauthenticated):
    """A token tether issued (or claims to have issued) does not verify or no longer holds."""

    code = "token_rejected"
    oauth_error = "invalid_request"


class TokenClaimInvalid(TokenRejected):
    code = "token_claim_invalid"


class TokenIssuerMismatch(TokenRejected):
    code = "token_issuer_mismatch"


class TokenAudienceMismatch(TokenRejected):
    code = "token_audience_mismatch"


class TaskTokenExpired(TokenRejected):
    code = "token_expired"


class TaskTokenNotYetValid(TokenRejected):
    code = "token_not_yet_valid"


class TokenUnknown(TokenRejected):
    """Signed with tether's key, but no record says tether issued it."""

    code = "token_unknown"


class TokenRevoked(TokenRejected):
    """The token, or a token it was delegated from, was revoked."""

    code = "token_revoked"


class TaskEnded(TokenRejected):
    """The task the token was issued for has ended: every token of it is void."""

    code = "task_ended"


class TaskExpired(TokenRejected):
    code = "task_expired"


class TaskRequestInvalid(InvalidRequest):
    """A task request that is malformed; ``field_errors`` says where."""

    code = "task_request_invalid"

    def __init__(self, field_errors: list[FieldError], *, code: str | None = None) -> None:
        self.field_errors = field_errors
        super().__init__(_describe(field_errors), code=code)


class IntentExceedsEntitlement(TaskRequestInvalid):
    """The declared intent reaches beyond the identity's standing entitlement."""

    code = "intent_exceeds_entitlement"


class TaskTtlTooLong(InvalidRequest):
    code = "task_ttl_exceeds_max"


class ExchangeRequestInvalid(InvalidRequest):
    """A token exchange request that is malformed (RFC 8693 §2.1)."""

    code = "exchange_request_invalid"
    oauth_error = "invalid_request"


class UnsupportedGrantType(InvalidRequest):
    code = "unsupported_grant_type"
    oauth_error = "unsupported_grant_type"


class InvalidTarget(InvalidRequest):
    """The ``resource`` or ``audience`` asked for cannot be served (RFC 8693 §2.2.2)."""

    code = "invalid_target"
    oauth_error = "invalid_target"


class ScopeNotAllowed(InvalidRequest):
    """A scope beyond what the task (or the parent token) grants: scope only narrows."""

    code = "scope_exceeds_grant"
    oauth_error = "invalid_scope"


class DelegationTooDeep(InvalidRequest):
    code = "delegation_depth_exceeded"
    oauth_error = "invalid_request"


class ClientMismatch(InvalidRequest):
    """The authenticated caller is not the workload the exchange is for."""

    code = "client_mismatch"
    oauth_error = "invalid_request"


class TokenNotIssuedToCaller(InvalidRequest):
    """A workload asked to revoke a task token issued to another identity (RFC 7009 §2.1)."""

    code = "token_not_issued_to_caller"
    oauth_error = "unauthorized_client"


class TaskNotFound(NotFound):
    code = "task_not_found"
    oauth_error = "invalid_target"


class TaskNotOwned(Forbidden):
    """The task belongs to another identity."""

    code = "task_not_owned"
    oauth_error = "invalid_target"


def _describe(field_errors: list[FieldError]) -> str:
    return "; ".join(str(e) for e in field_errors)
