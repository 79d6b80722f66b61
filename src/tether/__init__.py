"""tether: runtime governance for non-human identities.

Entitlement (what the estate approves) and behaviour (what is observed) are two
separate control signals; tether decides every request with both.
"""

__version__ = "0.1.0"
