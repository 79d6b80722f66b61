"""MITRE ATT&CK techniques of cloud control-plane actions, read from ``attack.yaml``.

The table (beside this module) cites each technique by id and names the actions its
detection guidance lists; see the file's header for the source and the action syntax.
It is read once, on first use, into a lookup by normalised action.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import yaml

from tether.drift.cloud._index import ActionIndex

#: ATT&CK tactic ids and names (https://attack.mitre.org/tactics/enterprise/).
TACTICS: Mapping[str, str] = {
    "TA0001": "initial access",
    "TA0002": "execution",
    "TA0003": "persistence",
    "TA0004": "privilege escalation",
    "TA0005": "defense evasion",
    "TA0006": "credential access",
    "TA0007": "discovery",
    "TA0008": "lateral movement",
    "TA0009": "collection",
    "TA0010": "exfiltration",
    "TA0040": "impact",
}


@dataclass(frozen=True, slots=True)
class Technique:
    """One ATT&CK technique: id (``T1562.008``), name and tactic ids."""

    id: str
    name: str
    tactics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TechniqueTable:
    """Actions (see :class:`~._index.ActionIndex`) to their techniques, and techniques by id."""

    index: ActionIndex[Technique]
    by_id: Mapping[str, Technique]

    def techniques(self, *names: str) -> tuple[Technique, ...]:
        """The techniques any of ``names`` (normalised action spellings) stands for."""
        return self.index.lookup(*names)


@functools.cache
def technique_table() -> TechniqueTable:
    """The table of ``attack.yaml``, loaded once."""
    text = resources.files(__package__).joinpath("attack.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    entries: list[tuple[Technique, list[object]]] = []
    by_id: dict[str, Technique] = {}
    for technique_id, entry in document["techniques"].items():
        tactics = tuple(str(t) for t in entry["tactics"])
        unknown = [t for t in tactics if t not in TACTICS]
        if unknown:
            raise ValueError(f"attack.yaml: `{technique_id}` names unknown tactic `{unknown[0]}`")
        technique = Technique(str(technique_id), str(entry["name"]), tactics)
        by_id[technique.id] = technique
        entries.append((technique, list(entry.get("actions") or ())))
    return TechniqueTable(ActionIndex.of(entries), by_id)
