"""A lookup of normalised action spellings to what a cited table says about them.

Both cited tables beside this package (``attack.yaml``: ATT&CK techniques;
``monitoring.yaml``: CIS benchmark monitoring controls) name actions the same way: AWS
``service:EventName``, GCP method names or their last component, Kubernetes
``k8s:VERB RESOURCE``, case-insensitive, ``*`` a wildcard. This is the index both build.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ActionIndex(Generic[T]):
    """Exact actions (lowercased) and wildcard patterns, each to its entries."""

    exact: Mapping[str, tuple[T, ...]]
    patterns: tuple[tuple[re.Pattern[str], T], ...]

    @classmethod
    def of(cls, entries: Iterable[tuple[T, Iterable[object]]]) -> ActionIndex[T]:
        """The index of ``(entry, its actions)`` pairs."""
        exact: dict[str, list[T]] = {}
        patterns: list[tuple[re.Pattern[str], T]] = []
        for entry, actions in entries:
            for action in actions:
                key = str(action).lower()
                if "*" in key:
                    patterns.append((re.compile(fnmatch.translate(key)), entry))
                else:
                    exact.setdefault(key, []).append(entry)
        return cls({k: tuple(v) for k, v in exact.items()}, tuple(patterns))

    def lookup(self, *names: str) -> tuple[T, ...]:
        """The entries any of ``names`` (normalised action spellings) stands for, once each."""
        found: list[T] = []
        for name in names:
            for entry in self.exact.get(name, ()):
                if entry not in found:
                    found.append(entry)
            for pattern, entry in self.patterns:
                if entry not in found and pattern.fullmatch(name):
                    found.append(entry)
        return tuple(found)
