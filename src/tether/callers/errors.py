"""Errors of caller authentication and rights; each carries a stable ``code``.

Refusals of a credential are :class:`~tether.errors.Unauthenticated` (HTTP 401 with
``WWW-Authenticate: Bearer``); refusals of a right are :class:`~tether.errors.Forbidden`
(HTTP 403). Messages name the credential by its id (key id, ``jti`` or a hash prefix),
never by its secret::

    Unauthenticated
    ├── CredentialsMissing          credentials_missing
    ├── CredentialsUnsupported      credentials_unsupported
    ├── ApiKeyInvalid               api_key_invalid
    ├── AdminTokenInvalid           admin_token_invalid   (via tokens.TokenRejected)
    ├── ClientCertificateInvalid    client_certificate_invalid
    ├── CallerUnknown               caller_unknown
    └── CallerDisabled              caller_disabled
    Forbidden
    ├── RoleForbidden               role_forbidden
    ├── RouteUndeclared             route_undeclared
    └── SelfApprovalForbidden       self_approval_forbidden
    InvalidRequest
    └── CallerConfigInvalid         caller_config_invalid

JWT-SVID and OIDC refusals keep the codes of :mod:`tether.identity.errors`
(``token_expired``, ``trust_domain_unknown``, ...), admin-token signature refusals those
of :mod:`tether.tokens.errors`.
"""

from __future__ import annotations

from tether.errors import Forbidden, InvalidRequest, Unauthenticated
from tether.tokens import TokenRejected


class CredentialsMissing(Unauthenticated):
    code = "credentials_missing"


class CredentialsUnsupported(Unauthenticated):
    code = "credentials_unsupported"


class ApiKeyInvalid(Unauthenticated):
    code = "api_key_invalid"


class AdminTokenInvalid(TokenRejected):
    code = "admin_token_invalid"


class ClientCertificateInvalid(Unauthenticated):
    code = "client_certificate_invalid"


class CallerUnknown(Unauthenticated):
    code = "caller_unknown"


class CallerDisabled(Unauthenticated):
    code = "caller_disabled"


class RoleForbidden(Forbidden):
    code = "role_forbidden"


class RouteUndeclared(Forbidden):
    code = "route_undeclared"


class SelfApprovalForbidden(Forbidden):
    code = "self_approval_forbidden"


class CallerConfigInvalid(InvalidRequest):
    code = "caller_config_invalid"
