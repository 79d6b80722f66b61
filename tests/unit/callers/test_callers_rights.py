"""Rights of roles: deny by default, auditors read only, approvers never approve their own."""

from __future__ import annotations

import pytest

from tether.api.contract import Doc
from tether.api.routing import declare
from tether.callers import (
    PUBLIC,
    Caller,
    Role,
    authorize,
    check_declaration,
    check_may_approve,
    may_approve,
)
from tether.callers.errors import CallerConfigInvalid, RoleForbidden, SelfApprovalForbidden

WHERE = {"method": "GET", "path": "/x"}


def caller(identity: str, *roles: Role) -> Caller:
    return Caller(identity, frozenset(roles), "admin_token", "jti-1")


def test_a_caller_passes_with_one_of_the_roles() -> None:
    authorize(caller("alice", Role.AUDITOR), frozenset({Role.AUDITOR, Role.ADMIN}), **WHERE)
    authorize(caller("nobody"), PUBLIC, **WHERE)


def test_a_caller_without_the_roles_is_refused_naming_both() -> None:
    with pytest.raises(RoleForbidden) as refused:
        authorize(caller("gw", Role.PEP), frozenset({Role.ADMIN}), method="GET", path="/metrics")
    assert refused.value.code == "role_forbidden"
    assert "`gw` may not call `GET /metrics`" in refused.value.message
    assert "admin" in refused.value.message
    assert "holds pep" in refused.value.message


def test_an_approver_never_approves_a_request_it_is_party_to() -> None:
    alice = caller("alice", Role.APPROVER)
    assert may_approve(alice, {"billing-bot", "bob"})
    check_may_approve(alice, {"billing-bot", "bob"})
    for parties in ({"alice"}, {"billing-bot", "alice"}):
        assert not may_approve(alice, parties)
        with pytest.raises(SelfApprovalForbidden) as refused:
            check_may_approve(alice, parties)
        assert refused.value.code == "self_approval_forbidden"


def test_only_approvers_approve() -> None:
    admin = caller("root", Role.ADMIN, Role.AUDITOR)
    assert not may_approve(admin, {"billing-bot"})
    with pytest.raises(RoleForbidden):
        check_may_approve(admin, {"billing-bot"})


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "post"])
def test_a_route_that_changes_something_cannot_be_declared_for_auditors(method: str) -> None:
    with pytest.raises(CallerConfigInvalid, match="reads only"):
        check_declaration(method, "/v1/things", frozenset({Role.AUDITOR, Role.ADMIN}))
    with pytest.raises(CallerConfigInvalid):
        declare("/v1/things-test", (method,), (Role.AUDITOR,), Doc("a test route"))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_auditors_may_read(method: str) -> None:
    check_declaration(method, "/v1/things", frozenset({Role.AUDITOR}))
