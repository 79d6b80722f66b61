"""Errors of the decision core."""

from __future__ import annotations

from tether.errors import InvalidRequest


class PolicyInvalid(InvalidRequest):
    """A policy, schema or entity set that cannot be loaded."""

    code = "policy_invalid"
