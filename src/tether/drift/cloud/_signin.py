"""Console sign-ins: what a ``signin:ConsoleLogin`` event risks beyond its (absent) IAM action.

A console sign-in authorises no IAM action, so the access-level model has nothing to say
about it (``Unknown``). What makes one dangerous is who signed in and whether it
worked, both in the event (AWS CloudTrail User Guide, "AWS Management Console sign-in
events": ``responseElements.ConsoleLogin`` ``Success``/``Failure``, ``userIdentity.type``):

- a **failed** sign-in is a guessed or stolen password being tried: ATT&CK T1110 Brute
  Force (credential access), whose detection guidance is failed authentication events;
- a **root** sign-in: the account's root user has every permission and no policy can
  restrict it; AWS says to use it only for the few tasks that require it (IAM User Guide,
  "Root user best practices"), and the CIS AWS Foundations Benchmark asks for an alarm
  on every root use. ATT&CK T1078.004 Valid Accounts: Cloud Accounts.

The techniques come from ``attack.yaml`` by id (their names and tactics live there).
"""

from __future__ import annotations

from tether.drift.cloud._attack import Technique, technique_table

CONSOLE_SIGN_IN = "signin:ConsoleLogin"
ROOT_KIND = "aws:root"
_FAILED = frozenset({"denied", "error"})


def sign_in_technique(action: str, outcome: str, principal_kind: str | None) -> Technique | None:
    """The technique a console sign-in event stands for, or None (not one, or unremarkable)."""
    if action != CONSOLE_SIGN_IN:
        return None
    if outcome in _FAILED:
        return technique_table().by_id["T1110"]
    if principal_kind == ROOT_KIND:
        return technique_table().by_id["T1078.004"]
    return None
