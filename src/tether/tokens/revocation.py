"""RFC 7009 token revocation (``POST /oauth2/revoke``), and revocation by task or ``jti``.

Revoking a task token revokes every token delegated from it. Anything that is not a
task token tether can verify (a typo, a token of another server, an expired token) is
answered like a success and changes nothing, as RFC 7009 §2.2 asks: the caller learns
nothing, and an invalid token is already unusable.

RFC 7009 §2.1: the server verifies the token was issued to the client asking. A
workload may revoke only a token of its own: one whose subject (``sub``/``client_id``)
or one of whose actors (``act``) it is. Another workload's token is refused with
``unauthorized_client`` (``token_not_issued_to_caller``) and stays valid: holding a
bearer token someone else leaked is no right to end it. PEPs (which are handed the
tokens of the agents they guard), admins and the CLI may revoke any task token. Ending
a task (``TaskAuthority.end_task``) revokes all of its tokens at once.

A revocation is effective at this process's next decision at once, and at every other
process's next decision through the store's revocation version (``tokens.cache``).
"""

from __future__ import annotations

from tether.tokens.authority import TaskAuthority
from tether.tokens.errors import TokenNotIssuedToCaller


def revoke(
    authority: TaskAuthority, token: object, *, actor: str | None, client: str | None = None
) -> tuple[str, ...]:
    """Revoke ``token`` and what was delegated from it; the ``jti``\\ s revoked (none for a
    token that is not tether's, expired, or already revoked).

    Args:
        actor: who revokes, for the audit log; ``None`` means the token's holder.
        client: the workload asking, which must be the token's subject or one of its
            actors; ``None`` for a caller that may revoke any token (a PEP, an admin).

    Raises:
        TokenNotIssuedToCaller: ``client`` is neither the subject nor an actor of the token.
    """
    inspection = authority.inspect(token, refresh=False)
    claims = inspection.claims
    if claims is None:
        return ()
    holder = claims.actor or claims.subject
    if client is not None and client != claims.subject and client not in claims.actors:
        error = TokenNotIssuedToCaller(
            f"token `{claims.jti}` was issued to `{holder}`, not to the caller `{client}`"
        )
        authority.record_refusal(client, "token.revoke_refused", claims.jti, error)
        raise error
    return authority.revoke_jti(claims.jti, actor=actor or holder)
