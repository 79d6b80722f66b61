"""tether's own tokens: signing keys now; task tokens, exchange and revocation build on them."""

from tether.tokens.errors import KeyStoreError, TokenRejected
from tether.tokens.keys import KeyRing, SigningKey, unverified_header
from tether.tokens.master_key import load_or_create_master_key

__all__ = [
    "KeyRing",
    "KeyStoreError",
    "SigningKey",
    "TokenRejected",
    "load_or_create_master_key",
    "unverified_header",
]
