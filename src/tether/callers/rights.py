"""What a caller may do: route roles, the auditor's read-only rule, no self-approval.

Deny by default: a route names the roles that may call it (``tether.api.routing``), and
a caller passes when it holds at least one of them. Two rules hold whatever a route
declares:

* an **auditor** reads and never changes: a route that changes something (any method but
  GET and HEAD) cannot be declared for the auditor role at all;
* an **approver** never approves a request it is party to (four eyes): not as the
  request's subject, its requester or the subject's owner.
"""

from __future__ import annotations

from collections.abc import Collection

from tether.callers.errors import CallerConfigInvalid, RoleForbidden, SelfApprovalForbidden
from tether.callers.roles import PUBLIC, Caller, Role

READ_METHODS = frozenset({"GET", "HEAD"})


def check_declaration(method: str, path: str, roles: frozenset[Role]) -> None:
    """Refuse a route declaration that would break a rule of the roles.

    Raises:
        CallerConfigInvalid: an auditor route that changes something.
    """
    if Role.AUDITOR in roles and method.upper() not in READ_METHODS:
        raise CallerConfigInvalid(
            f"`{method} {path}` changes something; the auditor role reads only "
            "(declare it for admin, or make it a GET)"
        )


def authorize(caller: Caller, roles: frozenset[Role], *, method: str, path: str) -> None:
    """Pass when ``caller`` holds one of ``roles`` (or the route is public).

    Raises:
        RoleForbidden: naming the roles the route wants and the ones the caller holds.
    """
    if roles is PUBLIC or not roles or caller.roles & roles:
        return
    what = f"`{method} {path}`"
    wanted = ", ".join(sorted(r.value for r in roles))
    held = ", ".join(sorted(r.value for r in caller.roles)) or "none"
    raise RoleForbidden(
        f"`{caller.identity_id}` may not call {what}: it needs one of the roles {wanted} "
        f"and holds {held}"
    )


def may_approve(approver: Caller, request_parties: Collection[str]) -> bool:
    """Whether ``approver`` may decide a request whose parties are ``request_parties``."""
    return Role.APPROVER in approver.roles and approver.identity_id not in request_parties


def check_may_approve(approver: Caller, request_parties: Collection[str]) -> None:
    """Raise unless ``approver`` may decide the request.

    Args:
        approver: the caller deciding.
        request_parties: identity ids the request belongs to: its subject, whoever asked
            for it and the subject's owner.

    Raises:
        RoleForbidden: the caller is not an approver.
        SelfApprovalForbidden: the caller is a party to the request.
    """
    if Role.APPROVER not in approver.roles:
        raise RoleForbidden(f"`{approver.identity_id}` is not an approver")
    if approver.identity_id in request_parties:
        raise SelfApprovalForbidden(
            f"`{approver.identity_id}` may not approve a request it is party to; "
            "another approver must decide it"
        )
