"""Who calls tether, how they prove it, and what each role may do.

The roles (``Role``) and the per-route declaration (``tether.api.routing``) are the
contract every HTTP route follows: deny by default, every route names its roles.

* ``Authenticator``: ``Authorization`` value or client certificate -> ``Caller``
  (PEP API keys, admin tokens, JWT-SVIDs, OIDC tokens, X.509-SVIDs), cached;
* ``CallerDirectory``: the store's callers, keys and trust anchors, refreshed within 1 s;
* ``authorize``, ``check_may_approve``: the rights of roles (no self-approval, auditors
  read only);
* ``RateLimiter``: a token bucket per caller; ``RateShare``: the same limits across
  replicas of one PostgreSQL store;
* ``CallerActivity``: refused calls and last use, in the audit trail, rate-limited;
* ``add_api_key``, ``revoke_api_key``, ``list_api_keys``, ``admin_token``, ``bootstrap``:
  making and ending callers (what the CLI does).
"""

from tether.callers.admin_tokens import (
    ADMIN_TOKEN_TYPE,
    PEOPLE_ROLES,
    AdminClaims,
    IssuedAdminToken,
    issue_admin_token,
    verify_admin_token,
)
from tether.callers.audit import CallerActivity
from tether.callers.authenticator import Authenticator, describe_credential
from tether.callers.directory import CallerDirectory, CallerRecord, DirectorySnapshot
from tether.callers.provisioning import (
    API_KEY_ROLES,
    Bootstrap,
    IssuedApiKey,
    add_api_key,
    admin_token,
    bootstrap,
    list_api_keys,
    revoke_api_key,
)
from tether.callers.rate_limit import RateLimiter, retry_after_seconds
from tether.callers.rate_share import RateShare
from tether.callers.rights import (
    READ_METHODS,
    authorize,
    check_declaration,
    check_may_approve,
    may_approve,
)
from tether.callers.roles import PUBLIC, Caller, Role
from tether.callers.trust import trust_store_from_anchors

__all__ = [
    "ADMIN_TOKEN_TYPE",
    "API_KEY_ROLES",
    "PEOPLE_ROLES",
    "PUBLIC",
    "READ_METHODS",
    "AdminClaims",
    "Authenticator",
    "Bootstrap",
    "Caller",
    "CallerActivity",
    "CallerDirectory",
    "CallerRecord",
    "DirectorySnapshot",
    "IssuedAdminToken",
    "IssuedApiKey",
    "RateLimiter",
    "RateShare",
    "Role",
    "add_api_key",
    "admin_token",
    "authorize",
    "bootstrap",
    "check_declaration",
    "check_may_approve",
    "describe_credential",
    "issue_admin_token",
    "list_api_keys",
    "may_approve",
    "retry_after_seconds",
    "revoke_api_key",
    "trust_store_from_anchors",
    "verify_admin_token",
]
