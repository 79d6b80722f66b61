"""Framework references of drift findings, from the one catalogue (``tether.frameworks``).

Every finding carries where it sits in the frameworks reviewers work with (OWASP Top 10
for Agentic Applications, CSA MAESTRO, NIST AI RMF, NIST CSF 2.0), read from
``frameworks.yaml`` by its detector's name: a finding and the review report row about it
name the same ids. Keys are the report's column names (``owasp_asi``, ``maestro``,
``nist_ai_rmf``, ``nist_csf``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from tether.frameworks import COLUMNS, load_frameworks


@functools.cache
def frameworks_for(detector: str) -> Mapping[str, tuple[str, ...]]:
    """The framework references of a finding raised by ``detector``."""
    refs = load_frameworks().references(detector)
    return MappingProxyType({COLUMNS[f]: tuple(ids) for f, ids in refs.items()})
