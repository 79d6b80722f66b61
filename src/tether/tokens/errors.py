"""Errors of tether's own tokens and keys."""

from __future__ import annotations

from tether.errors import TetherError, Unauthenticated


class KeyStoreError(TetherError):
    """The master key or the stored signing keys cannot be used."""

    code = "key_store_error"


class TokenRejected(Unauthenticated):
    """A token tether issued (or claims to have issued) does not verify."""

    code = "token_rejected"
