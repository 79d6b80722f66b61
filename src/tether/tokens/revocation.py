"""RFC 7009 token revocation (``POST /oauth2/revoke``), and revocation by task or ``jti``.

Revoking a task token revokes every token delegated from it. Anything that is not a
task token tether can verify (a typo, a token of another server, an expired token) is
answered like a success and changes nothing, as RFC 7009 §2.2 asks: the caller learns
nothing, and an invalid token is already unusable. Possession is the right to revoke:
whoever holds a bearer token can use it, so letting them end it takes nothing from
anyone. Ending a task (``TaskAuthority.end_task``) revokes all of its tokens at once.

A revocation is effective at this process's next decision at once, and at every other
process's next decision through the store's revocation version (``tokens.cache``).
"""

from __future__ import annotations

from tether.tokens.authority import TaskAuthority


def revoke(authority: TaskAuthority, token: object, *, actor: str | None) -> tuple[str, ...]:
    """Revoke ``token`` and what was delegated from it; the ``jti``\\ s revoked (none for a
    token that is not tether's, expired, or already revoked).

    Args:
        actor: who revokes, for the audit log; ``None`` means the token's holder.
    """
    inspection = authority.inspect(token, refresh=False)
    claims = inspection.claims
    if claims is None:
        return ()
    holder = claims.actor or claims.subject
    return authority.revoke_jti(claims.jti, actor=actor or holder)
